//! Who to text: centers (name, registered sender number, time zone, quiet hours, templates) and
//! children with their guardians (phone, language, which notifications they want). A TOML file
//! to start with; the relay reads it at start-up and when it changes.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Notice {
    Arrival,
    Departure,
    Fever,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Center {
    pub id: String,
    pub name: String,
    /// The center's pre-registered sender number (required by Korean law).
    pub sender: String,
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Local times ["21:00", "07:00"]: texts wait until the end (may wrap midnight).
    #[serde(default)]
    pub quiet_hours: Option<[String; 2]>,
    /// Overrides, keyed "<lang>.<notice>", e.g. "ko.arrival".
    #[serde(default)]
    pub templates: HashMap<String, String>,
}

fn default_tz() -> String {
    "Asia/Seoul".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardian {
    pub name: String,
    pub phone: String,
    #[serde(default = "default_lang")]
    pub lang: String,
    #[serde(default = "default_notify")]
    pub notify: Vec<Notice>,
}

fn default_lang() -> String {
    "ko".into()
}
fn default_notify() -> Vec<Notice> {
    vec![Notice::Arrival, Notice::Departure, Notice::Fever]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Child {
    pub id: String,
    pub center: String,
    pub name: String,
    #[serde(default, rename = "guardian")]
    pub guardians: Vec<Guardian>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    #[serde(default, rename = "center")]
    pub centers: Vec<Center>,
    #[serde(default, rename = "child")]
    pub children: Vec<Child>,
}

impl Directory {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
        let dir: Directory = toml::from_str(&text).map_err(|e| format!("directory {}: {e}", path.display()))?;
        dir.validate().map_err(|e| format!("directory {}: {e}", path.display()))?;
        Ok(dir)
    }

    fn validate(&self) -> Result<(), String> {
        for c in &self.centers {
            jiff::tz::TimeZone::get(&c.timezone).map_err(|e| format!("center `{}`: timezone: {e}", c.id))?;
            if !is_phone(&c.sender) {
                return Err(format!("center `{}`: sender `{}` is not a phone number", c.id, c.sender));
            }
            if let Some([a, b]) = &c.quiet_hours {
                if a.parse::<jiff::civil::Time>().is_err() || b.parse::<jiff::civil::Time>().is_err() {
                    return Err(format!("center `{}`: quiet_hours must be two local times \"HH:MM\"", c.id));
                }
            }
        }
        for (i, ch) in self.children.iter().enumerate() {
            if self.center(&ch.center).is_none() {
                return Err(format!("child `{}`: no center `{}`", ch.id, ch.center));
            }
            if self.children[..i].iter().any(|o| o.center == ch.center && o.id == ch.id) {
                return Err(format!("child `{}` of center `{}` is listed twice", ch.id, ch.center));
            }
            for g in &ch.guardians {
                if !is_phone(&g.phone) {
                    return Err(format!(
                        "child `{}`: guardian `{}` phone `{}` is not a phone number",
                        ch.id, g.name, g.phone
                    ));
                }
                if !matches!(g.lang.as_str(), "ko" | "en") {
                    return Err(format!("child `{}`: guardian `{}` lang must be \"ko\" or \"en\"", ch.id, g.name));
                }
            }
        }
        Ok(())
    }

    pub fn center(&self, id: &str) -> Option<&Center> {
        self.centers.iter().find(|c| c.id == id)
    }

    /// A child of `center`: gallery ids are per kiosk site, so the same id at another center is
    /// another child.
    pub fn child(&self, center: &str, id: &str) -> Option<&Child> {
        self.children.iter().find(|c| c.center == center && c.id == id)
    }
}

fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (8..=15).contains(&digits) && s.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '+')
}

/// Digits only, as gateways want them.
pub fn normalize_phone(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The built-in texts. `{center}`, `{name}`, `{time}` (HH:MM in the center's zone) and
/// `{temperature}` (empty, or " (체온 36.5℃)" / " (temperature 36.5°C)") are filled in.
pub fn default_template(lang: &str, notice: Notice) -> &'static str {
    match (lang, notice) {
        ("en", Notice::Arrival) => "[{center}] {name} arrived at {time}.{temperature}",
        ("en", Notice::Departure) => "[{center}] {name} left at {time}.{temperature}",
        ("en", Notice::Fever) => "[{center}] {name}: elevated skin temperature{temperature} at {time}. Please confirm with a thermometer; the center will contact you.",
        (_, Notice::Arrival) => "[{center}] {name} 어린이가 {time}에 등원했습니다.{temperature}",
        (_, Notice::Departure) => "[{center}] {name} 어린이가 {time}에 하원했습니다.{temperature}",
        (_, Notice::Fever) => "[{center}] {name} 어린이의 피부 온도가 높게 측정되었습니다{temperature} ({time}). 체온계로 확인 후 연락드리겠습니다.",
    }
}

pub fn render(center: &Center, lang: &str, notice: Notice, name: &str, time: &str, temperature: Option<f32>) -> String {
    let key = format!(
        "{lang}.{}",
        match notice {
            Notice::Arrival => "arrival",
            Notice::Departure => "departure",
            Notice::Fever => "fever",
        }
    );
    let template = center.templates.get(&key).map(String::as_str).unwrap_or_else(|| default_template(lang, notice));
    let temp = match (temperature, lang) {
        (Some(t), "en") => format!(" (temperature {t:.1}°C)"),
        (Some(t), _) => format!(" (체온 {t:.1}℃)"),
        (None, _) => String::new(),
    };
    template
        .replace("{center}", &center.name)
        .replace("{name}", name)
        .replace("{time}", time)
        .replace("{temperature}", &temp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn center() -> Center {
        Center {
            id: "sunshine".into(),
            name: "햇살어린이집".into(),
            sender: "02-123-4567".into(),
            timezone: "Asia/Seoul".into(),
            quiet_hours: None,
            templates: HashMap::new(),
        }
    }

    #[test]
    fn korean_and_english_texts() {
        let c = center();
        assert_eq!(
            render(&c, "ko", Notice::Arrival, "김민지", "08:42", Some(36.5)),
            "[햇살어린이집] 김민지 어린이가 08:42에 등원했습니다. (체온 36.5℃)"
        );
        assert_eq!(render(&c, "en", Notice::Departure, "Minji", "16:05", None), "[햇살어린이집] Minji left at 16:05.");
    }

    #[test]
    fn centers_override_templates() {
        let mut c = center();
        c.templates.insert("ko.arrival".into(), "{name} 등원 {time}".into());
        assert_eq!(render(&c, "ko", Notice::Arrival, "민지", "08:42", None), "민지 등원 08:42");
    }
}

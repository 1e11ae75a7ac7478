//! Who to text: centers (name, registered sender number, time zone, quiet hours, templates) and
//! children with their guardians (phone, language, which notifications they want). A TOML file
//! to start with; the relay reads it at start-up and when it changes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use dolbom_contract::text::{clean, visible};

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
    /// The center's pre-registered sender number (required by Korean law); its digits once read.
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
    /// As written in the directory.
    pub phone: String,
    /// The domestic digits gateways get (`01012345678`), set when the directory is read.
    #[serde(skip)]
    pub digits: String,
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

#[derive(Debug, Clone)]
pub struct Child {
    pub id: String,
    pub center: String,
    pub name: String,
    pub guardians: Vec<Guardian>,
}

/// A child as written, its guardians read one by one (one bad guardian loses only itself).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChildEntry {
    id: String,
    center: String,
    name: String,
    #[serde(default, rename = "guardian")]
    guardians: Vec<toml::Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub centers: Vec<Center>,
    pub children: Vec<Child>,
}

/// Something wrong with one entry: a refused entry is left out, a warning is loaded as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Which entry, by its ids (`child \`minji\` of center \`sunshine\``).
    pub entry: String,
    pub reason: String,
    pub refused: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.refused { "left out" } else { "loaded" };
        write!(f, "{}: {} ({what})", self.entry, self.reason)
    }
}

/// A directory read from its file, and what was wrong with its entries.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub directory: Directory,
    pub problems: Vec<Problem>,
}

impl Loaded {
    pub fn refused(&self) -> usize {
        self.problems.iter().filter(|p| p.refused).count()
    }

    /// Logs each problem with its entry, and a summary.
    pub fn report(&self, path: &Path) {
        for p in &self.problems {
            if p.refused {
                tracing::warn!(entry = %p.entry, reason = %p.reason, "directory entry left out");
            } else {
                tracing::warn!(entry = %p.entry, reason = %p.reason, "directory entry loaded with a warning");
            }
        }
        tracing::info!(
            path = %path.display(),
            centers = self.directory.centers.len(),
            children = self.directory.children.len(),
            refused = self.refused(),
            warnings = self.problems.len() - self.refused(),
            "directory read"
        );
    }
}

/// `field` of a TOML entry, for naming it in a report even when the entry is broken.
fn field<'a>(v: &'a toml::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(toml::Value::as_str)
}

fn label(v: &toml::Value, kind: &str, i: usize) -> String {
    match (field(v, "id"), field(v, "center")) {
        (Some(id), Some(c)) if kind == "child" => format!("child `{}` of center `{}`", visible(id), visible(c)),
        (Some(id), _) => format!("{kind} `{}`", visible(id)),
        _ => format!("{kind} #{} (no id)", i + 1),
    }
}

impl Directory {
    /// Reads the file. Only a file that cannot be read or is not TOML is an error: each broken
    /// or duplicate entry is left out and reported, and the rest load.
    pub fn load(path: &Path) -> Result<Loaded, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("directory {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Loaded, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        let mut refuse = |entry: String, reason: String| problems.push(Problem { entry, reason, refused: true });
        let entries = |key: &str, refuse: &mut dyn FnMut(String, String)| match table.get(key) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items.clone(),
            Some(_) => {
                refuse(format!("`{key}`"), format!("must be a list of [[{key}]] tables"));
                Vec::new()
            }
        };
        for key in table.keys().filter(|k| !matches!(k.as_str(), "center" | "child")) {
            refuse(format!("`{}`", visible(key)), "unknown key".into());
        }
        let center_entries = entries("center", &mut refuse);
        let child_entries = entries("child", &mut refuse);
        let mut dir = Directory::default();
        for (i, v) in center_entries.into_iter().enumerate() {
            let entry = label(&v, "center", i);
            let mut c: Center = match v.try_into() {
                Ok(c) => c,
                Err(e) => {
                    refuse(entry, e.to_string().trim().to_string());
                    continue;
                }
            };
            match check_center(&c) {
                Err(reason) => refuse(entry, reason),
                Ok(_) if dir.center(&c.id).is_some() => refuse(entry, "listed twice; the first is kept".into()),
                Ok(sender) => {
                    c.sender = sender;
                    c.name = clean(&c.name).into_owned();
                    dir.centers.push(c);
                }
            }
        }
        let mut warnings = Vec::new();
        for (i, v) in child_entries.into_iter().enumerate() {
            let entry = label(&v, "child", i);
            let raw: ChildEntry = match v.try_into() {
                Ok(c) => c,
                Err(e) => {
                    refuse(entry, e.to_string().trim().to_string());
                    continue;
                }
            };
            if dir.center(&raw.center).is_none() {
                refuse(entry, format!("no center `{}` (or it was left out)", visible(&raw.center)));
                continue;
            }
            if dir.child(&raw.center, &raw.id).is_some() {
                refuse(entry, "listed twice; the first is kept".into());
                continue;
            }
            let mut guardians: Vec<Guardian> = Vec::new();
            for (j, g) in raw.guardians.into_iter().enumerate() {
                let who = match field(&g, "name") {
                    Some(n) => format!("{entry}, guardian `{}`", visible(n)),
                    None => format!("{entry}, guardian #{}", j + 1),
                };
                let mut g: Guardian = match g.try_into() {
                    Ok(g) => g,
                    Err(e) => {
                        refuse(who, e.to_string().trim().to_string());
                        continue;
                    }
                };
                g.digits = match crate::phone::normalize_mobile(&g.phone) {
                    Ok(d) => d,
                    Err(e) => {
                        refuse(who, format!("phone `{}`: {e}", crate::phone::mask_field(&visible(&g.phone))));
                        continue;
                    }
                };
                if !matches!(g.lang.as_str(), "ko" | "en") {
                    refuse(who, format!("lang `{}` must be \"ko\" or \"en\"", visible(&g.lang)));
                    continue;
                }
                if let Some(first) = guardians.iter().find(|o| o.digits == g.digits) {
                    // The store keeps one text per event and number: say which guardian's it is.
                    warnings.push(Problem {
                        entry: format!("{entry}, guardians `{}` and `{}`", visible(&first.name), visible(&g.name)),
                        reason: format!(
                            "both have the number {}: it gets one text per event, in the language of the first \
                             listed who asked for that notice",
                            crate::phone::mask(&g.digits)
                        ),
                        refused: false,
                    });
                }
                g.name = clean(&g.name).into_owned();
                guardians.push(g);
            }
            if raw.name.chars().any(char::is_control) {
                warnings.push(Problem {
                    entry: entry.clone(),
                    reason: "the name has control characters; they are replaced by spaces in texts".into(),
                    refused: false,
                });
            }
            dir.children.push(Child { id: raw.id, center: raw.center, name: clean(&raw.name).into_owned(), guardians });
        }
        problems.extend(warnings);
        Ok(Loaded { directory: dir, problems })
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

/// A center's settings checked; its sender number's digits.
fn check_center(c: &Center) -> Result<String, String> {
    jiff::tz::TimeZone::get(&c.timezone).map_err(|e| format!("timezone: {e}"))?;
    let sender = crate::phone::normalize_sender(&c.sender)
        .map_err(|e| format!("sender `{}` is not a phone number: {e}", visible(&c.sender)))?;
    if let Some([a, b]) = &c.quiet_hours {
        if a.parse::<jiff::civil::Time>().is_err() || b.parse::<jiff::civil::Time>().is_err() {
            return Err("quiet_hours must be two local times \"HH:MM\"".into());
        }
    }
    Ok(sender)
}

/// The built-in fever text for a value staff took with a thermometer: no "confirm with a
/// thermometer", it is one.
pub fn thermometer_fever_template(lang: &str) -> &'static str {
    match lang {
        "en" => "[{center}] {name}: thermometer reading{temperature} at {time}, at or above the fever threshold. The center will contact you.",
        _ => "[{center}] {name} 어린이의 체온계 측정 체온이 발열 기준 이상입니다{temperature} ({time}). 어린이집에서 연락드리겠습니다.",
    }
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

/// What a text says about the temperature, in its `{temperature}` placeholder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TemperatureNote {
    /// Nothing: not measured, or no settled value.
    None,
    /// A settled value (or a fever notice's own reading).
    Value(f32),
    /// A settled value at or above the threshold, with the screening's own caution.
    Elevated(f32),
    /// The kiosk asked to re-measure and no value came in time: a teacher checks.
    NotCompleted,
    /// A value staff took with a thermometer: said as such, never "confirm with a thermometer".
    Thermometer(f32),
    /// A thermometer value at or above the threshold.
    ThermometerElevated(f32),
}

impl From<Option<f32>> for TemperatureNote {
    fn from(t: Option<f32>) -> Self {
        t.map_or(TemperatureNote::None, TemperatureNote::Value)
    }
}

pub fn render(
    center: &Center,
    lang: &str,
    notice: Notice,
    name: &str,
    time: &str,
    temperature: impl Into<TemperatureNote>,
) -> String {
    let key = format!(
        "{lang}.{}",
        match notice {
            Notice::Arrival => "arrival",
            Notice::Departure => "departure",
            Notice::Fever => "fever",
        }
    );
    let temperature = temperature.into();
    let thermometer_fever = notice == Notice::Fever && matches!(temperature, TemperatureNote::ThermometerElevated(_));
    let template = center.templates.get(&key).map(String::as_str).unwrap_or_else(|| {
        if thermometer_fever {
            thermometer_fever_template(lang)
        } else {
            default_template(lang, notice)
        }
    });
    let temp = match (temperature, lang) {
        (TemperatureNote::Value(t), "en") => format!(" (temperature {t:.1}°C)"),
        (TemperatureNote::Value(t), _) => format!(" (체온 {t:.1}℃)"),
        (TemperatureNote::Elevated(t), "en") => {
            format!(" (temperature {t:.1}°C, elevated — confirm with a thermometer; the center will contact you)")
        }
        (TemperatureNote::Elevated(t), _) => {
            format!(" (체온 {t:.1}℃, 높게 측정됨 — 체온계로 확인 후 연락드리겠습니다)")
        }
        (TemperatureNote::NotCompleted, "en") => {
            " The temperature check was not completed; a teacher will check it.".to_string()
        }
        (TemperatureNote::NotCompleted, _) => " 체온 측정이 완료되지 않아 선생님이 확인할 예정입니다.".to_string(),
        // A fever notice's own wording already says what the value means.
        (TemperatureNote::ThermometerElevated(t), "en") if notice == Notice::Fever => format!(" ({t:.1} °C)"),
        (TemperatureNote::ThermometerElevated(t), _) if notice == Notice::Fever => format!(" ({t:.1}℃)"),
        (TemperatureNote::Thermometer(t), "en") => format!(" (thermometer reading {t:.1} °C)"),
        (TemperatureNote::Thermometer(t), _) => format!(" (체온계로 측정한 체온 {t:.1}℃)"),
        (TemperatureNote::ThermometerElevated(t), "en") => {
            format!(" (thermometer reading {t:.1} °C, at or above the fever threshold; the center will contact you)")
        }
        (TemperatureNote::ThermometerElevated(t), _) => {
            format!(" (체온계로 측정한 체온 {t:.1}℃, 발열 기준 이상 — 어린이집에서 연락드리겠습니다)")
        }
        (TemperatureNote::None, _) => String::new(),
    };
    fill(template, |key| match key {
        "center" => Some(clean(&center.name)),
        "name" => Some(clean(name)),
        "time" => Some(clean(time)),
        "temperature" => Some(std::borrow::Cow::Borrowed(temp.as_str())),
        _ => None,
    })
}

/// Fills `{key}` placeholders in one pass over the template: a value is never searched for
/// placeholders itself (a child named "{time}" stays "{time}"). Unknown keys stay as written.
fn fill<'a>(template: &str, value: impl Fn(&str) -> Option<std::borrow::Cow<'a, str>>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find(['{', '}'])
            .filter(|&i| after.as_bytes()[i] == b'}')
            .and_then(|i| Some((i, value(&after[..i])?)))
        {
            Some((close, v)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The directory in use, swapped whole on a change: readers take a snapshot and never wait on
/// a reload.
pub struct SharedDirectory {
    current: RwLock<Arc<Directory>>,
}

impl SharedDirectory {
    pub fn new(directory: Directory) -> Self {
        Self { current: RwLock::new(Arc::new(directory)) }
    }

    pub fn get(&self) -> Arc<Directory> {
        // A poisoned lock only means a panic while swapping an Arc: the value is whole.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set(&self, directory: Directory) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn center() -> Center {
        Center {
            id: "sunshine".into(),
            name: "햇살어린이집".into(),
            sender: "021234567".into(),
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

    #[test]
    fn placeholders_in_names_are_never_filled() {
        let mut c = center();
        c.name = "{name}{time}".into();
        for name in ["{time}", "{temperature}", "{center}", "{{name}}", "{", "}{", "{time"] {
            let text = render(&c, "ko", Notice::Arrival, name, "08:42", Some(36.5));
            assert_eq!(
                text,
                format!("[{{name}}{{time}}] {name} 어린이가 08:42에 등원했습니다. (체온 36.5℃)"),
                "{name:?}"
            );
        }
        c.templates.insert("en.arrival".into(), "{unknown} {name} {{time}} {time".into());
        assert_eq!(render(&c, "en", Notice::Arrival, "{time}", "08:42", None), "{unknown} {time} {08:42} {time");
    }

    #[test]
    fn control_characters_in_names_never_reach_a_text() {
        let c = center();
        for name in ["김민지\n[긴급] 010-0000-0000 으로 연락", "김\u{1b}[2J민지", "김민지\r", "\u{202e}김민지"]
        {
            let text = render(&c, "ko", Notice::Departure, name, "16:05", None);
            assert!(!text.chars().any(|ch| ch.is_control() || ch == '\u{202e}'), "{text:?}");
            assert!(text.contains("어린이가 16:05에 하원했습니다."), "{text:?}");
        }
    }

    const DIRECTORY: &str = r#"
[[center]]
id = "c"
name = "C"
sender = "02-123-4567"

[[center]]
id = "bad-tz"
name = "B"
sender = "02-123-4567"
timezone = "Mars/Olympus"

[[center]]
id = "c"
name = "again"
sender = "02-123-4567"

[[child]]
id = "minji"
center = "c"
name = "김민지"
[[child.guardian]]
name = "mom"
phone = "+82-10-1234-5678"
[[child.guardian]]
name = "aunt"
phone = "1-2-3-4-5-6-7-8"
[[child.guardian]]
name = "dad"
phone = "010 1234 5678"
lang = "en"
[[child.guardian]]
name = "grandpa"
phone = "010-2222-3333"
lang = "fr"
[[child.guardian]]
name = "typo"
phone = "010-4444-5555"
notfy = ["arrival"]

[[child]]
id = "minji"
center = "c"
name = "김민지 again"

[[child]]
id = "jiwoo"
center = "bad-tz"
name = "박지우"

[[child]]
id = "seoyun"
center = "c"

[[child]]
id = "hajun"
center = "c"
name = "이하준\n"
[[child.guardian]]
name = "mom"
phone = "0082 10 9876 5432"
"#;

    #[test]
    fn bad_entries_are_left_out_and_reported_one_by_one() {
        let loaded = Directory::parse(DIRECTORY).expect("the file is TOML");
        let dir = &loaded.directory;
        assert_eq!(dir.centers.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(dir.centers[0].name, "C", "the first of a duplicate is kept");
        assert_eq!(dir.centers[0].sender, "021234567");
        let kids: Vec<&str> = dir.children.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(kids, ["minji", "hajun"]);
        let minji = dir.child("c", "minji").expect("minji");
        let phones: Vec<(&str, &str)> = minji.guardians.iter().map(|g| (g.name.as_str(), g.digits.as_str())).collect();
        assert_eq!(phones, [("mom", "01012345678"), ("dad", "01012345678")]);
        assert_eq!(dir.child("c", "hajun").expect("hajun").name, "이하준");
        let refused: Vec<String> = loaded.problems.iter().filter(|p| p.refused).map(|p| p.entry.clone()).collect();
        assert_eq!(
            refused,
            [
                "center `bad-tz`",
                "center `c`",
                "child `minji` of center `c`, guardian `aunt`",
                "child `minji` of center `c`, guardian `grandpa`",
                "child `minji` of center `c`, guardian `typo`",
                "child `minji` of center `c`",
                "child `jiwoo` of center `bad-tz`",
                "child `seoyun` of center `c`",
            ]
        );
        let reasons: Vec<&str> = loaded.problems.iter().map(|p| p.reason.as_str()).collect();
        assert!(reasons[0].contains("timezone"), "{reasons:?}");
        // A refused number is masked too, however it is written.
        assert!(reasons[2].contains("phone `123-****-5678`"), "{reasons:?}");
        assert!(reasons[4].contains("notfy"), "{reasons:?}");
        assert!(reasons[5].contains("twice"), "{reasons:?}");
        assert!(reasons[7].contains("name"), "{reasons:?}");
        let warnings: Vec<&Problem> = loaded.problems.iter().filter(|p| !p.refused).collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(warnings[0].entry, "child `minji` of center `c`, guardians `mom` and `dad`");
        assert!(warnings[0].reason.contains("010-****-5678"), "{}", warnings[0].reason);
        let everything = format!("{:?}", loaded.problems);
        assert!(!everything.contains("01012345678") && !everything.contains("1234-5678"), "{everything}");
        assert_eq!(loaded.refused(), 8);
    }

    #[test]
    fn only_a_file_that_is_not_toml_is_an_error() {
        assert!(Directory::parse("[[child]\nid = ").is_err());
        let odd = Directory::parse("center = 3\nextra = true").expect("loads, reported");
        assert_eq!(odd.refused(), 2, "{:?}", odd.problems);
        assert!(Directory::parse("").expect("empty").problems.is_empty());
    }
}

//! The console's TOML file, parsed once into typed sections and validated with messages that
//! name the key. Paths are relative to the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dolbom_mqtt::BrokerConfig;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read console config {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("console config {path}: {error}")]
    Parse { path: PathBuf, error: toml::de::Error },
    #[error("console config {path}: `{key}` {message}")]
    Invalid { path: PathBuf, key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub site: CenterConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub mqtt: BrokerConfig,
    pub commands: SigningConfig,
    pub state: StateConfig,
    /// Classes (반), in the order the board shows them; children in no class are listed last.
    #[serde(default)]
    pub classes: Vec<ClassConfig>,
}

/// `[site]`: the center whose doors this console shows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterConfig {
    pub center_id: String,
    /// The center's name as staff know it, e.g. "햇살어린이집".
    #[serde(default)]
    pub name: Option<String>,
    /// IANA time zone: the attendance day and the times shown are in it.
    pub timezone: String,
}

/// `[web]`: where staff reach the console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The LAN address staff's phones reach, e.g. "0.0.0.0:8443".
    pub listen: SocketAddr,
    /// `[web.tls]`: HTTPS with this certificate; absent, plain HTTP (a lab, or behind a proxy).
    pub tls: Option<HttpsConfig>,
    /// The staff accounts file, written by `dolbom console passwd`.
    pub users_file: PathBuf,
    /// A session ends after this long without a request ("30m", "90s", "1h")…
    #[serde(with = "duration_text")]
    pub session_idle: Duration,
    /// …and after this long in any case.
    #[serde(with = "duration_text")]
    pub session_max: Duration,
    /// Wrong passwords allowed per account and per client address within `login_window`
    /// before further logins are refused until the window has passed.
    pub login_attempts: u32,
    #[serde(with = "duration_text")]
    pub login_window: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls: None,
            users_file: PathBuf::from("console-users.toml"),
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            login_attempts: 5,
            login_window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    /// PEM certificate chain and private key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[commands]`: the key the console signs staff actions with. Each kiosk lists the same key
/// under its own `[[commands.keys]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    pub key_id: String,
    /// A path (relative to the config file) or `$CREDENTIALS_DIRECTORY/NAME`.
    pub key_file: PathBuf,
    /// How long an action waits for the kiosk's `cmd/result` before staff are told it did not answer.
    #[serde(default = "default_answer_secs")]
    pub answer_timeout_secs: u64,
}

fn default_answer_secs() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Holds console.db (the day's events, alert states, air samples): created if missing.
    pub dir: PathBuf,
    /// Days of attendance kept for the monthly CSV and the board's history.
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
}

fn default_keep_days() -> u32 {
    400
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassConfig {
    pub name: String,
    /// Children's person ids (the kiosks' gallery ids).
    pub children: Vec<String>,
}

impl ConsoleConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        let mut config: ConsoleConfig =
            toml::from_str(&text).map_err(|error| ConfigError::Parse { path: path.to_path_buf(), error })?;
        config.validate().map_err(|(key, message)| ConfigError::Invalid { path: path.to_path_buf(), key, message })?;
        config.resolve_paths(path.parent().unwrap_or_else(|| Path::new(".")));
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if dolbom_contract::validate_id(&self.site.center_id).is_err() {
            return Err((
                "site.center_id",
                format!("= \"{}\": use 1 to 64 letters, digits, '-', '_' or '.'", self.site.center_id),
            ));
        }
        jiff::tz::TimeZone::get(&self.site.timezone)
            .map_err(|e| ("site.timezone", format!("= \"{}\": {e}", self.site.timezone)))?;
        self.mqtt.validate()?;
        let w = &self.web;
        let (second, day) = (Duration::from_secs(1), Duration::from_secs(24 * 3600));
        for (key, d, max) in [
            ("web.session_idle", w.session_idle, day),
            ("web.session_max", w.session_max, 3 * day),
            ("web.login_window", w.login_window, day),
        ] {
            if d < second || d > max {
                return Err((key, format!("= {d:?}: between 1s and {}h", max.as_secs() / 3600)));
            }
        }
        if w.session_idle > w.session_max {
            return Err(("web.session_idle", "is longer than web.session_max".into()));
        }
        if !(1..=100).contains(&w.login_attempts) {
            return Err(("web.login_attempts", format!("= {}: 1 to 100", w.login_attempts)));
        }
        if dolbom_contract::validate_id(&self.commands.key_id).is_err() {
            return Err((
                "commands.key_id",
                format!("= \"{}\": use 1 to 64 letters, digits, '-', '_' or '.'", self.commands.key_id),
            ));
        }
        if !(1..=120).contains(&self.commands.answer_timeout_secs) {
            return Err(("commands.answer_timeout_secs", format!("= {}: 1 to 120", self.commands.answer_timeout_secs)));
        }
        let mut seen = std::collections::HashSet::new();
        for class in &self.classes {
            if class.name.trim().is_empty() {
                return Err(("classes.name", "is empty".into()));
            }
            for child in &class.children {
                if !seen.insert(child.as_str()) {
                    return Err(("classes.children", format!("\"{child}\" is in more than one class")));
                }
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() && !p.starts_with("$CREDENTIALS_DIRECTORY") {
                *p = base.join(&*p);
            }
        };
        join(&mut self.web.users_file);
        join(&mut self.state.dir);
        join(&mut self.commands.key_file);
        if let Some(tls) = &mut self.web.tls {
            join(&mut tls.cert);
            join(&mut tls.key);
        }
    }

    pub fn timezone(&self) -> jiff::tz::TimeZone {
        // Validated at load.
        jiff::tz::TimeZone::get(&self.site.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    pub fn db_file(&self) -> PathBuf {
        self.state.dir.join("console.db")
    }
}

/// Durations written as people write them: "30m", "90s", "12h", "1h 30m".
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let parsed: jiff::SignedDuration = text
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("\"{text}\" is no duration (e.g. \"30m\", \"90s\"): {e}")))?;
        Duration::try_from(parsed).map_err(|_| serde::de::Error::custom(format!("\"{text}\" is negative")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConsoleConfig, String> {
        let c: ConsoleConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|(k, m)| format!("{k} {m}"))?;
        Ok(c)
    }

    const MINIMAL: &str = "[site]\ncenter_id = \"sunshine\"\ntimezone = \"Asia/Seoul\"\n\
        [commands]\nkey_id = \"console\"\nkey_file = \"console.key\"\n[state]\ndir = \"state\"\n";

    #[test]
    fn a_minimal_file_takes_the_defaults() {
        let c = parse(MINIMAL).expect("valid");
        assert_eq!(c.web.session_idle, Duration::from_secs(1800));
        assert_eq!(c.web.listen.port(), 8443);
    }

    #[test]
    fn durations_read_as_people_write_them_and_bad_ones_name_the_key() {
        let c = parse(&format!("{MINIMAL}[web]\nsession_idle = \"90s\"\nsession_max = \"1h 30m\"\n")).expect("valid");
        assert_eq!((c.web.session_idle.as_secs(), c.web.session_max.as_secs()), (90, 5400));
        let e = parse(&format!("{MINIMAL}[web]\nsession_idle = \"soon\"\n")).expect_err("no duration");
        assert!(e.contains("session_idle"), "{e}");
        let e =
            parse(&format!("{MINIMAL}[web]\nsession_idle = \"2h\"\nsession_max = \"1h\"\n")).expect_err("idle > max");
        assert!(e.contains("web.session_idle"), "{e}");
        let e = parse(&MINIMAL.replace("sunshine", "sun shine")).expect_err("bad id");
        assert!(e.contains("site.center_id"), "{e}");
    }

    #[test]
    fn a_child_in_two_classes_is_refused() {
        let e = parse(&format!(
            "{MINIMAL}[[classes]]\nname = \"해님반\"\nchildren = [\"minji\"]\n[[classes]]\nname = \"달님반\"\nchildren = [\"minji\"]\n"
        ))
        .expect_err("twice");
        assert!(e.contains("classes.children") && e.contains("minji"), "{e}");
    }
}

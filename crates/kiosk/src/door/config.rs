//! `[door_screen]`: whether the kiosk serves the door screen, where, and what it says.

use std::net::{Ipv4Addr, SocketAddr};

use serde::Deserialize;

/// The longest center name shown, in characters (one line of big type).
const MAX_CENTER_NAME_CHARS: usize = 40;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoorScreenConfig {
    pub enabled: bool,
    /// Loopback only: the page shows children's names, and the browser runs on the kiosk.
    pub listen: SocketAddr,
    /// Shown on the idle screen; the site's `center_id` when absent.
    pub center_name: Option<String>,
    /// How long a greeting or a message stays before the idle screen returns.
    pub idle_after_secs: u64,
    /// A short tone with each greeting (off: the door may be next to a sleeping room).
    pub chime: bool,
}

impl Default for DoorScreenConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8480)),
            center_name: None,
            idle_after_secs: 6,
            chime: false,
        }
    }
}

impl DoorScreenConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.listen.ip().is_loopback() {
            return Err((
                "door_screen.listen",
                format!(
                    "= \"{}\": the door screen shows children's names, so it listens on loopback only \
                     (127.0.0.1 or [::1]) / 문 화면은 아이들 이름을 보여 주므로 루프백 주소(127.0.0.1)만 쓸 수 있습니다",
                    self.listen
                ),
            ));
        }
        dolbom_face::config::in_range("door_screen.idle_after_secs", self.idle_after_secs, 2, 120)?;
        if let Some(name) = &self.center_name {
            if name.trim().is_empty()
                || name.chars().count() > MAX_CENTER_NAME_CHARS
                || name.chars().any(|c| c.is_control() || dolbom_contract::text::is_hidden(c))
            {
                return Err((
                    "door_screen.center_name",
                    format!(
                        "= {name:?}: use 1 to {MAX_CENTER_NAME_CHARS} visible characters / \
                         1~{MAX_CENTER_NAME_CHARS}자의 보이는 글자로 써 주세요"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(), (&'static str, String)> {
        let c: DoorScreenConfig = toml::from_str(text).map_err(|e| ("parse", e.to_string()))?;
        c.validate()
    }

    #[test]
    fn defaults_are_off_on_loopback() {
        let c = DoorScreenConfig::default();
        assert!(!c.enabled && !c.chime);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8480");
        c.validate().expect("defaults are valid");
        parse("enabled = true\nlisten = \"[::1]:9000\"\n").expect("IPv6 loopback");
    }

    #[test]
    fn a_lan_address_is_refused_by_name() {
        for listen in ["0.0.0.0:8480", "192.168.0.10:8480", "[::]:8480"] {
            let (key, message) = parse(&format!("listen = \"{listen}\"\n")).expect_err(listen);
            assert_eq!(key, "door_screen.listen");
            assert!(message.contains(listen) && message.contains("루프백"), "{message}");
        }
    }

    #[test]
    fn names_and_times_are_checked() {
        assert_eq!(parse("center_name = \" \"\n").map_err(|e| e.0), Err("door_screen.center_name"));
        assert_eq!(parse("center_name = \"a\\u202eb\"\n").map_err(|e| e.0), Err("door_screen.center_name"));
        assert_eq!(parse("idle_after_secs = 0\n").map_err(|e| e.0), Err("door_screen.idle_after_secs"));
        assert!(parse("lisen = \"127.0.0.1:1\"\n").is_err_and(|e| e.1.contains("lisen")));
        parse("center_name = \"햇살어린이집\"\nidle_after_secs = 4\n").expect("valid");
    }
}

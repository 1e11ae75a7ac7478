//! `[mqtt]`: where the broker is and how to log in, the same section for every dolbom client.
//! What only the kiosk's publisher uses (in-flight window, event expiry, status interval…)
//! lives with the publisher, so a relay's file refuses those keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::tls::{TlsConfig, TlsError};

/// Why a broker section's files could not be loaded; both name the config key.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Secret(#[from] dolbom_secret::SecretError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl LoadError {
    pub fn key(&self) -> &'static str {
        match self {
            LoadError::Secret(e) => e.key(),
            LoadError::Tls(e) => e.key(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// The kiosk defaults to `dolbom-{center_id}-{kiosk_id}`, the relay to `dolbom-relay`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The password's file instead of the password (see `dolbom_secret`): a path others cannot
    /// read, or `$CREDENTIALS_DIRECTORY/NAME` for systemd's `LoadCredential=NAME:PATH`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_keep_alive_secs")]
    pub keep_alive_secs: u64,
    #[serde(default = "default_reconnect_initial_ms")]
    pub reconnect_initial_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// The largest message a dolbom client takes in from the broker; bigger ones are
    /// acknowledged, counted and dropped. Events and commands are well under 4 KiB.
    #[serde(default = "default_max_message_kib")]
    pub max_message_kib: u32,
    /// `[mqtt.tls]`: MQTT over TLS, the server's certificate and name verified. Absent: plain TCP
    /// (a broker on the same machine, or a lab).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The TLS settings built by [`BrokerConfig::load_secrets`] from `tls`.
    #[serde(skip)]
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    1883
}
fn default_keep_alive_secs() -> u64 {
    15
}
fn default_reconnect_initial_ms() -> u64 {
    250
}
fn default_reconnect_max_ms() -> u64 {
    15_000
}
fn default_max_message_kib() -> u32 {
    64
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            keep_alive_secs: default_keep_alive_secs(),
            reconnect_initial_ms: default_reconnect_initial_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            max_message_kib: default_max_message_kib(),
            tls: None,
            tls_client: None,
        }
    }
}

impl BrokerConfig {
    /// Checks the values without touching the network; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.host.trim().is_empty() {
            return Err(("mqtt.host", "must not be empty".into()));
        }
        if self.port == 0 {
            return Err(("mqtt.port", "= 0: must be a TCP port between 1 and 65535".into()));
        }
        if !(5..=3600).contains(&self.keep_alive_secs) {
            return Err(("mqtt.keep_alive_secs", format!("= {}: must be between 5 and 3600", self.keep_alive_secs)));
        }
        if self.reconnect_max_ms > 3_600_000 {
            return Err((
                "mqtt.reconnect_max_ms",
                format!("= {}: must be at most 3600000 (an hour)", self.reconnect_max_ms),
            ));
        }
        if !(1..=16_384).contains(&self.max_message_kib) {
            return Err(("mqtt.max_message_kib", format!("= {}: must be between 1 and 16384", self.max_message_kib)));
        }
        if self.reconnect_initial_ms == 0 || self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err((
                "mqtt.reconnect_max_ms",
                "must be at least mqtt.reconnect_initial_ms, which must be above 0".into(),
            ));
        }
        // A password in the config file leaks with every copy, backup and screenshot of it.
        if self.password.is_some() {
            return Err((
                "mqtt.password",
                "a password written in the config file is refused: put it in a file only the service can read \
                 and name it with mqtt.password_file (or hand it over with systemd's LoadCredential= and \
                 mqtt.password_file = \"$CREDENTIALS_DIRECTORY/NAME\")"
                    .into(),
            ));
        }
        // Name the key that is missing, not the one that is there.
        match (&self.username, &self.password_file) {
            (Some(_), None) => {
                return Err(("mqtt.password_file", "mqtt.username is set: name its password's file too".into()))
            }
            (None, Some(_)) => {
                return Err(("mqtt.username", "mqtt.password_file is set: name the user it belongs to".into()))
            }
            _ => {}
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        if self.client_id.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(("mqtt.client_id", "must not be empty when set".into()));
        }
        Ok(())
    }

    /// Reads `password_file` (relative to `base`, the config file's directory) into `password`,
    /// and the TLS certificates and key into `tls_client`. Only what connects calls it:
    /// `dolbom enrol` with the same file needs no broker password.
    pub fn load_secrets(&mut self, base: &Path) -> Result<(), LoadError> {
        if let Some(spec) = self.password_file.take() {
            self.password = Some(dolbom_secret::read("mqtt.password_file", &spec, base)?);
        }
        if let Some(tls) = &self.tls {
            self.tls_client = Some(tls.client_config(&self.host, base)?);
        }
        Ok(())
    }

    /// The options for one connection attempt; the caller adds what is its own (will, session kind).
    pub fn connect_options(&self, default_client_id: &str) -> crate::ConnectOptions {
        crate::ConnectOptions {
            client_id: self.client_id.clone().unwrap_or_else(|| default_client_id.to_string()),
            host: self.host.clone(),
            port: self.port,
            keep_alive: Duration::from_secs(self.keep_alive_secs),
            credentials: self.username.clone().zip(self.password.clone()),
            will: None,
            inflight: 16,
            persistent: false,
            max_message_bytes: self.max_message_kib as usize * 1024,
            tls: self.tls_client.clone(),
        }
    }

    pub fn reconnect_delays(&self) -> (Duration, Duration) {
        (Duration::from_millis(self.reconnect_initial_ms), Duration::from_millis(self.reconnect_max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c: BrokerConfig = toml::from_str("").expect("all keys have defaults");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 1883));
        assert!(c.validate().is_ok());
        let err = toml::from_str::<BrokerConfig>("inflight = 4").expect_err("a publisher key").to_string();
        assert!(err.contains("inflight"), "{err}");
    }

    #[test]
    fn every_number_is_bounded_and_the_error_names_its_key() {
        for (toml, key) in [
            ("port = 0", "mqtt.port"),
            ("keep_alive_secs = 0", "mqtt.keep_alive_secs"),
            ("keep_alive_secs = 9223372036854775807", "mqtt.keep_alive_secs"),
            ("reconnect_initial_ms = 0", "mqtt.reconnect_max_ms"),
            ("reconnect_max_ms = 9223372036854775807", "mqtt.reconnect_max_ms"),
            ("reconnect_initial_ms = 500\nreconnect_max_ms = 100", "mqtt.reconnect_max_ms"),
            ("max_message_kib = 0", "mqtt.max_message_kib"),
            ("max_message_kib = 4000000000", "mqtt.max_message_kib"),
        ] {
            let c: BrokerConfig = toml::from_str(toml).expect("parses");
            assert_eq!(c.validate().map_err(|e| e.0), Err(key), "{toml}");
        }
    }

    #[test]
    fn credentials_go_together_and_inline_passwords_are_refused() {
        let c: BrokerConfig = toml::from_str("username = \"kiosk\"").expect("parses");
        assert_eq!(c.validate().map_err(|e| e.0), Err("mqtt.password_file"));
        let c: BrokerConfig = toml::from_str("password_file = \"kiosk.password\"").expect("parses");
        assert_eq!(c.validate().map_err(|e| e.0), Err("mqtt.username"));
        // A TLS client key without its certificate names the certificate, and the other way round.
        let c: BrokerConfig = toml::from_str("[tls]\nclient_key_file = \"k.pem\"").expect("parses");
        assert_eq!(c.validate().map_err(|e| e.0), Err("mqtt.tls.client_cert_file"));
        let c: BrokerConfig = toml::from_str("[tls]\nclient_cert_file = \"c.pem\"").expect("parses");
        assert_eq!(c.validate().map_err(|e| e.0), Err("mqtt.tls.client_key_file"));
        let c: BrokerConfig = toml::from_str("username = \"k\"\npassword = \"p\"").expect("parses");
        let (key, message) = c.validate().expect_err("inline");
        assert_eq!(key, "mqtt.password");
        assert!(message.contains("mqtt.password_file"), "{message}");
    }

    #[test]
    fn the_password_file_is_read_relative_to_the_config() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("mqtt-password");
        std::fs::write(&file, "hunter2\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let mut c: BrokerConfig =
            toml::from_str("username = \"kiosk\"\npassword_file = \"mqtt-password\"").expect("parses");
        assert!(c.validate().is_ok());
        c.load_secrets(dir.path()).expect("readable");
        assert_eq!(c.connect_options("x").credentials, Some(("kiosk".into(), "hunter2".into())));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut c: BrokerConfig =
            toml::from_str("username = \"kiosk\"\npassword_file = \"mqtt-password\"").expect("parses");
        let err = c.load_secrets(dir.path()).expect_err("world-readable");
        assert_eq!(err.key(), "mqtt.password_file");
    }
}

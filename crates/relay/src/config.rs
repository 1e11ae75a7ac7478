//! The relay's TOML file: `[mqtt]` (the broker, as every dolbom client describes it), `[relay]`
//! and `[provider]`. Unknown keys are errors, including the kiosk's publisher keys in `[mqtt]`.

use std::path::{Path, PathBuf};

use dolbom_mqtt::BrokerConfig;
use serde::Deserialize;

use crate::provider::ProviderConfig;
use crate::store::StoreConfig;
use crate::RelayError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayFile {
    #[serde(default)]
    pub mqtt: BrokerConfig,
    pub relay: RelaySettings,
    pub provider: ProviderConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// Topic filters; add `dolbom/v1/+/+/event/fever` to text fever alerts.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// With several relays, the MQTT shared-subscription group they split the load in.
    #[serde(default)]
    pub share_group: Option<String>,
    /// SQLite file (one relay).
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// PostgreSQL connection string (several relays sharing one store).
    #[serde(default)]
    pub postgres: Option<String>,
    /// CA certificate(s), PEM, to verify the PostgreSQL server's TLS certificate with; setting it
    /// requires TLS (as does `sslmode=require`, then against the system's roots).
    #[serde(default)]
    pub postgres_ca: Option<PathBuf>,
    pub directory: PathBuf,
    /// An event older than this when it reaches the relay, or when its text could go out, is not
    /// texted (recorded as `stale`).
    #[serde(default = "default_max_age")]
    pub max_event_age_minutes: u64,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Texts per guardian per hour at most; more are recorded as `rate_limited`.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_hour: i64,
    /// Texts in flight to the gateway at once, per relay.
    #[serde(default = "default_senders")]
    pub senders: usize,
    /// Settled deliveries and seen events are forgotten after this many days.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_topics() -> Vec<String> {
    vec![dolbom_contract::topics::filter_all(dolbom_contract::Kind::Attendance)]
}
fn default_max_age() -> u64 {
    120
}
fn default_max_attempts() -> i64 {
    8
}
fn default_retry_initial_ms() -> u64 {
    1000
}
fn default_retry_max_ms() -> u64 {
    300_000
}
fn default_rate_limit() -> i64 {
    10
}
fn default_senders() -> usize {
    4
}
fn default_retention_days() -> u32 {
    90
}

impl RelayFile {
    pub fn load(path: &Path) -> Result<Self, RelayError> {
        let err = |message: String| RelayError::Config { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut file: RelayFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for p in [file.relay.database.as_mut(), Some(&mut file.relay.directory), file.relay.postgres_ca.as_mut()]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        file.mqtt.validate().map_err(|(k, m)| err(format!("`{k}` {m}")))?;
        let r = &file.relay;
        if r.topics.is_empty() || r.topics.iter().any(|t| t.is_empty() || t.starts_with("$share/")) {
            return Err(err("`relay.topics` must list plain topic filters (use relay.share_group for $share)".into()));
        }
        if r.share_group.as_ref().is_some_and(|g| g.is_empty() || g.contains(['/', '+', '#'])) {
            return Err(err("`relay.share_group` must be a plain name".into()));
        }
        if !(1..=100).contains(&r.max_attempts) || r.retry_initial_ms == 0 || r.retry_max_ms < r.retry_initial_ms {
            return Err(err("`relay.max_attempts` must be 1-100 and retry_initial_ms <= retry_max_ms".into()));
        }
        match (&r.database, &r.postgres) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(err(
                    "set exactly one of `relay.database` (an SQLite file) and `relay.postgres` (a connection string)"
                        .into(),
                ))
            }
        }
        // Relays in a group get each other's redeliveries: only a shared store can dedupe them.
        if r.share_group.is_some() && r.postgres.is_none() {
            return Err(err(
                "`relay.share_group` needs `relay.postgres`: the relays in a group must share one store".into()
            ));
        }
        if file.provider.timeout_ms().is_some_and(|t| !(100..=120_000).contains(&t)) {
            return Err(err("`provider.timeout_ms` must be 100-120000".into()));
        }
        if r.postgres_ca.is_some() && r.postgres.is_none() {
            return Err(err("`relay.postgres_ca` is for `relay.postgres`".into()));
        }
        if r.postgres.is_some() && file.mqtt.client_id.is_none() {
            return Err(err("`mqtt.client_id` must be set, and unique per relay, when `relay.postgres` is set".into()));
        }
        // A forgotten event arriving again must already be too old to text.
        if r.retention_days == 0 || u64::from(r.retention_days) * 1440 <= r.max_event_age_minutes {
            return Err(err("`relay.retention_days` must be at least 1 and longer than max_event_age_minutes".into()));
        }
        if !(1..=64).contains(&r.senders) {
            return Err(err("`relay.senders` must be 1-64".into()));
        }
        if r.rate_limit_per_hour < 1 {
            return Err(err("`relay.rate_limit_per_hour` must be at least 1".into()));
        }
        Ok(file)
    }

    pub fn store(&self) -> StoreConfig {
        match (&self.relay.postgres, &self.relay.database) {
            (Some(params), _) => StoreConfig::Postgres { params: params.clone(), ca: self.relay.postgres_ca.clone() },
            (None, Some(path)) => StoreConfig::Sqlite(path.clone()),
            // load() refuses a file with neither.
            (None, None) => StoreConfig::Sqlite(PathBuf::from("relay.db")),
        }
    }

    /// This relay's name in the store's claims: its MQTT client id.
    pub fn instance(&self) -> String {
        self.mqtt.client_id.clone().unwrap_or_else(|| "dolbom-relay".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RelayFile, RelayError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, text).expect("write");
        RelayFile::load(&path)
    }

    const BASE: &str =
        "[relay]\ndatabase = \"relay.db\"\ndirectory = \"directory.toml\"\n\n[provider]\nkind = \"console\"\n";

    #[test]
    fn a_minimal_file_loads() {
        let file = load(BASE).expect("loads");
        assert_eq!(file.relay.topics, vec!["dolbom/v1/+/+/event/attendance".to_string()]);
        assert_eq!(file.instance(), "dolbom-relay");
    }

    #[test]
    fn kiosk_only_mqtt_keys_are_refused() {
        for key in [
            "inflight = 4",
            "event_expiry_minutes = 5",
            "status_interval_secs = 5",
            "protocol = \"5\"",
            "drain_timeout_secs = 1",
        ] {
            let err = load(&format!("[mqtt]\n{key}\n\n{BASE}")).err().map(|e| e.to_string()).unwrap_or_default();
            let name = key.split(' ').next().unwrap_or_default();
            assert!(err.contains(name), "`{key}` must be refused by name: {err}");
        }
    }
}

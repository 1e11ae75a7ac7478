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
    /// How far ahead of this relay's clock an event may be dated (the kiosk's clock running
    /// fast); later ones are refused, never texted.
    #[serde(default = "default_clock_skew")]
    pub max_clock_skew_seconds: u64,
    /// How often the directory file is checked for changes.
    #[serde(default = "default_directory_poll")]
    pub directory_poll_seconds: u64,
    /// Events refused because the directory did not know their child are planned again when
    /// the directory changes, if they are at most this old (0: never).
    #[serde(default = "default_replan")]
    pub replan_unknown_minutes: u64,
    /// An arrival whose reading was `remeasure` is held until the kiosk's `event/temperature`
    /// settles it (then one text with the settled value), or at most this long after its capture
    /// (then the text says the check was not completed). Longer than the kiosk's
    /// `fever.settle_within_mins`, whose own deadline normally comes first; under
    /// `max_event_age_minutes`, so the held text is not stale when it goes. Unset: 45, or one
    /// minute under `max_event_age_minutes` when that is shorter (a relay.toml written before
    /// this key existed keeps loading); read it through [`RelaySettings::hold_remeasure`].
    #[serde(default)]
    pub hold_remeasure_minutes: Option<u64>,
}

/// The hold when `relay.hold_remeasure_minutes` is not set and `max_event_age_minutes` allows it.
pub const DEFAULT_HOLD_REMEASURE_MINUTES: u64 = 45;

impl RelaySettings {
    /// Whether `relay.topics` receives the kiosks' `event/temperature`. A relay.toml from before
    /// the re-measure flow that lists its topics may not: then every held arrival waits the whole
    /// `hold_remeasure_minutes` and is texted "not completed", with no other sign.
    pub fn hears_temperature(&self) -> bool {
        use dolbom_contract::{topics::filter_all, Kind};
        let sample = filter_all(Kind::Temperature).replace('+', "center");
        self.topics.iter().any(|f| filter_matches(f, &sample))
    }

    /// `relay.hold_remeasure_minutes`, or its default under this file's `max_event_age_minutes`.
    pub fn hold_remeasure(&self) -> u64 {
        self.hold_remeasure_minutes
            .unwrap_or_else(|| DEFAULT_HOLD_REMEASURE_MINUTES.min(self.max_event_age_minutes.saturating_sub(1)).max(1))
    }
}

fn default_topics() -> Vec<String> {
    use dolbom_contract::{topics::filter_all, Kind};
    // Settled re-measures are what a held arrival's text waits for.
    vec![filter_all(Kind::Attendance), filter_all(Kind::Temperature)]
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
fn default_clock_skew() -> u64 {
    300
}
fn default_directory_poll() -> u64 {
    5
}
fn default_replan() -> u64 {
    60
}

/// Whether the MQTT topic filter `filter` (`+` one level, `#` the rest) matches `topic`.
fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        match (f, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// Each number's allowed range: a typo (a missing unit, an extra zero) is named at start-up
/// instead of turning into a relay that never retries, or texts yesterday's arrivals.
fn check_numbers(r: &RelaySettings) -> Result<(), String> {
    let within = |key: &str, v: i128, lo: i128, hi: i128| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(format!("`relay.{key}` must be {lo}-{hi} (is {v})"))
        }
    };
    let age = i128::from(r.max_event_age_minutes);
    within("max_event_age_minutes", age, 1, 10_080)?;
    within("max_attempts", r.max_attempts.into(), 1, 100)?;
    within("retry_initial_ms", r.retry_initial_ms.into(), 10, 600_000)?;
    within("retry_max_ms", r.retry_max_ms.into(), r.retry_initial_ms.into(), 86_400_000)?;
    // Large values are how a load test switches the limit off.
    within("rate_limit_per_hour", r.rate_limit_per_hour.into(), 1, 1_000_000)?;
    within("senders", r.senders as i128, 1, 64)?;
    within("retention_days", r.retention_days.into(), 1, 3_650)?;
    within("max_clock_skew_seconds", r.max_clock_skew_seconds.into(), 0, 3_600)?;
    within("directory_poll_seconds", r.directory_poll_seconds.into(), 1, 3_600)?;
    within("replan_unknown_minutes", r.replan_unknown_minutes.into(), 0, age.min(1_440))?;
    // Only a value the file sets can be wrong; the default fits under max_event_age_minutes.
    match r.hold_remeasure_minutes {
        Some(hold) => within("hold_remeasure_minutes", hold.into(), 1, (age - 1).clamp(1, 720)),
        None => Ok(()),
    }
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
        check_numbers(r).map_err(err)?;
        if !r.hears_temperature() {
            tracing::warn!(
                config = %path.display(),
                topics = ?r.topics,
                "relay.topics does not cover dolbom/v1/+/+/event/temperature: arrivals asked to re-measure will \
                 wait relay.hold_remeasure_minutes and be texted \"not completed\"; add it to relay.topics \
                 (relay.topics에 event/temperature가 없어 재측정 등원 문자가 '측정 미완료'로 나갑니다)"
            );
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
        file.provider.check_secret().map_err(err)?;
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
        if u64::from(r.retention_days) * 1440 <= r.max_event_age_minutes {
            return Err(err("`relay.retention_days` must be longer than `relay.max_event_age_minutes`".into()));
        }
        Ok(file)
    }

    /// Reads the secrets' files (`mqtt.password_file`, the gateway's `_file` key); `config` is
    /// the file this was loaded from. Only the daemon needs them: `dolbom relay log` does not.
    pub fn load_secrets(&mut self, config: &Path) -> Result<(), RelayError> {
        let base = config.parent().unwrap_or_else(|| Path::new("."));
        let err = |e: &dyn std::fmt::Display| RelayError::Config { path: config.to_path_buf(), message: e.to_string() };
        self.mqtt.load_secrets(base).map_err(|e| err(&e))?;
        self.provider.load_secrets(base).map_err(|e| err(&e))
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

    /// The shipped examples: the installed relay's and the demo's.
    #[test]
    fn the_shipped_configs_load() {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        for name in ["relay.toml", "sample-relay.toml"] {
            let file = RelayFile::load(&config.join(name)).unwrap_or_else(|e| panic!("config/{name}: {e}"));
            assert!(file.relay.topics.iter().any(|t| t.ends_with("/event/fever")), "config/{name}");
        }
    }

    #[test]
    fn a_minimal_file_loads() {
        let file = load(BASE).expect("loads");
        assert_eq!(
            file.relay.topics,
            ["dolbom/v1/+/+/event/attendance", "dolbom/v1/+/+/event/temperature"].map(String::from).to_vec()
        );
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

    /// Every number in `[relay]` has a range, and a value outside it is refused naming its key.
    #[test]
    fn every_number_is_bounded_and_named() {
        let cases = [
            ("max_event_age_minutes", &["0", "10081", "-1"][..]),
            ("max_attempts", &["0", "101", "-3"]),
            ("retry_initial_ms", &["0", "9", "600001"]),
            ("retry_max_ms", &["1", "86400001"]),
            ("rate_limit_per_hour", &["0", "1000001", "-1"]),
            ("senders", &["0", "65"]),
            ("retention_days", &["0", "3651"]),
            ("max_clock_skew_seconds", &["3601", "-1"]),
            ("directory_poll_seconds", &["0", "3601"]),
            ("replan_unknown_minutes", &["121", "1441", "-1"]),
            ("hold_remeasure_minutes", &["0", "120", "-1"]),
        ];
        for (key, values) in cases {
            for v in values {
                let text = BASE.replace("[provider]", &format!("{key} = {v}\n\n[provider]"));
                let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
                // Negative numbers for unsigned keys are refused by the TOML reader, which names
                // the key on its own line.
                let named = err.contains(&format!("`relay.{key}`")) || (v.starts_with('-') && err.contains(key));
                assert!(named, "{key} = {v}: {err:?}");
            }
        }
        let file = load(BASE).expect("defaults are within bounds");
        assert_eq!((file.relay.max_clock_skew_seconds, file.relay.replan_unknown_minutes), (300, 60));
        let err = load(&BASE.replace("kind = \"console\"", "kind = \"webhook\"\nurl = \"http://x\"\ntimeout_ms = 99"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`provider.timeout_ms`"), "{err}");
    }

    /// Listed topics without `event/temperature` are what an older relay.toml has: noticed.
    #[test]
    fn topics_without_temperature_are_noticed() {
        let with = |topics: &str| {
            let text = BASE.replace("[provider]", &format!("topics = {topics}\n\n[provider]"));
            load(&text).expect("loads").relay.hears_temperature()
        };
        assert!(load(BASE).expect("defaults").relay.hears_temperature());
        assert!(!with(r#"["dolbom/v1/+/+/event/attendance", "dolbom/v1/+/+/event/fever"]"#));
        assert!(with(r#"["dolbom/v1/+/+/event/attendance", "dolbom/v1/+/+/event/temperature"]"#));
        assert!(with(r#"["dolbom/v1/#"]"#));
        assert!(with(r#"["dolbom/v1/+/+/event/+"]"#));
        assert!(!with(r#"["dolbom/v1/+/+/event/temperature/x"]"#));
        assert!(!with(r#"["dolbom/v1/+/+/event"]"#));
    }

    /// A relay.toml from before `hold_remeasure_minutes` existed, with a short
    /// `max_event_age_minutes`, still loads: the unset hold fits under it. A value the file sets
    /// is still checked against it, by name.
    #[test]
    fn the_hold_default_fits_under_a_short_max_event_age() {
        let with = |keys: &str| BASE.replace("[provider]", &format!("{keys}\n\n[provider]"));
        assert_eq!(load(BASE).expect("defaults").relay.hold_remeasure(), 45);
        // (replan_unknown_minutes is set: its own default, 60, is refused under a 30-minute age.)
        let older = "max_event_age_minutes = 30\nreplan_unknown_minutes = 10";
        let file = load(&with(older)).expect("an older relay.toml keeps loading");
        assert_eq!(file.relay.hold_remeasure(), 29);
        let file = load(&with("max_event_age_minutes = 1\nreplan_unknown_minutes = 0")).expect("the shortest age");
        assert_eq!(file.relay.hold_remeasure(), 1);
        let err = load(&with(&format!("{older}\nhold_remeasure_minutes = 45")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`relay.hold_remeasure_minutes`"), "{err}");
        let file = load(&with(&format!("{older}\nhold_remeasure_minutes = 20"))).expect("set and fitting");
        assert_eq!(file.relay.hold_remeasure(), 20);
    }
}

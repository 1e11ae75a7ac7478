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
    /// PostgreSQL connection string (several relays sharing one store), without a password.
    #[serde(default)]
    pub postgres: Option<String>,
    /// The PostgreSQL password's file (see `dolbom_secret`): a path others cannot read, or
    /// `$CREDENTIALS_DIRECTORY/NAME` for systemd's `LoadCredential=NAME:PATH`.
    #[serde(default)]
    pub postgres_password_file: Option<PathBuf>,
    /// The password read from `postgres_password_file` by [`RelayFile::load_store_secret`].
    #[serde(skip)]
    pub postgres_password: Option<crate::store::Password>,
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
    /// the directory changes, if they are at most this old (0: never). Unset: 60, or
    /// `max_event_age_minutes` when that is shorter (an older event is not delivered anyway);
    /// read it through [`RelaySettings::replan_unknown`].
    #[serde(default)]
    pub replan_unknown_minutes: Option<u64>,
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
/// The replan window when `relay.replan_unknown_minutes` is not set and the age allows it.
pub const DEFAULT_REPLAN_UNKNOWN_MINUTES: u64 = 60;

impl RelaySettings {
    /// Whether `relay.topics` receives the kiosks' `event/temperature`. A relay.toml from before
    /// the re-measure flow that lists its topics may not: then every held arrival waits the whole
    /// `hold_remeasure_minutes` and is texted "not completed", with no other sign.
    /// A filter for one center's (or kiosk's) attendance needs its temperature beside it.
    pub fn hears_temperature(&self) -> bool {
        use dolbom_contract::{topics::filter_all, Kind};
        // "event/attendance", "event/temperature": what follows `dolbom/v1/{center}/{kiosk}/`.
        let tail = |kind| filter_all(kind).split('/').skip(4).collect::<Vec<_>>().join("/");
        let (attendance, temperature) = (tail(Kind::Attendance), tail(Kind::Temperature));
        let heard = |topic: &str| self.topics.iter().any(|f| filter_matches(f, topic));
        let wanted: Vec<String> = self
            .topics
            .iter()
            .filter_map(|f| f.strip_suffix(attendance.as_str()).map(|root| format!("{root}{temperature}")))
            .collect();
        if wanted.is_empty() {
            heard(&filter_all(Kind::Temperature).replace('+', "center"))
        } else {
            wanted.iter().all(|t| heard(t))
        }
    }

    /// `relay.replan_unknown_minutes`, or its default under this file's `max_event_age_minutes`.
    pub fn replan_unknown(&self) -> u64 {
        self.replan_unknown_minutes.unwrap_or_else(|| DEFAULT_REPLAN_UNKNOWN_MINUTES.min(self.max_event_age_minutes))
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
    // Only a value the file sets can be wrong; the defaults fit under max_event_age_minutes.
    if let Some(replan) = r.replan_unknown_minutes {
        within("replan_unknown_minutes", replan.into(), 0, age.min(1_440))?;
    }
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
        if r.postgres_password_file.is_some() && r.postgres.is_none() {
            return Err(err("`relay.postgres_password_file` is for `relay.postgres`".into()));
        }
        // A password in the config file leaks with every copy, backup and screenshot of it.
        if r.postgres.as_deref().is_some_and(has_inline_password) {
            return Err(err(
                "`relay.postgres`: a password written in the connection string is refused: put it in a file only \
                 the relay can read and name it with `relay.postgres_password_file` (or hand it over with systemd's \
                 LoadCredential= and relay.postgres_password_file = \"$CREDENTIALS_DIRECTORY/NAME\"), or in a libpq \
                 password file named by PGPASSFILE"
                    .into(),
            ));
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
        self.provider.load_secrets(base).map_err(|e| err(&e))?;
        self.load_store_secret(config)
    }

    /// Reads `relay.postgres_password_file`: the daemon and `dolbom relay log` both open the store.
    pub fn load_store_secret(&mut self, config: &Path) -> Result<(), RelayError> {
        let base = config.parent().unwrap_or_else(|| Path::new("."));
        if let Some(spec) = &self.relay.postgres_password_file {
            let password = dolbom_secret::read("relay.postgres_password_file", spec, base)
                .map_err(|e| RelayError::Config { path: config.to_path_buf(), message: e.to_string() })?;
            self.relay.postgres_password = Some(crate::store::Password(password));
        } else if let (Some(params), Some(file)) = (&self.relay.postgres, std::env::var_os("PGPASSFILE")) {
            // libpq's password file, which the relay's driver does not read by itself; owner-only,
            // as libpq insists.
            let text = dolbom_secret::read_owner_only("PGPASSFILE", Path::new(&file), base)
                .map_err(|e| RelayError::Config { path: config.to_path_buf(), message: e.to_string() })?;
            if let Ok(c) = params.parse::<postgres::Config>() {
                let target = PgTarget::of(&c);
                self.relay.postgres_password = target.lookup(&text).map(crate::store::Password);
                if self.relay.postgres_password.is_none() {
                    // Otherwise the only sign is the server's "password authentication failed".
                    tracing::warn!(
                        pgpassfile = %Path::new(&file).display(), host = %target.host, port = %target.port,
                        db = %target.db, user = %target.user,
                        "PGPASSFILE holds no line for this connection; connecting without a password \
                         / PGPASSFILE 에 이 연결의 줄이 없어 비밀번호 없이 접속합니다"
                    );
                }
            }
        }
        Ok(())
    }

    pub fn store(&self) -> StoreConfig {
        match (&self.relay.postgres, &self.relay.database) {
            (Some(params), _) => StoreConfig::Postgres {
                params: params.clone(),
                password: self.relay.postgres_password.clone(),
                ca: self.relay.postgres_ca.clone(),
            },
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

/// Whether a libpq connection string (`key=value …` or a `postgresql://` URL) carries a
/// password. One that does not parse is left to the store, whose message never repeats it.
fn has_inline_password(params: &str) -> bool {
    params.parse::<postgres::Config>().is_ok_and(|c| c.get_password().is_some())
}

/// What a libpq password file line is matched against: the connection's first host
/// (`localhost` for a socket or none), port, database and user, defaulted as the driver does
/// (the user is the OS user's name, the database the user's).
#[derive(Debug, PartialEq)]
struct PgTarget {
    host: String,
    port: String,
    db: String,
    user: String,
}

impl PgTarget {
    fn of(c: &postgres::Config) -> Self {
        Self::with_os_user(c, || whoami::username().ok())
    }

    fn with_os_user(c: &postgres::Config, os_user: impl FnOnce() -> Option<String>) -> Self {
        let host = match c.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_string(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
        // libpq would try PGUSER first; the driver does not read it, so neither does this. An OS
        // user without a name matches only `*` lines, as the driver then cannot connect.
        let user = c.get_user().map(str::to_string).or_else(os_user).unwrap_or_default();
        let db = c.get_dbname().map_or_else(|| user.clone(), str::to_string);
        PgTarget { host, port, db, user }
    }

    /// The password of the first line (`host:port:database:user:password`, `*` for any, `\\:`
    /// and `\\\\` escaped) that matches, as libpq reads the file.
    fn lookup(&self, text: &str) -> Option<String> {
        let want = [self.host.as_str(), self.port.as_str(), self.db.as_str(), self.user.as_str()];
        text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|line| {
            let mut fields = vec![String::new()];
            let mut chars = line.chars();
            while let Some(ch) = chars.next() {
                match ch {
                    '\\' => fields.last_mut()?.extend(chars.next()),
                    ':' if fields.len() < 5 => fields.push(String::new()),
                    _ => fields.last_mut()?.push(ch),
                }
            }
            let matches = fields.len() == 5 && want.iter().zip(&fields).all(|(w, f)| f == "*" || f == w);
            matches.then(|| fields[4].clone())
        })
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

    /// The PostgreSQL password comes from its own file, never the connection string (in
    /// either form), and the error names the key to use.
    #[test]
    fn an_inline_postgres_password_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let pg = |params: &str, extra: &str| {
            BASE.replace("database = \"relay.db\"", &format!("postgres = \"{params}\"\n{extra}"))
                .replace("[relay]", "[mqtt]\nclient_id = \"r1\"\n\n[relay]")
        };
        for params in ["host=db user=relay password=hunter2 dbname=dolbom", "postgresql://relay:hunter2@db/dolbom"] {
            let e = load(&pg(params, "")).expect_err("inline password").to_string();
            assert!(e.contains("`relay.postgres`") && e.contains("relay.postgres_password_file"), "{e}");
            assert!(!e.contains("hunter2"), "the error never repeats the password: {e}");
        }
        let e = load(&BASE.replace("[relay]", "[relay]\npostgres_password_file = \"pw\"")).expect_err("no postgres");
        assert!(e.to_string().contains("`relay.postgres_password_file` is for `relay.postgres`"), "{e}");

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, pg("host=db user=relay dbname=dolbom", "postgres_password_file = \"pg-password\""))
            .expect("write");
        std::fs::write(dir.path().join("pg-password"), "hunter2\n").expect("write");
        std::fs::set_permissions(dir.path().join("pg-password"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let mut file = RelayFile::load(&path).expect("loads");
        let e = file.load_store_secret(&path).expect_err("world-readable").to_string();
        assert!(e.contains("relay.postgres_password_file"), "{e}");
        std::fs::set_permissions(dir.path().join("pg-password"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        file.load_store_secret(&path).expect("an owner-only file");
        match file.store() {
            StoreConfig::Postgres { params, password, .. } => {
                let password = password.map(|p| p.0);
                assert_eq!(
                    (params.as_str(), password.as_deref()),
                    ("host=db user=relay dbname=dolbom", Some("hunter2"))
                );
            }
            StoreConfig::Sqlite(_) => panic!("postgres"),
        }
        assert!(!format!("{:?} {:?}", file.relay, file.store()).contains("hunter2"), "Debug never shows it");
    }

    #[test]
    fn a_pgpass_file_is_read_as_libpq_reads_it() {
        let target = |params: &str| PgTarget::of(&params.parse::<postgres::Config>().expect("parses"));
        let t = target("host=db port=5433 user=relay dbname=dolbom");
        let file = "# comment\nother:5433:dolbom:relay:no\ndb:5433:dolbom:relay:pa\\:ss\\\\w\n*:*:*:relay:later\n";
        assert_eq!(t.lookup(file).as_deref(), Some("pa:ss\\w"));
        assert_eq!(t.lookup("*:*:*:relay:any\n").as_deref(), Some("any"));
        assert_eq!(t.lookup("db:5432:dolbom:relay:wrongport\n"), None);
        let t = target("host=db user=relay");
        assert_eq!(t.lookup("db:5432:relay:relay:defaults\n").as_deref(), Some("defaults"));
    }

    /// Without `user=`, the OS user's name, as libpq and the driver use; the database defaults
    /// to it too.
    #[test]
    fn a_pgpass_lookup_without_a_user_uses_the_os_user() {
        let c: postgres::Config = "host=db dbname=dolbom".parse().expect("parses");
        let t = PgTarget::with_os_user(&c, || Some("kiosk".into()));
        assert_eq!(t.user, "kiosk");
        assert_eq!(t.lookup("db:5432:dolbom:relay:no\ndb:5432:dolbom:kiosk:yes\n").as_deref(), Some("yes"));
        let c: postgres::Config = "host=db".parse().expect("parses");
        let t = PgTarget::with_os_user(&c, || Some("kiosk".into()));
        assert_eq!((t.db.as_str(), t.lookup("db:5432:kiosk:kiosk:own\n").as_deref()), ("kiosk", Some("own")));
        // The real one: the name the driver itself would log in as.
        let me = whoami::username().expect("this process's user has a name");
        assert_eq!(PgTarget::of(&c).user, me);
        let t = PgTarget::with_os_user(&c, || None);
        assert_eq!(t.lookup("db:5432::pw\n"), None, "no name matches no named line");
        assert_eq!(t.lookup("*:*:*:*:any\n").as_deref(), Some("any"));
    }

    /// The PGPASSFILE path through `load_store_secret`: owner-only or refused by name, and a file
    /// without a matching line is said in the log (never with a password). One test, as it sets
    /// the process's PGPASSFILE.
    #[test]
    fn pgpassfile_is_owner_only_and_a_miss_is_logged() {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        let text = BASE
            .replace("database = \"relay.db\"", "postgres = \"host=db port=5433 user=relay dbname=dolbom\"")
            .replace("[relay]", "[mqtt]\nclient_id = \"r1\"\n\n[relay]");
        std::fs::write(&path, text).expect("write");
        let pgpass = dir.path().join("pgpass");
        let set = |text: &str, mode: u32| {
            std::fs::write(&pgpass, text).expect("write");
            std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        std::env::set_var("PGPASSFILE", &pgpass);
        let mut file = RelayFile::load(&path).expect("loads");

        set("db:5433:dolbom:relay:hunter2\n", 0o640);
        let e = file.load_store_secret(&path).expect_err("group-readable").to_string();
        assert!(e.contains("`PGPASSFILE`") && e.contains("0640") && !e.contains("hunter2"), "{e}");
        set("db:5433:dolbom:relay:hunter2\n", 0o600);
        file.load_store_secret(&path).expect("owner-only");
        assert_eq!(file.relay.postgres_password.as_ref().map(|p| p.0.as_str()), Some("hunter2"));

        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        set("db:5432:dolbom:relay:hunter2\nother:5433:dolbom:relay:hunter3\n", 0o600);
        tracing::subscriber::with_default(subscriber, || file.load_store_secret(&path)).expect("a miss loads");
        std::env::remove_var("PGPASSFILE");
        assert!(file.relay.postgres_password.is_none(), "no line, no password");
        let logged = String::from_utf8(log.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(logged.contains("WARN") && logged.contains("PGPASSFILE"), "{logged}");
        for field in ["host=db", "port=5433", "db=dolbom", "user=relay", &pgpass.display().to_string()] {
            assert!(logged.contains(field), "{field} in {logged}");
        }
        assert!(!logged.contains("hunter"), "never a password: {logged}");
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
        assert_eq!((file.relay.max_clock_skew_seconds, file.relay.replan_unknown()), (300, 60));
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
        // One center's relay (the ACL generator's `relay NAME CENTER`).
        assert!(with(r#"["dolbom/v1/sunshine/+/event/attendance", "dolbom/v1/sunshine/+/event/temperature"]"#));
        assert!(with(r#"["dolbom/v1/sunshine/+/event/attendance", "dolbom/v1/sunshine/#"]"#));
        assert!(!with(r#"["dolbom/v1/sunshine/+/event/attendance", "dolbom/v1/moon/+/event/temperature"]"#));
        assert!(!with(r#"["dolbom/v1/sunshine/+/event/attendance"]"#));
    }

    /// A relay.toml from before `hold_remeasure_minutes` existed, with a short
    /// `max_event_age_minutes`, still loads: the unset hold fits under it. A value the file sets
    /// is still checked against it, by name.
    #[test]
    fn the_hold_default_fits_under_a_short_max_event_age() {
        let with = |keys: &str| BASE.replace("[provider]", &format!("{keys}\n\n[provider]"));
        assert_eq!(load(BASE).expect("defaults").relay.hold_remeasure(), 45);
        // Neither default is refused under a short age: both fit under it.
        let file = load(&with("max_event_age_minutes = 30")).expect("an older relay.toml keeps loading");
        assert_eq!((file.relay.hold_remeasure(), file.relay.replan_unknown()), (29, 30));
        let older = "max_event_age_minutes = 30\nreplan_unknown_minutes = 10";
        let file = load(&with(older)).expect("an older relay.toml keeps loading");
        assert_eq!((file.relay.hold_remeasure(), file.relay.replan_unknown()), (29, 10));
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

//! `[commands]` and the gate every staff command passes before it is handled: the signature
//! (HMAC-SHA256, see `dolbom_contract::signed`), its age, and its nonce's single use, which is
//! remembered in the kiosk database so a restart does not reopen the door to a replay.
//!
//! The gate knows nothing of what a command does: it turns a message on any `cmd/...` topic
//! into the command's body, or into a refusal with its reason. A new staff action is covered
//! as soon as it has a topic.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::Deserialize;
use tracing::{info, warn};

use dolbom_contract::signed::{self, Refusal, SignedCommand, Window};

use crate::store::StoreError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// Shared keys staff clients sign with; each file holds one secret of at least 32 bytes
    /// (`openssl rand -hex 32`), readable by the service alone.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Accept unsigned commands too: only while moving staff clients to signed ones. Logged
    /// loudly at start and on every unsigned command.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// A signed command older than this is refused as expired.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// How far ahead of this kiosk's clock a command's time may be.
    #[serde(default = "default_max_skew_secs")]
    pub max_skew_secs: u64,
    /// The key `dolbom alerts silence|resolve` signs with; default the first of `keys`.
    #[serde(default)]
    pub sign_with: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub id: String,
    /// A path (relative to the config file) or `$CREDENTIALS_DIRECTORY/NAME`.
    pub file: PathBuf,
}

/// The limits validation puts on the window; nonces are kept for the largest one allowed.
const MIN_AGE_SECS: u64 = 10;
const MAX_AGE_SECS: u64 = 3600;
const MAX_SKEW_SECS: u64 = 300;

fn default_max_age_secs() -> u64 {
    120
}
fn default_max_skew_secs() -> u64 {
    30
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            allow_unsigned: false,
            max_age_secs: default_max_age_secs(),
            max_skew_secs: default_max_skew_secs(),
            sign_with: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("`commands.keys[{id}].file`{}", after_key(source))]
    Secret { id: String, source: dolbom_secret::SecretError },
    #[error(
        "`commands.keys[{id}].file`: the key is {len} bytes; it must be at least {min} (e.g. `openssl rand -hex 32`)"
    )]
    TooShort { id: String, len: usize, min: usize },
}

/// The secret's message without its leading "`commands.keys.file`", which names no key id.
fn after_key(e: &dolbom_secret::SecretError) -> String {
    let text = e.to_string();
    text.strip_prefix("`commands.keys.file`").map(str::to_string).unwrap_or_else(|| format!(": {text}"))
}

impl CommandsConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(MIN_AGE_SECS..=MAX_AGE_SECS).contains(&self.max_age_secs) {
            return Err((
                "commands.max_age_secs",
                format!("= {}: must be between {MIN_AGE_SECS} and {MAX_AGE_SECS}", self.max_age_secs),
            ));
        }
        if self.max_skew_secs > MAX_SKEW_SECS {
            return Err((
                "commands.max_skew_secs",
                format!("= {}: must be at most {MAX_SKEW_SECS}", self.max_skew_secs),
            ));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if dolbom_contract::validate_id(&k.id).is_err() {
                return Err(("commands.keys", format!("id {:?}: use letters, digits, `-` and `_`", k.id)));
            }
            if self.keys[..i].iter().any(|o| o.id == k.id) {
                return Err(("commands.keys", format!("id `{}` appears twice", k.id)));
            }
        }
        if let Some(id) = &self.sign_with {
            if !self.keys.iter().any(|k| &k.id == id) {
                return Err(("commands.sign_with", format!("= {id:?}: no key with that id in commands.keys")));
            }
        }
        Ok(())
    }

    /// Reads every key's file (relative paths from `base`, the config file's directory).
    pub fn load(&self, base: &Path) -> Result<CommandGate, KeyError> {
        let mut keys = Vec::new();
        for k in &self.keys {
            let secret = dolbom_secret::read("commands.keys.file", &k.file, base)
                .map_err(|source| KeyError::Secret { id: k.id.clone(), source })?;
            if secret.len() < signed::MIN_KEY_LEN {
                return Err(KeyError::TooShort { id: k.id.clone(), len: secret.len(), min: signed::MIN_KEY_LEN });
            }
            keys.push((k.id.clone(), secret.into_bytes()));
        }
        Ok(CommandGate {
            keys,
            allow_unsigned: self.allow_unsigned,
            window: Window { max_age_secs: self.max_age_secs as i64, max_skew_secs: self.max_skew_secs as i64 },
            sign_with: self.sign_with.clone(),
        })
    }
}

/// What a message on a command topic turned out to be.
#[derive(Debug)]
pub enum Admitted {
    /// The command's body, to be handled; `key_id` None for an unsigned one let through.
    Command {
        body: Vec<u8>,
        key_id: Option<String>,
    },
    Refused {
        refusal: Refusal,
        body: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct CommandGate {
    keys: Vec<(String, Vec<u8>)>,
    allow_unsigned: bool,
    window: Window,
    sign_with: Option<String>,
}

impl CommandGate {
    /// Says at start what the gate lets through, loudly when it lets unsigned commands in.
    pub fn announce(&self) {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        if self.allow_unsigned {
            warn!(
                target: "audit",
                keys = ?ids,
                "commands.allow_unsigned = true: UNSIGNED STAFF COMMANDS ARE ACCEPTED; anyone who can publish to \
                 this kiosk's cmd/ topics can silence a fever alert. Sign commands and remove this setting."
            );
        } else if ids.is_empty() {
            warn!(target: "audit", "no commands.keys: every staff command will be refused (see docs/security.md)");
        } else {
            info!(target: "audit", keys = ?ids, max_age_secs = self.window.max_age_secs, "staff commands must be signed");
        }
    }

    /// Checks one message on `topic`. Records a signed command's nonce in `conn` (and forgets
    /// those too old to matter), so the same message is refused as a replay from then on, also
    /// after a restart.
    pub fn admit(&self, conn: &Connection, topic: &str, payload: &[u8], now_ms: i64) -> Result<Admitted, StoreError> {
        let signed = match signed::parse(payload) {
            Ok(Some(s)) => s,
            Ok(None) if self.allow_unsigned => {
                warn!(target: "audit", topic, "unsigned command accepted (commands.allow_unsigned = true)");
                return Ok(Admitted::Command { body: payload.to_vec(), key_id: None });
            }
            // Nobody vouched for an unsigned body: its ids are not repeated in the answer.
            Ok(None) => return Ok(Admitted::Refused { refusal: Refusal::Unsigned, body: None }),
            Err(refusal) => return Ok(Admitted::Refused { refusal, body: None }),
        };
        let key = |id: &str| self.keys.iter().find(|(k, _)| k == id).map(|(_, v)| v.as_slice());
        if let Err(refusal) = signed::verify(&signed, topic, key, now_ms, self.window) {
            // Only a body whose signature held (refused for its time alone) may have its
            // request_id and alert_id repeated; a forged or unknown-key one would otherwise let
            // anyone put their chosen ids into the kiosk's signed-looking answers.
            let verified = matches!(refusal, Refusal::Expired { .. } | Refusal::FromTheFuture { .. });
            return Ok(Admitted::Refused { refusal, body: verified.then_some(signed.body) });
        }
        // Nonces older than any window validation allows cannot come back (their age refuses
        // them), so they go. Pruning by the current window instead would let a later, larger
        // max_age_secs accept a nonce already forgotten.
        let horizon = now_ms - (MAX_AGE_SECS + MAX_SKEW_SECS) as i64 * 1000;
        conn.execute("DELETE FROM command_nonces WHERE ts_ms < ?1", params![horizon])?;
        let fresh = conn.execute(
            "INSERT OR IGNORE INTO command_nonces (key_id, nonce, ts_ms, seen_ms) VALUES (?1, ?2, ?3, ?4)",
            params![signed.key_id, signed.nonce, signed.ts_ms, now_ms],
        )?;
        if fresh == 0 {
            return Ok(Admitted::Refused { refusal: Refusal::Replayed(signed.nonce), body: Some(signed.body) });
        }
        Ok(Admitted::Command { body: signed.body.into_bytes(), key_id: Some(signed.key_id) })
    }

    /// Signs `body` for `topic` with `commands.sign_with` (or the first key); None without keys.
    pub fn sign(&self, topic: &str, body: &str, now_ms: i64) -> Option<SignedCommand> {
        let (id, key) = match &self.sign_with {
            Some(want) => self.keys.iter().find(|(id, _)| id == want)?,
            None => self.keys.first()?,
        };
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        Some(signed::sign(key, id, topic, body, now_ms, &nonce))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn gate(dir: &Path, allow_unsigned: bool) -> CommandGate {
        gate_with(dir, &format!("allow_unsigned = {allow_unsigned}"))
    }

    fn gate_with(dir: &Path, settings: &str) -> CommandGate {
        let file = dir.join("office.key");
        std::fs::write(&file, "0123456789abcdef0123456789abcdef\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c: CommandsConfig =
            toml::from_str(&format!("{settings}\n[[keys]]\nid = \"office\"\nfile = \"office.key\"")).expect("parses");
        c.validate().expect("valid");
        c.load(dir).expect("keys")
    }

    const TOPIC: &str = "dolbom/v1/c/k/cmd/silence";
    const BODY: &str = r#"{"alert_id":"a","by":"kim"}"#;

    fn refusal(a: Admitted) -> &'static str {
        match a {
            Admitted::Refused { refusal, .. } => refusal.code(),
            Admitted::Command { .. } => "admitted",
        }
    }

    #[test]
    fn a_nonce_is_used_once_even_across_a_reopened_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = gate(dir.path(), false);
        let now = jiff::Timestamp::now().as_millisecond();
        let wire = serde_json::to_vec(&g.sign(TOPIC, BODY, now).expect("a key")).expect("json");
        let db = dir.path().join("k.db");
        {
            let store = crate::store::Store::open(&db).expect("store");
            let conn = store.lock().expect("lock");
            assert_eq!(refusal(g.admit(&conn, TOPIC, &wire, now).expect("admit")), "admitted");
        }
        let store = crate::store::Store::open(&db).expect("reopened");
        let conn = store.lock().expect("lock");
        assert_eq!(refusal(g.admit(&conn, TOPIC, &wire, now + 1000).expect("admit")), "replayed");
        assert_eq!(refusal(g.admit(&conn, TOPIC, BODY.as_bytes(), now).expect("admit")), "unsigned");
        let open = gate(dir.path(), true);
        assert_eq!(refusal(open.admit(&conn, TOPIC, BODY.as_bytes(), now).expect("admit")), "admitted");
    }

    #[test]
    fn a_larger_max_age_later_cannot_replay_a_pruned_nonce() {
        let dir = tempfile::tempdir().expect("tempdir");
        let short = gate_with(dir.path(), "max_age_secs = 120");
        let long = gate_with(dir.path(), "max_age_secs = 3600");
        let store = crate::store::Store::open(&dir.path().join("k.db")).expect("store");
        let conn = store.lock().expect("lock");
        let now = jiff::Timestamp::now().as_millisecond();
        // Signed 10 minutes ago: within the long window, outside the short one.
        let old = serde_json::to_vec(&long.sign(TOPIC, BODY, now - 600_000).expect("a key")).expect("json");
        assert_eq!(refusal(long.admit(&conn, TOPIC, &old, now).expect("admit")), "admitted");
        // The short window's gate admits a fresh command, pruning as it goes.
        let fresh = serde_json::to_vec(&short.sign(TOPIC, BODY, now).expect("a key")).expect("json");
        assert_eq!(refusal(short.admit(&conn, TOPIC, &fresh, now).expect("admit")), "admitted");
        assert_eq!(refusal(long.admit(&conn, TOPIC, &old, now + 1000).expect("admit")), "replayed");
    }

    #[test]
    fn only_a_verified_body_is_handed_back_with_a_refusal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = gate(dir.path(), false);
        let store = crate::store::Store::open(&dir.path().join("k.db")).expect("store");
        let conn = store.lock().expect("lock");
        let now = jiff::Timestamp::now().as_millisecond();
        let wire = |s: SignedCommand| serde_json::to_vec(&s).expect("json");
        let ok = wire(g.sign(TOPIC, BODY, now).expect("a key"));
        assert_eq!(refusal(g.admit(&conn, TOPIC, &ok, now).expect("admit")), "admitted");
        let other_key = b"not the office key, but 32 bytes";
        for (what, payload, code, handed_back) in [
            ("replayed", ok, "replayed", true),
            ("expired", wire(g.sign(TOPIC, BODY, now - 600_000).expect("a key")), "expired", true),
            ("ahead", wire(g.sign(TOPIC, BODY, now + 600_000).expect("a key")), "future", true),
            (
                "forged",
                wire(signed::sign(other_key, "office", TOPIC, BODY, now, "forged-nonce-1")),
                "bad-signature",
                false,
            ),
            (
                "unknown key",
                wire(signed::sign(other_key, "nobody", TOPIC, BODY, now, "forged-nonce-2")),
                "unknown-key",
                false,
            ),
            ("unsigned", BODY.as_bytes().to_vec(), "unsigned", false),
        ] {
            match g.admit(&conn, TOPIC, &payload, now).expect("admit") {
                Admitted::Refused { refusal, body } => {
                    assert_eq!(refusal.code(), code, "{what}");
                    assert_eq!(body.is_some(), handed_back, "{what}: {body:?}");
                }
                Admitted::Command { .. } => panic!("{what} admitted"),
            }
        }
    }

    #[test]
    fn key_file_errors_name_the_key_id_and_count_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c: CommandsConfig = toml::from_str("[[keys]]\nid = \"office\"\nfile = \"missing.key\"").expect("parses");
        let e = c.load(dir.path()).expect_err("no file").to_string();
        assert!(e.starts_with("`commands.keys[office].file`: ") && e.contains("does not exist"), "{e}");
        std::fs::write(dir.path().join("short.key"), "too short").expect("write");
        std::fs::set_permissions(dir.path().join("short.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c: CommandsConfig = toml::from_str("[[keys]]\nid = \"office\"\nfile = \"short.key\"").expect("parses");
        let e = c.load(dir.path()).expect_err("short").to_string();
        assert!(e.starts_with("`commands.keys[office].file`: the key is 9 bytes"), "{e}");
    }

    #[test]
    fn short_keys_and_duplicate_ids_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("short.key");
        std::fs::write(&file, "too short").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c: CommandsConfig = toml::from_str("[[keys]]\nid = \"a\"\nfile = \"short.key\"").expect("parses");
        assert!(matches!(c.load(dir.path()), Err(KeyError::TooShort { .. })));
        let c: CommandsConfig =
            toml::from_str("[[keys]]\nid = \"a\"\nfile = \"x\"\n[[keys]]\nid = \"a\"\nfile = \"y\"").expect("parses");
        assert_eq!(c.validate().map_err(|e| e.0), Err("commands.keys"));
        let c: CommandsConfig = toml::from_str("sign_with = \"b\"").expect("parses");
        assert_eq!(c.validate().map_err(|e| e.0), Err("commands.sign_with"));
    }
}

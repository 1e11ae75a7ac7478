//! The staff accounts file: TOML, `[[users]] id, name, hash, lang?`, the hash an Argon2id PHC
//! string. Written only by `dolbom console passwd/remove`, atomically and readable by its owner
//! alone; read by the daemon, which notices when the file changes.

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::lang::Lang;

/// Passwords shorter than this are refused when set.
pub const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("staff accounts file {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("staff accounts file {path}: {error}")]
    Parse { path: PathBuf, error: toml::de::Error },
    #[error("staff accounts file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password is shorter than {MIN_PASSWORD_CHARS} characters")]
    ShortPassword,
    #[error("`{0}` is no account id: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadId(String),
}

/// One staff member's account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub name: String,
    /// Argon2id PHC string.
    pub hash: String,
    /// The language pages open in until the staff member switches ("ko" or "en").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl User {
    pub fn lang(&self) -> Option<Lang> {
        self.lang.as_deref().map(Lang::from_code)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[serde(default)]
    pub users: Vec<User>,
}

impl Users {
    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Users>, UsersError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(UsersError::Io { path: path.to_path_buf(), error }),
        };
        let users: Users =
            toml::from_str(&text).map_err(|error| UsersError::Parse { path: path.to_path_buf(), error })?;
        let mut seen = std::collections::HashSet::new();
        for u in &users.users {
            if !seen.insert(u.id.as_str()) {
                return Err(UsersError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("`{}` is listed twice", u.id),
                });
            }
            if PasswordHash::new(&u.hash).is_err() {
                return Err(UsersError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "the hash of `{}` is no PHC string (set it again with `dolbom console passwd`)",
                        u.id
                    ),
                });
            }
        }
        Ok(Some(users))
    }

    /// Writes to a temporary file beside `path` (mode 0600), then renames it over `path`, so a
    /// reader sees the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |error| UsersError::Io { path: path.to_path_buf(), error };
        let text = toml::to_string_pretty(self).map_err(|e| UsersError::Hash(e.to_string()))?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "users".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        // A leftover of a crashed save with this pid goes; the new one must be a file of ours
        // (create_new does not follow a link planted there).
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        let header =
            "# dolbom staff console accounts: written by `dolbom console passwd`; do not edit hashes by hand.\n";
        file.write_all(header.as_bytes())
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io)?;
        // The rename itself survives a power cut only once the directory is on disk.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    /// Takes the accounts file's lock (`{file}.lock` beside it) for one load–change–save, so
    /// that two `dolbom console passwd` at once do not lose one's change. Held until the
    /// returned file is dropped.
    pub fn lock(path: &Path) -> Result<std::fs::File, UsersError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = std::path::PathBuf::from(name);
        let io = |error| UsersError::Io { path: lock_path.clone(), error };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }

    pub fn get(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// Adds the account or replaces its password (and name/lang when given).
    pub fn set(&mut self, id: &str, name: Option<&str>, lang: Option<Lang>, password: &str) -> Result<(), UsersError> {
        if dolbom_contract::validate_id(id).is_err() {
            return Err(UsersError::BadId(id.to_string()));
        }
        let hash = hash_password(password)?;
        let lang = lang.map(|l| l.code().to_string());
        match self.users.iter_mut().find(|u| u.id == id) {
            Some(u) => {
                u.hash = hash;
                if let Some(n) = name {
                    u.name = n.to_string();
                }
                if lang.is_some() {
                    u.lang = lang;
                }
            }
            None => self.users.push(User { id: id.into(), name: name.unwrap_or(id).into(), hash, lang }),
        }
        Ok(())
    }

    /// Whether the account was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u.id != id);
        before != self.users.len()
    }
}

/// Argon2id with m = 19456 KiB, t = 2, p = 1 (OWASP's first choice).
fn hasher() -> Argon2<'static> {
    // These constants are within Argon2's limits, so `Params::new` cannot fail; the default
    // params are the same values, kept as a fallback rather than a panic.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string for `password`; refuses one shorter than [`MIN_PASSWORD_CHARS`].
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UsersError::ShortPassword);
    }
    hash_any(password)
}

fn hash_any(password: &str) -> Result<String, UsersError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| UsersError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Whether `password` matches `phc` (the comparison inside is constant-time).
pub fn verify(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => hasher().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, checked against when the id is unknown, so a login for an
/// unknown id costs as long as one for a known id.
pub fn decoy_hash() -> String {
    let mut secret = [0u8; 24];
    rand::fill(&mut secret);
    hash_any(&hex::encode(secret)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_round_trips_and_a_wrong_one_fails() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse batterx"));
        assert!(!verify("not a hash", "correct horse battery"));
    }

    #[test]
    fn a_short_password_and_a_bad_id_are_refused() {
        let mut u = Users::default();
        assert!(matches!(u.set("kim", None, None, "short"), Err(UsersError::ShortPassword)));
        assert!(matches!(u.set("kim teacher", None, None, "long enough password"), Err(UsersError::BadId(_))));
        assert!(u.users.is_empty());
    }

    #[test]
    fn the_file_is_written_atomically_with_mode_0600_and_reads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("users.toml");
        assert_eq!(Users::load(&path).expect("missing is fine"), None);
        let mut u = Users::default();
        u.set("kim", Some("김선생"), Some(Lang::En), "a long password").expect("set");
        u.save(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = Users::load(&path).expect("load").expect("present");
        assert_eq!(back, u);
        assert_eq!(back.get("kim").and_then(User::lang), Some(Lang::En));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        let mut u = back;
        assert!(u.remove("kim"));
        assert!(!u.remove("kim"));
    }

    #[test]
    fn a_file_with_a_twice_listed_id_or_a_bad_hash_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "[[users]]\nid = \"kim\"\nname = \"k\"\nhash = \"plain\"\n").expect("write");
        let e = Users::load(&path).expect_err("bad hash").to_string();
        assert!(e.contains("kim") && e.contains("PHC"), "{e}");
    }
}

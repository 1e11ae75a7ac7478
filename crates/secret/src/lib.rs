//! Secrets (the broker password, an SMS gateway's key) live in files of their own, so a config
//! file can be shown, copied and backed up without leaking them. A `*_file` key names either
//!
//! - `$CREDENTIALS_DIRECTORY/NAME`: a credential systemd hands the service (`LoadCredential=NAME:PATH`
//!   in the unit; the copy is readable by the service alone and gone when it stops), or
//! - a path (relative ones are taken from the config file's directory) that others cannot read.
//!
//! The file holds the secret alone; one trailing newline is dropped.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// systemd sets it for a unit with `LoadCredential=`/`SetCredential=`.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

const PREFIXES: [&str; 2] = ["$CREDENTIALS_DIRECTORY/", "${CREDENTIALS_DIRECTORY}/"];

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("`{key}` = {spec:?}: CREDENTIALS_DIRECTORY is not set (it is set by systemd for a unit with LoadCredential=); run it under the unit, or name a file")]
    NoCredentials { key: &'static str, spec: String },
    #[error("`{key}`: {path} does not exist")]
    Missing { key: &'static str, path: PathBuf },
    #[error("`{key}`: {path} can be read by every user (mode {mode:04o}); `chmod o-rwx` it, or hand it over with systemd's LoadCredential=")]
    WorldReadable { key: &'static str, path: PathBuf, mode: u32 },
    #[error("`{key}`: {path} can be read by others than its owner (mode {mode:04o}), which libpq refuses too; `chmod 0600` it")]
    NotOwnerOnly { key: &'static str, path: PathBuf, mode: u32 },
    #[error("`{key}`: {path} is empty")]
    Empty { key: &'static str, path: PathBuf },
    #[error("`{key}`: {path} is not UTF-8 text")]
    NotText { key: &'static str, path: PathBuf },
    #[error("`{key}`: cannot read {path}: {error}")]
    Read { key: &'static str, path: PathBuf, error: std::io::Error },
}

impl SecretError {
    /// The config key the secret was named by.
    pub fn key(&self) -> &'static str {
        match self {
            SecretError::NoCredentials { key, .. }
            | SecretError::Missing { key, .. }
            | SecretError::WorldReadable { key, .. }
            | SecretError::NotOwnerOnly { key, .. }
            | SecretError::Empty { key, .. }
            | SecretError::NotText { key, .. }
            | SecretError::Read { key, .. } => key,
        }
    }
}

/// Whether `spec` names a systemd credential (`$CREDENTIALS_DIRECTORY/NAME`) rather than a path.
pub fn is_credential(spec: &Path) -> bool {
    let text = spec.to_string_lossy();
    PREFIXES.iter().any(|p| text.starts_with(p))
}

/// Where `spec` (the value of the config key `key`) points: `$CREDENTIALS_DIRECTORY/NAME` expands
/// from the environment; a relative path is taken from `base`, the config file's directory.
pub fn locate(key: &'static str, spec: &Path, base: &Path) -> Result<PathBuf, SecretError> {
    let text = spec.to_string_lossy();
    if let Some(name) = PREFIXES.iter().find_map(|p| text.strip_prefix(p)) {
        let dir = std::env::var_os(CREDENTIALS_DIRECTORY)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| SecretError::NoCredentials { key, spec: text.to_string() })?;
        return Ok(Path::new(&dir).join(name));
    }
    Ok(if spec.is_relative() { base.join(spec) } else { spec.to_path_buf() })
}

/// Reads the secret `spec` names (see [`locate`]). Refuses a file every user may read: a secret
/// that has already leaked to the machine's other accounts is a configuration error.
pub fn read(key: &'static str, spec: &Path, base: &Path) -> Result<String, SecretError> {
    read_with(key, spec, base, false)
}

/// [`read`] for a file its owner alone may read, group included: a libpq password file
/// (PGPASSFILE), which libpq itself ignores when its mode has any group or other bit.
pub fn read_owner_only(key: &'static str, spec: &Path, base: &Path) -> Result<String, SecretError> {
    read_with(key, spec, base, true)
}

fn read_with(key: &'static str, spec: &Path, base: &Path, owner_only: bool) -> Result<String, SecretError> {
    let path = locate(key, spec, base)?;
    let io = |error: std::io::Error| match error.kind() {
        ErrorKind::NotFound => SecretError::Missing { key, path: path.clone() },
        _ => SecretError::Read { key, path: path.clone(), error },
    };
    let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(SecretError::WorldReadable { key, path, mode });
    }
    if owner_only && mode & 0o077 != 0 {
        return Err(SecretError::NotOwnerOnly { key, path, mode });
    }
    let bytes = std::fs::read(&path).map_err(io)?;
    let mut text = String::from_utf8(bytes).map_err(|_| SecretError::NotText { key, path: path.clone() })?;
    for end in ["\n", "\r"] {
        if text.ends_with(end) {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(SecretError::Empty { key, path });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn reads_an_owner_only_file_relative_to_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "mqtt-password", "s3cret\n", 0o600);
        let got = read("mqtt.password_file", Path::new("mqtt-password"), dir.path()).expect("read");
        assert_eq!(got, "s3cret");
        // Group-readable is how root:dolbom 0640 files are shared with the service user.
        write(dir.path(), "key", "k\r\n", 0o640);
        assert_eq!(read("k", &dir.path().join("key"), Path::new("/nonexistent")).expect("read"), "k");
    }

    #[test]
    fn an_owner_only_secret_refuses_group_bits() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o640, 0o620, 0o610, 0o660] {
            write(dir.path(), "pgpass", "*:*:*:relay:pw\n", mode);
            let err = read_owner_only("PGPASSFILE", Path::new("pgpass"), dir.path()).expect_err("group or other bits");
            assert!(err.to_string().starts_with("`PGPASSFILE`") && err.to_string().contains("0600"), "{err}");
        }
        write(dir.path(), "pgpass", "*:*:*:relay:pw\n", 0o600);
        assert_eq!(read_owner_only("PGPASSFILE", Path::new("pgpass"), dir.path()).expect("0600"), "*:*:*:relay:pw");
        write(dir.path(), "pgpass", "*:*:*:relay:pw\n", 0o400);
        assert!(read_owner_only("PGPASSFILE", Path::new("pgpass"), dir.path()).is_ok(), "0400");
    }

    #[test]
    fn refuses_world_readable_empty_missing_and_binary_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "open", "s3cret", 0o644);
        let err = read("provider.api_secret_file", Path::new("open"), dir.path()).expect_err("0644");
        assert!(matches!(err, SecretError::WorldReadable { mode: 0o644, .. }), "{err}");
        assert!(err.to_string().starts_with("`provider.api_secret_file`"), "{err}");
        write(dir.path(), "empty", "\n", 0o600);
        assert!(matches!(read("k", Path::new("empty"), dir.path()), Err(SecretError::Empty { .. })));
        assert!(matches!(read("k", Path::new("absent"), dir.path()), Err(SecretError::Missing { .. })));
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe]).expect("write");
        std::fs::set_permissions(dir.path().join("bin"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(read("k", Path::new("bin"), dir.path()), Err(SecretError::NotText { .. })));
    }

    #[test]
    fn credentials_directory_comes_from_the_environment() {
        // The only test in this crate that touches the variable, so no other test races it.
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "gateway", "abc", 0o400);
        std::env::remove_var(CREDENTIALS_DIRECTORY);
        let err = read("k", Path::new("$CREDENTIALS_DIRECTORY/gateway"), Path::new("/")).expect_err("unset");
        assert!(err.to_string().contains("LoadCredential="), "{err}");
        std::env::set_var(CREDENTIALS_DIRECTORY, dir.path());
        for spec in ["$CREDENTIALS_DIRECTORY/gateway", "${CREDENTIALS_DIRECTORY}/gateway"] {
            assert_eq!(read("k", Path::new(spec), Path::new("/")).expect("read"), "abc");
        }
        std::env::remove_var(CREDENTIALS_DIRECTORY);
    }
}

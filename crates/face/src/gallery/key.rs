//! The gallery's key: 32 random bytes, kept as 64 hex characters in a file of their own (a
//! systemd credential or a file only its owner can read), never in the config. The key id, the
//! first 8 bytes of the key's SHA-256, is written beside the ciphertext so that a wrong key is
//! told apart from a damaged file; it says nothing about the key itself.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The config key every message about the key file names.
pub const KEY_FILE: &str = "gallery.key_file";
/// The credential name the kiosk unit loads the key as (`LoadCredential=gallery-key:…`).
pub const CREDENTIAL: &str = "gallery-key";
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} / 갤러리 키 파일(`gallery.key_file`)을 읽을 수 없습니다")]
    Read(#[from] dolbom_secret::SecretError),
    #[error("`gallery.key_file`: {path} does not hold a key: it must be 64 hex characters (32 random bytes), e.g. from `dolbom gallery keygen FILE` or `openssl rand -hex 32` / 키 파일에는 16진수 64자가 있어야 합니다")]
    Malformed { path: PathBuf },
    #[error("the system's random number source failed; nothing was written / 시스템 난수 생성 실패: 아무것도 쓰지 않았습니다")]
    NoRandomness,
    #[error("cannot write key file {path}: {error} / 키 파일을 쓸 수 없습니다")]
    Write { path: PathBuf, error: std::io::Error },
}

/// The first 8 bytes of SHA-256 of the key, as 16 hex characters: `xxd -r -p KEYFILE | sha256sum`
/// shows the same at its start.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; 8]);

impl KeyId {
    pub fn parse(hex_text: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(hex_text, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A gallery key. Its bytes are never printed (`Debug` shows the id only).
#[derive(Clone)]
pub struct GalleryKey {
    bytes: [u8; KEY_LEN],
}

impl fmt::Debug for GalleryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GalleryKey(id {})", self.id())
    }
}

impl Drop for GalleryKey {
    fn drop(&mut self) {
        // Best effort: the key should not outlive its use in freed memory.
        for b in &mut self.bytes {
            // SAFETY: a valid, aligned, exclusive reference to a byte.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl GalleryKey {
    /// Parses 64 hex characters (either case; surrounding white space ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Self { bytes })
    }

    /// Reads the key `spec` names (`$CREDENTIALS_DIRECTORY/NAME` or a path). It must be readable
    /// by its owner alone, except a credential systemd made (under `/run/credentials/`): where the
    /// file system has ACLs systemd grants the service user read access by an ACL entry, which
    /// shows as group bits (0440), yet nobody else can reach the unit's credential directory. A
    /// `CREDENTIALS_DIRECTORY` set by hand (e.g. `/etc/dolbom/credentials`) gets the owner check.
    pub fn read(spec: &Path) -> Result<Self, KeyError> {
        let made_by_systemd = dolbom_secret::is_credential(spec)
            && dolbom_secret::locate(KEY_FILE, spec, Path::new(".")).is_ok_and(|p| p.starts_with("/run/credentials/"));
        let text = if made_by_systemd {
            dolbom_secret::read(KEY_FILE, spec, Path::new("."))?
        } else {
            dolbom_secret::read_owner_only(KEY_FILE, spec, Path::new("."))?
        };
        Self::from_hex(&text).ok_or_else(|| KeyError::Malformed {
            path: dolbom_secret::locate(KEY_FILE, spec, Path::new(".")).unwrap_or_else(|_| spec.to_path_buf()),
        })
    }

    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::NoRandomness)?;
        Ok(Self { bytes })
    }

    /// Writes the key as 64 hex characters and a newline to a new file of mode 0600; an existing
    /// file is never replaced (it may be the only key to a gallery).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let write = |error| KeyError::Write { path: path.to_path_buf(), error };
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(write)?;
        let mut text = hex::encode(self.bytes);
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(write)?;
        f.sync_all().map_err(write)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(write)?;
        }
        Ok(())
    }

    pub fn id(&self) -> KeyId {
        let digest = Sha256::digest(self.bytes);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

/// Where the store finds its key: the file `gallery.key_file` names, else the credential systemd
/// hands the kiosk (`$CREDENTIALS_DIRECTORY/gallery-key`) when there is one, else none (the
/// gallery is plain JSON, and the kiosk and `dolbom doctor` say so).
pub fn key_spec(key_file: Option<&Path>) -> Option<PathBuf> {
    if let Some(spec) = key_file {
        return Some(spec.to_path_buf());
    }
    let dir = std::env::var_os(dolbom_secret::CREDENTIALS_DIRECTORY).filter(|d| !d.is_empty())?;
    Path::new(&dir).join(CREDENTIAL).exists().then(|| PathBuf::from(format!("$CREDENTIALS_DIRECTORY/{CREDENTIAL}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_id() {
        let key = GalleryKey::from_hex(&"ab".repeat(32)).expect("64 hex");
        assert_eq!(key.bytes(), &[0xab; 32]);
        // sha256 of 32 bytes of 0xab, as `printf 'ab%.0s' $(seq 32) | xxd -r -p | sha256sum` shows.
        let digest = hex::encode(Sha256::digest([0xabu8; 32]));
        assert_eq!(key.id().to_string(), digest[..16]);
        assert_eq!(KeyId::parse(&digest[..16]), Some(key.id()));
        assert!(!format!("{key:?}").contains("abab"), "the key's bytes are never printed");
        for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(GalleryKey::from_hex(bad).is_none(), "{bad}");
        }
        assert!(GalleryKey::from_hex(&format!("{}\n", "AB".repeat(32))).is_some());
    }

    #[test]
    fn generated_keys_are_written_owner_only_and_never_over_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gallery.key");
        let key = GalleryKey::generate().expect("random");
        key.write_new(&path).expect("write");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(GalleryKey::read(&path).expect("read").id(), key.id());
        let other = GalleryKey::generate().expect("random");
        assert_ne!(other.id(), key.id());
        assert!(matches!(other.write_new(&path), Err(KeyError::Write { .. })));
        assert_eq!(GalleryKey::read(&path).expect("read").id(), key.id(), "the first key is kept");
        std::fs::write(dir.path().join("short"), "abcd\n").expect("write");
        std::fs::set_permissions(dir.path().join("short"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let err = GalleryKey::read(&dir.path().join("short")).expect_err("not a key");
        assert!(err.to_string().contains("gallery.key_file") && err.to_string().contains("64 hex"), "{err}");
    }
}

//! The gallery file. Everything that touches the bytes on disk lives here.
//!
//! With a key (`gallery.key_file`, or the kiosk unit's `gallery-key` credential) the file is
//! sealed: the plain JSON envelope encrypted and authenticated ([`super::sealed`]). Without one
//! it is the plain JSON envelope. A plain file read with a key configured is taken (that is how
//! a gallery is migrated) and sealed at its next write; a sealed file is never read as empty.
//!
//! Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a power cut
//! leaves either the old gallery or the new one, never half of each. Read-modify-write cycles
//! hold an exclusive lock, so two enrolments at once cannot lose each other's changes. A writer
//! killed between writing its temporary file and renaming it leaves `gallery.tmp-<pid>` behind;
//! the next writer, holding the lock (so no live writer owns one), removes them.
//!
//! No stale copies: a save keeps the replaced file open across the rename and then overwrites
//! its bytes with zeros, so templates a save removed do not linger in the old file's blocks;
//! temporaries are zeroed before they are removed too. No backup copy is ever made.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::{GalleryKey, KeyError, KeyId};
use super::sealed::{self, SealError};
use super::Gallery;

pub const FORMAT: &str = "dolbom.gallery/1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read gallery {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("gallery {path} is not a valid dolbom gallery: {reason}; it was left untouched: restore it from a backup / 갤러리 파일이 손상되었거나 변경되었습니다. 파일은 그대로 두었으니 백업에서 복구하세요")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write gallery {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("gallery {path} is sealed with key {file}, but the configured key (`gallery.key_file`) is {configured}: configure the key file it was sealed with (after `dolbom gallery rekey`, install the new key and restart); the gallery was left untouched / 갤러리가 다른 키({file})로 암호화되어 있습니다. 설정된 키는 {configured}입니다. 암호화에 쓴 키 파일을 설정하세요")]
    WrongKey { path: PathBuf, file: KeyId, configured: KeyId },
    #[error("gallery {path} is encrypted (key {file}) but no key is configured: set `gallery.key_file`, or run under the kiosk unit (LoadCredential=gallery-key), or set CREDENTIALS_DIRECTORY=/etc/dolbom/credentials / 갤러리가 암호화되어 있지만 키가 설정되지 않았습니다 (`gallery.key_file`)")]
    NoKey { path: PathBuf, file: String },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    gallery: Gallery,
}

/// What `rekey` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Rekeyed {
    /// The key the gallery was sealed with before; none for a plain gallery.
    pub from: Option<KeyId>,
    pub to: KeyId,
    pub people: usize,
}

pub struct GalleryStore {
    path: PathBuf,
    /// The key file (`$CREDENTIALS_DIRECTORY/NAME` or a path), read at every load and save so a
    /// key replaced on disk is used without a restart; none: plain JSON.
    key_file: Option<PathBuf>,
}

impl GalleryStore {
    /// A store without a key: plain JSON (tests and tools; the kiosk's goes through
    /// `GalleryConfig::store`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), key_file: None }
    }

    /// A store sealed with the key in `key_file` (a path or `$CREDENTIALS_DIRECTORY/NAME`).
    pub fn sealed(path: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), key_file: Some(key_file.into()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key file, when the gallery is sealed.
    pub fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }

    /// The configured key, read now.
    pub fn key(&self) -> Result<Option<GalleryKey>, StoreError> {
        Ok(self.key_file.as_deref().map(GalleryKey::read).transpose()?)
    }

    /// Loads the gallery; a file that does not exist yet is an empty gallery.
    pub fn load(&self) -> Result<Gallery, StoreError> {
        self.load_with(self.key()?.as_ref())
    }

    /// Whether the file on disk is sealed, and with which key (none: plain or absent).
    pub fn sealed_with(&self) -> Result<Option<KeyId>, StoreError> {
        match self.read_bytes()? {
            Some((bytes, _)) if sealed::is_sealed(&bytes) => sealed::header(&bytes)
                .map(|(h, _)| Some(h.key))
                .map_err(|e| StoreError::Corrupt { path: self.path.clone(), reason: e.to_string() }),
            _ => Ok(None),
        }
    }

    /// Loads, changes and saves the gallery under an exclusive lock. Nothing is written when
    /// `change` fails.
    pub fn update<T, E>(&self, change: impl FnOnce(&mut Gallery) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.update_then(change, |_| Ok(()))
    }

    /// [`update`](Self::update), then `after` with the change's result once the gallery is
    /// saved, the lock still held: what must follow each saved change in the same order as the
    /// changes (the audit log). Its failure is returned; the saved change stays.
    pub fn update_then<T, E>(
        &self,
        change: impl FnOnce(&mut Gallery) -> Result<T, E>,
        after: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let key = self.key()?;
        let _lock = self.lock()?;
        self.remove_stale_temporaries();
        let mut gallery = self.load_with(key.as_ref())?;
        let out = change(&mut gallery)?;
        self.save(&gallery, key.as_ref())?;
        after(&out)?;
        Ok(out)
    }

    /// Opens the gallery with the configured key (or as plain JSON when none is) and seals it
    /// with `new`, in one atomic write: at every instant the file opens with exactly one of the
    /// two keys, and its header names which.
    pub fn rekey(&self, new: &GalleryKey) -> Result<Rekeyed, StoreError> {
        let key = self.key()?;
        let _lock = self.lock()?;
        self.remove_stale_temporaries();
        let from = self.sealed_with()?;
        let gallery = self.load_with(key.as_ref())?;
        self.save(&gallery, Some(new))?;
        Ok(Rekeyed { from, to: new.id(), people: gallery.people.len() })
    }

    fn load_with(&self, key: Option<&GalleryKey>) -> Result<Gallery, StoreError> {
        // A save zeroes the file it replaced: a reader that opened it just before the rename
        // may read zeros. Its inode is then no longer the path's, so read the path again.
        let mut tries = 0;
        loop {
            let Some((bytes, inode)) = self.read_bytes()? else { return Ok(Gallery::empty()) };
            match self.decode(&bytes, key) {
                Err(StoreError::Corrupt { .. }) if tries < 3 && self.inode() != Some(inode) => tries += 1,
                result => return result,
            }
        }
    }

    /// The file's bytes and inode; none when it does not exist.
    fn read_bytes(&self) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let read = |error| StoreError::Read { path: self.path.clone(), error };
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(read(error)),
        };
        let inode = file.metadata().map_err(read)?.ino();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(read)?;
        Ok(Some((bytes, inode)))
    }

    fn inode(&self) -> Option<u64> {
        fs::symlink_metadata(&self.path).ok().map(|m| m.ino())
    }

    fn lock(&self) -> Result<File, StoreError> {
        let write = |error| StoreError::Write { path: self.path.clone(), error };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(write)?;
        }
        let lock_path = self.path.with_extension("lock");
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(lock_path).map_err(write)?;
        file.lock().map_err(write)?;
        Ok(file)
    }

    /// Removes `<stem>.tmp-<pid>` files a killed writer left (call with the lock held), zeroed
    /// first. Failing to remove one is logged, not fatal.
    fn remove_stale_temporaries(&self) {
        let (Some(dir), Some(stem)) = (self.path.parent(), self.path.file_stem().and_then(|s| s.to_str())) else {
            return;
        };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let Ok(entries) = fs::read_dir(dir) else { return };
        let prefix = format!("{stem}.tmp-");
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let path = entry.path();
            if let Some(f) = open_regular(&path) {
                if let Err(e) = scrub(&f) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot zero a stale gallery write");
                }
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "removed a gallery write left by a killed process")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove a stale gallery write")
                }
            }
        }
    }

    fn save(&self, gallery: &Gallery, key: Option<&GalleryKey>) -> Result<(), StoreError> {
        let write = |error| StoreError::Write { path: self.path.clone(), error };
        let mut plain = encode(gallery).map_err(|e| write(std::io::Error::other(e)))?;
        let bytes = match key {
            Some(key) => {
                let sealed = sealed::seal(&plain, key).map_err(|e| write(std::io::Error::other(e)));
                plain.fill(0);
                sealed?
            }
            None => plain,
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // The file being replaced, kept open so its bytes can be zeroed once it is unlinked.
        let old = open_regular(&self.path);
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        // Biometric data: readable by the daemon's user only.
        let mut f = OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp).map_err(write)?;
        let result = (|| {
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()
        })();
        if let Err(error) = result {
            if fs::symlink_metadata(&tmp).is_ok() {
                let _ = scrub(&f);
                let _ = fs::remove_file(&tmp);
            }
            return Err(write(error));
        }
        if let Some(old) = old {
            self.scrub_replaced(&old);
        }
        Ok(())
    }

    /// Zeroes the file a save replaced, unless another name still links to it (an operator's
    /// own hard-linked copy is theirs to keep). The save has succeeded either way: a failure is
    /// logged loudly, not returned.
    fn scrub_replaced(&self, old: &File) {
        match old.metadata() {
            Ok(m) if m.nlink() == 0 => {
                if let Err(e) = scrub(old) {
                    tracing::error!(path = %self.path.display(), error = %e, "the replaced gallery could not be zeroed; its old bytes may remain on disk / 이전 갤러리 내용을 지우지 못했습니다");
                }
            }
            Ok(m) => tracing::warn!(
                path = %self.path.display(),
                links = m.nlink(),
                "the replaced gallery file has another hard link, so it was not zeroed: that copy keeps the old templates / 이전 갤러리 파일에 다른 하드 링크가 있어 지우지 않았습니다"
            ),
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot check the replaced gallery file")
            }
        }
    }

    fn decode(&self, bytes: &[u8], key: Option<&GalleryKey>) -> Result<Gallery, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { path: self.path.clone(), reason };
        if !sealed::is_sealed(bytes) {
            if self.key_file.is_some() {
                tracing::warn!(
                    path = %self.path.display(),
                    "the gallery is not encrypted yet; it is sealed with gallery.key_file at its next change (`dolbom gallery seal` does it now) / 갤러리가 아직 암호화되지 않았습니다: 다음 변경 때 암호화됩니다"
                );
            }
            return decode_plain(bytes).map_err(corrupt);
        }
        let Some(key) = key else {
            let file = sealed::header(bytes).map_or_else(|_| "unknown".to_string(), |(h, _)| h.key.to_string());
            return Err(StoreError::NoKey { path: self.path.clone(), file });
        };
        let mut plain = sealed::open(bytes, key).map_err(|e| match e {
            SealError::WrongKey { file, configured } => {
                StoreError::WrongKey { path: self.path.clone(), file, configured }
            }
            other => corrupt(other.to_string()),
        })?;
        let gallery = decode_plain(&plain).map_err(corrupt);
        plain.fill(0);
        gallery
    }
}

fn decode_plain(bytes: &[u8]) -> Result<Gallery, String> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if envelope.format != FORMAT {
        return Err(format!("format `{}` is not `{FORMAT}`", envelope.format));
    }
    Ok(envelope.gallery)
}

fn encode(gallery: &Gallery) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec(&Envelope { format: FORMAT.to_string(), gallery: gallery.clone() })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Opens `path` for zeroing when it is a regular file under that very name (not a symlink to
/// something else, which is not ours to overwrite).
fn open_regular(path: &Path) -> Option<File> {
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            // E.g. left owned by root by a `sudo dolbom …`: the save goes on, the old bytes stay.
            tracing::error!(
                file = %path.display(),
                error = %e,
                "cannot open the gallery being replaced to zero it; its old bytes stay on the disk until reused / \
                 교체되는 갤러리 파일을 지울 수 없습니다"
            );
            return None;
        }
    };
    let opened = file.metadata().ok()?;
    let named = fs::symlink_metadata(path).ok()?;
    (named.file_type().is_file() && opened.ino() == named.ino() && opened.dev() == named.dev()).then_some(file)
}

/// Overwrites a file's bytes with zeros in place and flushes them to the disk.
fn scrub(file: &File) -> std::io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let len = file.metadata()?.len();
    let mut at = 0;
    while at < len {
        let n = (len - at).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::Role;
    use crate::Embedding;

    fn one_person() -> Gallery {
        let mut g = Gallery::empty();
        let e = Embedding::normalized(vec![0.6, 0.8]).expect("non-zero");
        g.enroll("minji", Role::Child, "김민지", vec![e], "sface_2021dec", 7).expect("enrol");
        g
    }

    #[test]
    fn round_trip_and_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GalleryStore::new(dir.path().join("sub/gallery.json"));
        assert_eq!(store.load().expect("missing is empty"), Gallery::empty());
        store
            .update(|g| -> Result<(), StoreError> {
                *g = one_person();
                Ok(())
            })
            .expect("save");
        assert_eq!(store.load().expect("load"), one_person());
        let mode = fs::metadata(store.path()).expect("meta");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    }

    #[test]
    fn failed_change_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GalleryStore::new(dir.path().join("gallery.json"));
        store
            .update(|g| -> Result<(), StoreError> {
                *g = one_person();
                Ok(())
            })
            .expect("save");
        let before = fs::read(store.path()).expect("read");
        let r: Result<(), StoreError> = store.update(|g| {
            g.people.clear();
            Err(StoreError::Corrupt { path: PathBuf::new(), reason: "refused".into() })
        });
        assert!(r.is_err());
        assert_eq!(fs::read(store.path()).expect("read"), before);
    }

    #[test]
    fn writes_left_by_a_killed_writer_are_removed_by_the_next_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GalleryStore::new(dir.path().join("gallery.json"));
        // What SIGKILL between write and rename leaves: full, partial and empty temporaries.
        let stale = ["gallery.tmp-1", "gallery.tmp-4242", "gallery.tmp-99999999"];
        for (i, name) in stale.iter().enumerate() {
            fs::write(dir.path().join(name), &b"{\"format\":\"dolbom.gallery/1\",\"gal"[..i * 10]).expect("write");
        }
        let unrelated = ["gallery.tmp-notes", "other.tmp-12", "gallery.json.bak"];
        for name in unrelated {
            fs::write(dir.path().join(name), b"keep").expect("write");
        }
        assert_eq!(store.load().expect("load ignores them"), Gallery::empty());
        store
            .update(|g| -> Result<(), StoreError> {
                *g = one_person();
                Ok(())
            })
            .expect("save");
        for name in stale {
            assert!(!dir.path().join(name).exists(), "{name} left behind");
        }
        for name in unrelated {
            assert!(dir.path().join(name).exists(), "{name} is not ours to remove");
        }
        assert_eq!(store.load().expect("load"), one_person());
    }

    #[test]
    fn corrupt_file_is_reported_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gallery.json");
        fs::write(&path, b"{\"format\":\"dolbom.gallery/1\",\"gallery\":").expect("write");
        let store = GalleryStore::new(&path);
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
        let r = store.update(|_| -> Result<(), StoreError> { Ok(()) });
        assert!(r.is_err());
        assert_eq!(fs::read(&path).expect("read"), b"{\"format\":\"dolbom.gallery/1\",\"gallery\":");
    }

    fn key_file(dir: &Path, name: &str) -> (PathBuf, GalleryKey) {
        let path = dir.join(name);
        let key = GalleryKey::generate().expect("random");
        key.write_new(&path).expect("key file");
        (path, key)
    }

    fn put(store: &GalleryStore, gallery: Gallery) {
        store
            .update(|g| -> Result<(), StoreError> {
                *g = gallery;
                Ok(())
            })
            .expect("save");
    }

    #[test]
    fn sealed_round_trip_keeps_nothing_in_the_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kf, key) = key_file(dir.path(), "gallery.key");
        let store = GalleryStore::sealed(dir.path().join("gallery.json"), &kf);
        put(&store, one_person());
        assert_eq!(store.load().expect("load"), one_person());
        let bytes = fs::read(store.path()).expect("read");
        let header = format!("dolbom.gallery.sealed/1 chacha20-poly1305 key={} nonce=", key.id());
        assert!(bytes.starts_with(header.as_bytes()), "{}", String::from_utf8_lossy(&bytes[..80]));
        for clear in ["minji", "김민지", "sface", "embeddings", "0.6", "dolbom.gallery/1"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear.as_bytes()), "`{clear}` in the sealed file");
        }
        assert_eq!(store.sealed_with().expect("header"), Some(key.id()));
        let mode = fs::metadata(store.path()).expect("meta");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    }

    #[test]
    fn a_wrong_key_or_no_key_is_a_loud_error_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (right, right_key) = key_file(dir.path(), "right.key");
        let (wrong, wrong_key) = key_file(dir.path(), "wrong.key");
        let path = dir.path().join("gallery.json");
        put(&GalleryStore::sealed(&path, &right), one_person());
        let before = fs::read(&path).expect("read");
        let store = GalleryStore::sealed(&path, &wrong);
        let err = store.load().expect_err("wrong key");
        let text = err.to_string();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
        for needed in [right_key.id().to_string(), wrong_key.id().to_string(), "gallery.key_file".into()] {
            assert!(text.contains(&needed), "`{needed}` missing from: {text}");
        }
        let r = store.update(|g| -> Result<(), StoreError> {
            g.people.clear();
            Ok(())
        });
        assert!(matches!(r, Err(StoreError::WrongKey { .. })));
        let plain = GalleryStore::new(&path);
        let err = plain.load().expect_err("no key");
        assert!(
            matches!(err, StoreError::NoKey { .. }) && err.to_string().contains(&right_key.id().to_string()),
            "{err}"
        );
        assert!(plain.update(|_| -> Result<(), StoreError> { Ok(()) }).is_err());
        assert_eq!(fs::read(&path).expect("read"), before, "never overwritten");
        // A key file others can read is refused before the gallery is touched.
        fs::set_permissions(&right, std::os::unix::fs::PermissionsExt::from_mode(0o640)).expect("chmod");
        let err = GalleryStore::sealed(&path, &right).load().expect_err("group-readable key");
        assert!(err.to_string().contains("gallery.key_file") && err.to_string().contains("0600"), "{err}");
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_fails_loudly_and_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kf, _) = key_file(dir.path(), "gallery.key");
        let store = GalleryStore::sealed(dir.path().join("gallery.json"), &kf);
        put(&store, one_person());
        let good = fs::read(store.path()).expect("read");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            fs::write(store.path(), &bad).expect("write");
            let err = store.load().expect_err("a flipped byte must not open");
            assert!(
                matches!(err, StoreError::Corrupt { .. } | StoreError::WrongKey { .. } | StoreError::NoKey { .. }),
                "byte {i}: {err}"
            );
            assert!(store.update(|_| -> Result<(), StoreError> { Ok(()) }).is_err(), "byte {i}: written over");
            assert_eq!(fs::read(store.path()).expect("read"), bad, "byte {i}: left untouched");
        }
        for len in [0, 10, 40, good.len() / 2, good.len() - 17, good.len() - 1] {
            fs::write(store.path(), &good[..len]).expect("write");
            let err = store.load().expect_err("truncated");
            assert!(matches!(err, StoreError::Corrupt { .. }), "truncated to {len}: {err}");
            assert!(err.to_string().contains("restore it from a backup"), "{err}");
        }
        fs::write(store.path(), &good).expect("write");
        assert_eq!(store.load().expect("intact again"), one_person());
    }

    #[test]
    fn rekey_seals_with_the_new_key_and_the_old_one_no_longer_opens_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (old, old_key) = key_file(dir.path(), "old.key");
        let (new, new_key) = key_file(dir.path(), "new.key");
        let path = dir.path().join("gallery.json");
        put(&GalleryStore::sealed(&path, &old), one_person());
        let done = GalleryStore::sealed(&path, &old).rekey(&new_key).expect("rekey");
        assert_eq!(done, Rekeyed { from: Some(old_key.id()), to: new_key.id(), people: 1 });
        assert_eq!(GalleryStore::sealed(&path, &new).load().expect("new key"), one_person());
        let err = GalleryStore::sealed(&path, &old).load().expect_err("old key");
        assert!(
            matches!(err, StoreError::WrongKey { file, configured, .. } if file == new_key.id() && configured == old_key.id())
        );
        // Rekeying again with the old key configured is refused: it cannot open the gallery.
        assert!(GalleryStore::sealed(&path, &old).rekey(&old_key).is_err());
    }

    #[test]
    fn a_plain_gallery_is_read_with_a_key_and_sealed_at_its_next_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kf, key) = key_file(dir.path(), "gallery.key");
        let path = dir.path().join("gallery.json");
        put(&GalleryStore::new(&path), one_person());
        assert!(fs::read(&path).expect("read").starts_with(b"{"));
        let store = GalleryStore::sealed(&path, &kf);
        assert_eq!(store.sealed_with().expect("plain"), None);
        assert_eq!(store.load().expect("migrates"), one_person());
        store
            .update(|g| -> Result<(), StoreError> {
                g.people[0].name = "Kim Minji".into();
                Ok(())
            })
            .expect("save");
        assert_eq!(store.sealed_with().expect("sealed"), Some(key.id()));
        assert_eq!(store.load().expect("load").people[0].name, "Kim Minji");
    }

    /// The file a save replaces is zeroed: read through a descriptor opened before the save (the
    /// old inode, as a disk reader would find its blocks), nothing of the removed person is left.
    #[test]
    fn the_replaced_file_is_zeroed_so_removed_templates_do_not_linger() {
        for sealed in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (kf, _) = key_file(dir.path(), "gallery.key");
            let path = dir.path().join("gallery.json");
            let store = if sealed { GalleryStore::sealed(&path, &kf) } else { GalleryStore::new(&path) };
            put(&store, one_person());
            let mut old = File::open(&path).expect("open the old file");
            let old_len = old.metadata().expect("meta").len();
            assert!(old_len > 100);
            store
                .update(|g| {
                    g.remove("minji")
                        .map(|_| ())
                        .map_err(|e| StoreError::Corrupt { path: PathBuf::new(), reason: e.to_string() })
                })
                .expect("remove");
            let mut left = Vec::new();
            old.read_to_end(&mut left).expect("read the old inode");
            assert_eq!(left.len() as u64, old_len, "zeroed in place, not truncated");
            assert!(
                left.iter().all(|&b| b == 0),
                "sealed={sealed}: old bytes remain: {}",
                String::from_utf8_lossy(&left)
            );
            assert_eq!(
                store.load().expect("load"),
                Gallery { embedder: Some("sface_2021dec".into()), ..Gallery::empty() }
            );
        }
    }

    /// A stale temporary is zeroed before it is removed: a descriptor held on it reads zeros.
    #[test]
    fn stale_temporaries_are_zeroed_before_removal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GalleryStore::new(dir.path().join("gallery.json"));
        let stale = dir.path().join("gallery.tmp-77");
        fs::write(&stale, b"{\"format\":\"dolbom.gallery/1\",\"gallery\":{\"people\":[{\"id\":\"minji\"")
            .expect("write");
        let mut held = File::open(&stale).expect("open");
        put(&store, one_person());
        assert!(!stale.exists());
        let mut left = Vec::new();
        held.read_to_end(&mut left).expect("read");
        assert!(!left.is_empty() && left.iter().all(|&b| b == 0), "{}", String::from_utf8_lossy(&left));
    }
}

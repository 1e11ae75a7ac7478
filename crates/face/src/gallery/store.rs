//! The gallery file. Everything that touches the bytes on disk lives here, so that encryption
//! at rest can be added in one place: today the file is plain JSON inside a versioned envelope;
//! an encrypted file will carry its own envelope format and be told apart by its first bytes.
//!
//! Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a power cut
//! leaves either the old gallery or the new one, never half of each. Read-modify-write cycles
//! hold an exclusive lock, so two enrolments at once cannot lose each other's changes. A writer
//! killed between writing its temporary file and renaming it leaves `gallery.tmp-<pid>` behind;
//! the next writer, holding the lock (so no live writer owns one), removes them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Gallery;

pub const FORMAT: &str = "dolbom.gallery/1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read gallery {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("gallery {path} is not a valid dolbom gallery: {reason} (it was left untouched)")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write gallery {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    gallery: Gallery,
}

pub struct GalleryStore {
    path: PathBuf,
}

impl GalleryStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the gallery; a file that does not exist yet is an empty gallery.
    pub fn load(&self) -> Result<Gallery, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Gallery::empty()),
            Err(error) => return Err(StoreError::Read { path: self.path.clone(), error }),
        };
        self.decode(&bytes)
    }

    /// Loads, changes and saves the gallery under an exclusive lock. Nothing is written when
    /// `change` fails.
    pub fn update<T, E>(&self, change: impl FnOnce(&mut Gallery) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let _lock = self.lock()?;
        self.remove_stale_temporaries();
        let mut gallery = self.load()?;
        let out = change(&mut gallery)?;
        self.save(&gallery)?;
        Ok(out)
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
        let _lock = self.lock()?;
        self.remove_stale_temporaries();
        let mut gallery = self.load()?;
        let out = change(&mut gallery)?;
        self.save(&gallery)?;
        after(&out)?;
        Ok(out)
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

    /// Removes `<stem>.tmp-<pid>` files a killed writer left (call with the lock held). Failing to
    /// remove one is logged, not fatal: it is only wasted space.
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
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), "removed a gallery write left by a killed process")
                }
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a stale gallery write")
                }
            }
        }
    }

    fn save(&self, gallery: &Gallery) -> Result<(), StoreError> {
        let write = |error| StoreError::Write { path: self.path.clone(), error };
        let bytes = encode(gallery).map_err(|e| write(std::io::Error::other(e)))?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let result = (|| {
            // Biometric data: readable by the daemon's user only.
            let mut f = OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(write)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Gallery, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { path: self.path.clone(), reason };
        let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if envelope.format != FORMAT {
            return Err(corrupt(format!("format `{}` is not `{FORMAT}`", envelope.format)));
        }
        Ok(envelope.gallery)
    }
}

fn encode(gallery: &Gallery) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec(&Envelope { format: FORMAT.to_string(), gallery: gallery.clone() })?;
    bytes.push(b'\n');
    Ok(bytes)
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
}

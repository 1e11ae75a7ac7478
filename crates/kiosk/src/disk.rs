//! Room on the state disk. The kiosk's memory is one SQLite database: when the disk under it
//! fills, a commit fails, and the event it carried with it. So free space is watched against a
//! reserve: below it the event stage stops writing and holds new events in memory (bounded),
//! and they go in, in order, once there is room again. The reserve is what keeps the publisher's
//! deletes (WAL writes too) and the status file working meanwhile, so the disk can drain.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::{info, warn};

/// The state directory's free space, measured on demand.
#[derive(Debug)]
pub struct DiskWatch {
    dir: PathBuf,
    reserve_bytes: AtomicU64,
    low: AtomicBool,
    free_bytes: AtomicU64,
}

/// What the status reports of the state disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskState {
    pub free_bytes: u64,
    pub reserve_bytes: u64,
    pub low: bool,
}

impl DiskWatch {
    pub fn new(dir: &Path, reserve_bytes: u64) -> Self {
        let watch = Self {
            dir: dir.to_path_buf(),
            reserve_bytes: AtomicU64::new(reserve_bytes),
            low: AtomicBool::new(false),
            free_bytes: AtomicU64::new(u64::MAX),
        };
        watch.has_room();
        watch
    }

    /// Measures now: true while the free space is above the reserve. A disk that cannot be
    /// measured counts as having room: the write itself will tell.
    pub fn has_room(&self) -> bool {
        let free = match free_bytes(&self.dir) {
            Ok(free) => free,
            Err(e) => {
                warn!(error = %e, dir = %self.dir.display(), "cannot measure the state disk's free space");
                return true;
            }
        };
        self.free_bytes.store(free, Ordering::Relaxed);
        let reserve = self.reserve_bytes.load(Ordering::Relaxed);
        let low = free < reserve;
        if self.low.swap(low, Ordering::Relaxed) != low {
            let (free_mb, reserve_mb) = (free >> 20, reserve >> 20);
            if low {
                warn!(free_mb, reserve_mb, "state disk low: new events wait in memory until there is room");
            } else {
                info!(free_mb, reserve_mb, "state disk has room again");
            }
        }
        !low
    }

    /// The last measurement.
    pub fn state(&self) -> DiskState {
        DiskState {
            free_bytes: self.free_bytes.load(Ordering::Relaxed),
            reserve_bytes: self.reserve_bytes.load(Ordering::Relaxed),
            low: self.low.load(Ordering::Relaxed),
        }
    }

    /// Tests fill and free a disk by moving the reserve instead.
    #[cfg(test)]
    pub fn set_reserve(&self, bytes: u64) {
        self.reserve_bytes.store(bytes, Ordering::Relaxed);
    }
}

/// Bytes an unprivileged process may still write on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` is written by a successful call.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field widths differ between targets
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_above_the_free_space_is_low_and_one_below_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = free_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        let roomy = DiskWatch::new(dir.path(), 1);
        assert!(roomy.has_room());
        assert!(!roomy.state().low);
        let full = DiskWatch::new(dir.path(), u64::MAX);
        assert!(!full.has_room());
        assert!(full.state().low);
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
    }
}

//! Keeps the directory current while the relay runs: the file is checked every
//! `relay.directory_poll_seconds` (read on the blocking pool, so a slow disk never stalls the
//! runtime), a changed file replaces the directory, and events parked for a child the directory
//! did not know are planned again. A file that cannot be read or parsed keeps the last good
//! directory, loudly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

use crate::config::RelaySettings;
use crate::directory::{Directory, Loaded, SharedDirectory};
use crate::intake;
use crate::store::RelayStore;

/// What the file held when it was last read.
fn fingerprint(text: &[u8]) -> [u8; 32] {
    Sha256::digest(text).into()
}

/// Reads the file; `None` when it is the same as `last`.
fn read_if_changed(path: &Path, last: [u8; 32]) -> Option<([u8; 32], Result<Loaded, String>)> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            // Unreadable counts as a change only once per cause, or it would log every poll.
            let print = fingerprint(e.to_string().as_bytes());
            return (print != last).then(|| (print, Err(format!("cannot read directory {}: {e}", path.display()))));
        }
    };
    let print = fingerprint(&bytes);
    if print == last {
        return None;
    }
    let loaded = String::from_utf8(bytes)
        .map_err(|e| e.to_string())
        .and_then(|text| Directory::parse(&text))
        .map_err(|e| format!("directory {}: {e}", path.display()));
    Some((print, loaded))
}

/// Reads the directory at start-up: an unreadable or unparseable file is a start error; bad
/// entries are reported and left out.
pub fn load_at_start(path: &Path) -> Result<(SharedDirectory, [u8; 32]), String> {
    let (print, loaded) = read_if_changed(path, [0; 32]).ok_or("cannot read directory")?;
    let loaded = loaded?;
    loaded.report(path);
    Ok((SharedDirectory::new(loaded.directory), print))
}

/// Watches the file until the task is dropped; after each check, parked events are planned
/// again (another relay sharing the store may have parked them with an older directory).
pub async fn watch(
    path: PathBuf,
    mut last: [u8; 32],
    directory: Arc<SharedDirectory>,
    store: Arc<dyn RelayStore>,
    settings: RelaySettings,
    wake: Arc<Notify>,
) {
    let every = Duration::from_secs(settings.directory_poll_seconds);
    loop {
        if settings.replan_unknown() > 0 && intake::replan(&store, &directory.get(), &settings).await > 0 {
            wake.notify_one();
        }
        // Arrivals held for a re-measure that never came are texted without a value.
        if intake::release_overdue(&store, &directory.get(), &settings).await > 0 {
            wake.notify_one();
        }
        // A mark per round, for whoever waits for "one more round" (tests/settle.rs).
        debug!("parked and held events checked");
        tokio::time::sleep(every).await;
        let p = path.clone();
        let checked = match tokio::task::spawn_blocking(move || read_if_changed(&p, last)).await {
            Ok(checked) => checked,
            Err(e) => {
                warn!(error = %e, "directory check failed; will check again");
                continue;
            }
        };
        let Some((print, loaded)) = checked else { continue };
        last = print;
        match loaded {
            Ok(loaded) => {
                loaded.report(&path);
                directory.set(loaded.directory);
                info!(path = %path.display(), "directory changed; now in use");
            }
            Err(e) => error!(error = %e, "directory unusable; the last good one stays in use until it is fixed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[[center]]\nid = \"c\"\nname = \"C\"\nsender = \"0212345678\"\n";

    #[test]
    fn a_file_is_read_again_only_when_it_changed_and_a_broken_one_is_reported_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("directory.toml");
        std::fs::write(&path, GOOD).expect("write");
        let (shared, print) = load_at_start(&path).expect("loads");
        assert_eq!(shared.get().centers.len(), 1);
        assert!(read_if_changed(&path, print).is_none(), "unchanged");
        std::fs::write(&path, format!("{GOOD}\n[[center]]\nid = \"d\"\nname = \"D\"\nsender = \"0212345678\"\n"))
            .expect("write");
        let (print, loaded) = read_if_changed(&path, print).expect("changed");
        assert_eq!(loaded.expect("parses").directory.centers.len(), 2);
        std::fs::write(&path, "[[center]\n").expect("break");
        let (print, loaded) = read_if_changed(&path, print).expect("changed");
        assert!(loaded.is_err(), "a broken file is an error the caller keeps the last directory for");
        assert!(read_if_changed(&path, print).is_none(), "and it is not reported again until it changes");
        std::fs::remove_file(&path).expect("remove");
        let (print, loaded) = read_if_changed(&path, print).expect("gone");
        assert!(loaded.is_err_and(|e| e.contains("cannot read")));
        assert!(read_if_changed(&path, print).is_none(), "a missing file is reported once");
        assert!(load_at_start(&path).is_err(), "at start, an unreadable directory stops the relay");
    }
}

//! `[pin]` and the PIN check-in: the kiosk's local input for a PIN typed at the door. The door
//! screen (or `dolbom pin enter`) writes the PIN as one line to a Unix socket in the state
//! directory, readable by the kiosk's user and group only, and gets one JSON line back. A PIN
//! never crosses the network and is never logged; wrong ones are counted and, past
//! `pin.max_wrong_per_minute`, every try is refused unread until the minute has passed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dolbom_contract::CheckInMethod;
use dolbom_face::gallery::Pin;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::checkin::Registry;
use crate::health::Health;
use crate::shutdown::Shutdown;
use crate::vision::Sighting;

/// `[pin]`: the PIN input (off unless enabled).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinConfig {
    pub enabled: bool,
    /// The socket the door screen writes PINs to; default `pin.sock` in `state.dir`.
    pub socket: Option<PathBuf>,
    /// Wrong PINs allowed per minute on this kiosk; then tries are refused until the oldest
    /// wrong one is a minute old.
    pub max_wrong_per_minute: u32,
}

impl Default for PinConfig {
    fn default() -> Self {
        Self { enabled: false, socket: None, max_wrong_per_minute: 5 }
    }
}

impl PinConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        dolbom_face::config::in_range("pin.max_wrong_per_minute", u64::from(self.max_wrong_per_minute), 1, 60)?;
        if self.socket.as_ref().is_some_and(|s| s.as_os_str().is_empty()) {
            return Err(("pin.socket", "must not be empty (leave it out for pin.sock in state.dir)".into()));
        }
        Ok(())
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(s) = &mut self.socket {
            dolbom_face::config::resolve(base, s);
        }
    }

    /// The socket's path, given the state directory.
    pub fn socket_path(&self, state_dir: &Path) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| state_dir.join("pin.sock"))
    }
}

/// The kiosk's answer to a PIN, one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PinAnswer {
    /// The PIN is this person's; the check-in goes to the attendance book like a face's.
    Accepted { person: String, name: String },
    /// No one has this PIN (or it is not 4 to 8 digits).
    Wrong { tries_left: u32 },
    /// Too many wrong PINs in the last minute: not even read.
    Locked { retry_after_secs: u64 },
}

/// Wrong tries in a sliding minute.
#[derive(Debug)]
pub struct WrongTries {
    max: usize,
    window: Duration,
    wrong: VecDeque<Instant>,
}

impl WrongTries {
    pub fn new(max_per_minute: u32) -> Self {
        Self { max: max_per_minute as usize, window: Duration::from_secs(60), wrong: VecDeque::new() }
    }

    /// How long until a try is read again; None when one may be tried now.
    pub fn locked_for(&mut self, now: Instant) -> Option<Duration> {
        while self.wrong.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            self.wrong.pop_front();
        }
        let oldest = *self.wrong.front()?;
        (self.wrong.len() >= self.max).then(|| self.window.saturating_sub(now.saturating_duration_since(oldest)))
    }

    /// Records a wrong try; how many are left this minute.
    pub fn wrong(&mut self, now: Instant) -> u32 {
        self.wrong.push_back(now);
        self.max.saturating_sub(self.wrong.len()) as u32
    }
}

/// Judges one line from the door; sends the check-in of the person whose PIN it is.
pub struct PinDesk {
    pub registry: Registry,
    pub tries: WrongTries,
    pub sightings: mpsc::Sender<Sighting>,
    pub health: Arc<Health>,
}

impl PinDesk {
    pub fn answer(&mut self, line: &str, now: Instant) -> PinAnswer {
        if let Some(wait) = self.tries.locked_for(now) {
            self.health.pins_refused.fetch_add(1, Ordering::Relaxed);
            warn!("PIN refused unread: too many wrong PINs this minute / 잘못된 PIN이 너무 많음");
            return PinAnswer::Locked { retry_after_secs: wait.as_secs().max(1) };
        }
        let found = line
            .parse::<Pin>()
            .ok()
            .and_then(|pin| self.registry.find(|g| g.by_pin(&pin).map(|p| (p.id.clone(), p.role, p.name.clone()))));
        match found {
            Some((id, role, name)) => {
                info!(person = %id, method = "pin", "PIN check-in / PIN 체크인");
                if self.sightings.blocking_send(Sighting::checked_in(id.clone(), role, CheckInMethod::Pin)).is_err() {
                    warn!("PIN check-in after the event stage stopped: not recorded");
                }
                PinAnswer::Accepted { person: id, name }
            }
            None => {
                self.health.pins_refused.fetch_add(1, Ordering::Relaxed);
                let tries_left = self.tries.wrong(now);
                // The PIN itself is never logged, right or wrong.
                warn!(tries_left, "wrong PIN at the door / 잘못된 PIN");
                PinAnswer::Wrong { tries_left }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("cannot listen on the PIN socket {path}: {error}")]
    Listen { path: PathBuf, error: std::io::Error },
}

/// The longest line read from the door: a PIN is 8 digits.
const MAX_LINE: u64 = 64;

/// Binds the socket (replacing one a previous run left), owner and group only.
pub fn listen(path: &Path) -> Result<UnixListener, PinError> {
    let err = |error| PinError::Listen { path: path.to_path_buf(), error };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok(listener)
}

/// Serves the socket until `shutdown`, one connection at a time (a door has one keypad).
pub fn run_pin(listener: UnixListener, path: PathBuf, mut desk: PinDesk, shutdown: Shutdown) {
    info!(socket = %path.display(), "PIN input ready / PIN 입력 준비");
    while !shutdown.is_triggered() {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = serve(stream, &mut desk) {
                    warn!(error = %e, "PIN connection failed");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                shutdown.sleep(Duration::from_millis(50));
            }
            Err(e) => {
                warn!(error = %e, "PIN socket accept failed");
                shutdown.sleep(Duration::from_millis(500));
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

fn serve(stream: UnixStream, desk: &mut PinDesk) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_LINE)).read_line(&mut line)?;
    let answer = desk.answer(line.trim_end_matches(['\n', '\r']), Instant::now());
    let mut out = serde_json::to_string(&answer).map_err(std::io::Error::other)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

/// The door's side: sends a PIN and reads the kiosk's answer.
pub fn enter(socket: &Path, pin: &str) -> std::io::Result<PinAnswer> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("{pin}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dolbom_face::gallery::{GalleryStore, NewPerson, Role};

    #[test]
    fn five_wrong_pins_a_minute_then_refused_unread_until_the_minute_passes() {
        let mut t = WrongTries::new(5);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for (i, s) in [0, 1, 2, 3, 4].into_iter().enumerate() {
            assert_eq!(t.locked_for(at(s)), None);
            assert_eq!(t.wrong(at(s)), 4 - i as u32);
        }
        assert_eq!(t.locked_for(at(10)), Some(Duration::from_secs(50)));
        assert_eq!(t.locked_for(at(60)), None, "the first wrong one is a minute old");
    }

    #[test]
    fn the_desk_checks_in_the_person_and_counts_wrong_pins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GalleryStore::new(dir.path().join("gallery.json"));
        store
            .update(|g| -> Result<(), Box<dyn std::error::Error>> {
                let new = Some(NewPerson { role: Role::Child, name: "이지우" });
                Ok(g.set_pin("jiwoo", &"2580".parse()?, new, 1)?)
            })
            .expect("pin");
        let (tx, mut rx) = mpsc::channel(8);
        let health = Arc::new(Health::default());
        let mut desk = PinDesk {
            registry: Registry::new(GalleryStore::new(dir.path().join("gallery.json"))),
            tries: WrongTries::new(2),
            sightings: tx,
            health: health.clone(),
        };
        let now = Instant::now();
        assert_eq!(desk.answer("2580", now), PinAnswer::Accepted { person: "jiwoo".into(), name: "이지우".into() });
        let s = rx.try_recv().expect("a check-in");
        assert_eq!((s.method, s.track_id, s.temperature), (CheckInMethod::Pin, 0, None));
        assert_eq!(desk.answer("1111", now), PinAnswer::Wrong { tries_left: 1 });
        assert_eq!(desk.answer("12ab", now), PinAnswer::Wrong { tries_left: 0 });
        assert!(matches!(desk.answer("2580", now), PinAnswer::Locked { .. }), "even the right PIN, while locked");
        assert!(rx.try_recv().is_err());
        assert_eq!(health.summary().pins_refused, 3);
    }
}

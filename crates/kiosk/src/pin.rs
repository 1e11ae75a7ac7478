//! `[pin]` and the PIN check-in: the kiosk's local input for a PIN typed at the door. The door
//! screen (or `dolbom pin enter`) writes the PIN as one line to a Unix socket in the state
//! directory, readable by the kiosk's user and group only, and gets one JSON line back. A PIN
//! never crosses the network and is never logged; wrong ones are counted in the kiosk's database
//! and lock the input ([`crate::pin_tries`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dolbom_contract::CheckInMethod;
use dolbom_face::gallery::{GalleryError, Pepper, Pin};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::checkin::Registry;
use crate::health::Health;
use crate::pin_tries::{self, Limits};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::vision::Sighting;

/// `[pin]`: the PIN input (off unless enabled).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinConfig {
    pub enabled: bool,
    /// The socket the door screen writes PINs to; default `pin.sock` in `state.dir`.
    pub socket: Option<PathBuf>,
    /// The secret every PIN is HMAC'd with before hashing (a credential file, see
    /// `dolbom_secret`); without it no PIN can be set or checked.
    pub pepper_file: Option<PathBuf>,
    /// Wrong PINs in a minute that lock the input for `minute_lock_secs`.
    pub max_wrong_per_minute: u32,
    pub minute_lock_secs: u64,
    /// Wrong PINs within an hour that lock the input until an hour after the last one, or
    /// until staff run `dolbom pin unlock`.
    pub max_wrong_per_hour: u32,
}

impl Default for PinConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            socket: None,
            pepper_file: None,
            max_wrong_per_minute: 5,
            minute_lock_secs: 60,
            max_wrong_per_hour: 10,
        }
    }
}

/// Why the pepper cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum PepperError {
    #[error("`pin.pepper_file` is not set: PINs cannot be set or checked without it (docs/tag.md) / `pin.pepper_file`이 설정되지 않아 PIN을 설정하거나 확인할 수 없습니다")]
    NotSet,
    #[error("{0} / PIN 페퍼 파일(`pin.pepper_file`)을 읽을 수 없습니다")]
    Read(#[from] dolbom_secret::SecretError),
    #[error(transparent)]
    Invalid(#[from] GalleryError),
}

impl PinConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        use dolbom_face::config::in_range;
        in_range("pin.max_wrong_per_minute", u64::from(self.max_wrong_per_minute), 1, 20)?;
        in_range("pin.minute_lock_secs", self.minute_lock_secs, 10, 3600)?;
        in_range("pin.max_wrong_per_hour", u64::from(self.max_wrong_per_hour), 2, 100)?;
        if self.max_wrong_per_hour <= self.max_wrong_per_minute {
            return Err((
                "pin.max_wrong_per_hour",
                format!("must be more than pin.max_wrong_per_minute ({})", self.max_wrong_per_minute),
            ));
        }
        if self.socket.as_ref().is_some_and(|s| s.as_os_str().is_empty()) {
            return Err(("pin.socket", "must not be empty (leave it out for pin.sock in state.dir)".into()));
        }
        match &self.pepper_file {
            Some(p) if p.as_os_str().is_empty() => return Err(("pin.pepper_file", "must not be empty".into())),
            None if self.enabled => {
                return Err((
                    "pin.pepper_file",
                    "is required with pin.enabled: a credential file holding a secret of at least 32 characters (docs/tag.md) / PIN 입력에는 페퍼 파일이 필요합니다".into(),
                ))
            }
            _ => {}
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

    /// The pepper from `pin.pepper_file` (relative to `base`, the config file's directory, or
    /// `$CREDENTIALS_DIRECTORY/NAME`; a file every user can read is refused).
    pub fn pepper(&self, base: &Path) -> Result<Pepper, PepperError> {
        let spec = self.pepper_file.as_ref().ok_or(PepperError::NotSet)?;
        Ok(Pepper::new(&dolbom_secret::read("pin.pepper_file", spec, base)?)?)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            per_minute: self.max_wrong_per_minute,
            minute_lock_ms: (self.minute_lock_secs * 1000) as i64,
            per_hour: self.max_wrong_per_hour,
        }
    }
}

/// What the door screen shows when a right PIN could not be recorded.
pub const UNAVAILABLE_MESSAGE: &str =
    "체크인을 기록하지 못했습니다. 선생님께 알려 주세요. / The check-in could not be recorded; please tell a teacher.";

/// The kiosk's answer to a PIN, one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PinAnswer {
    /// The PIN is this person's; the check-in went to the attendance book like a face's.
    Accepted { person: String, name: String },
    /// No one has this PIN (or it is not 6 to 8 digits); `tries_left` before the input locks.
    Wrong { tries_left: u32 },
    /// Too many wrong PINs: not even read. `staff_unlock` when only staff (or the hour) end it.
    Locked { retry_after_secs: u64, staff_unlock: bool },
    /// The kiosk could not record a check-in (or count a try): nothing happened.
    Unavailable { message: String },
}

impl PinAnswer {
    fn unavailable() -> Self {
        PinAnswer::Unavailable { message: UNAVAILABLE_MESSAGE.into() }
    }
}

/// Judges one line from the door; sends the check-in of the person whose PIN it is.
pub struct PinDesk {
    pub registry: Registry,
    pub pepper: Pepper,
    pub limits: Limits,
    /// The kiosk's database, where wrong tries are counted.
    pub store: Arc<Store>,
    pub sightings: mpsc::Sender<Sighting>,
    pub health: Arc<Health>,
}

impl PinDesk {
    /// `now_ms`: Unix milliseconds (wrong tries are kept across restarts, so wall-clock time).
    pub fn answer(&mut self, line: &str, now_ms: i64) -> PinAnswer {
        let lock = match self
            .store
            .lock()
            .map_err(|e| e.to_string())
            .and_then(|c| pin_tries::lock(&c, &self.limits, now_ms).map_err(|e| e.to_string()))
        {
            Ok(lock) => lock,
            Err(e) => {
                // Fail closed: a try that cannot be counted is not read.
                error!(error = %e, "cannot read the wrong-PIN count: PIN refused unread / 잘못된 PIN 횟수를 읽을 수 없어 거부");
                return PinAnswer::unavailable();
            }
        };
        self.health.pin_locked.store(lock.is_some(), Ordering::Relaxed);
        if let Some(lock) = lock {
            self.health.pins_refused.fetch_add(1, Ordering::Relaxed);
            warn!(lock = lock.kind(), "PIN refused unread: the input is locked / PIN 입력이 잠겨 있어 거부");
            let wait_ms = (lock.until_ms() - now_ms).max(1000);
            return PinAnswer::Locked {
                retry_after_secs: (wait_ms as u64).div_ceil(1000),
                staff_unlock: matches!(lock, pin_tries::Lock::Hour { .. }),
            };
        }
        let found = line.parse::<Pin>().ok().and_then(|pin| {
            self.registry.find(|g| g.by_pin(&pin, &self.pepper).map(|p| (p.id.clone(), p.role, p.name.clone())))
        });
        match found {
            Some((id, role, name)) => {
                if self.sightings.blocking_send(Sighting::checked_in(id.clone(), role, CheckInMethod::Pin)).is_err() {
                    warn!(person = %id, "PIN check-in after the event stage stopped: not recorded / 기록되지 않음");
                    return PinAnswer::unavailable();
                }
                info!(person = %id, method = "pin", "PIN check-in / PIN 체크인");
                PinAnswer::Accepted { person: id, name }
            }
            None => {
                self.health.pins_refused.fetch_add(1, Ordering::Relaxed);
                let recorded = self
                    .store
                    .lock()
                    .map_err(|e| e.to_string())
                    .and_then(|c| pin_tries::record_wrong(&c, &self.limits, now_ms).map_err(|e| e.to_string()));
                let tries_left = match recorded {
                    Ok(left) => left,
                    Err(e) => {
                        error!(error = %e, "cannot count a wrong PIN / 잘못된 PIN을 셀 수 없음");
                        return PinAnswer::unavailable();
                    }
                };
                // The PIN itself is never logged, right or wrong.
                warn!(tries_left, "wrong PIN at the door / 잘못된 PIN");
                if tries_left == 0 {
                    self.health.pin_lockouts.fetch_add(1, Ordering::Relaxed);
                    self.health.pin_locked.store(true, Ordering::Relaxed);
                    warn!(target: "audit", "PIN input locked after too many wrong PINs; `dolbom pin unlock` ends an hour's lock / 잘못된 PIN이 많아 PIN 입력을 잠갔습니다");
                }
                PinAnswer::Wrong { tries_left }
            }
        }
    }

    /// Sets the status's lock flag from the database (a lock ends with time or a staff unlock).
    pub fn refresh(&self, now_ms: i64) {
        if let Ok(Ok(lock)) = self.store.lock().map(|c| pin_tries::lock(&c, &self.limits, now_ms)) {
            self.health.pin_locked.store(lock.is_some(), Ordering::Relaxed);
        }
    }
}

/// Wall-clock Unix milliseconds.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("cannot listen on the PIN socket {path}: {error}")]
    Listen { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Pepper(#[from] PepperError),
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
    let mut refreshed = Instant::now();
    desk.refresh(now_ms());
    while !shutdown.is_triggered() {
        if refreshed.elapsed() >= Duration::from_secs(1) {
            desk.refresh(now_ms());
            refreshed = Instant::now();
        }
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
    let answer = desk.answer(line.trim_end_matches(['\n', '\r']), now_ms());
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

    fn new_desk(dir: &Path, limits: Limits) -> (PinDesk, mpsc::Receiver<Sighting>, Arc<Health>) {
        let pepper = || Pepper::new("0123456789abcdef0123456789abcdef").expect("pepper");
        GalleryStore::new(dir.join("gallery.json"))
            .update(|g| -> Result<(), Box<dyn std::error::Error>> {
                let new = Some(NewPerson { role: Role::Child, name: "이지우" });
                Ok(g.set_pin("jiwoo", &"258046".parse()?, &pepper(), new, 1)?)
            })
            .expect("pin");
        let (tx, rx) = mpsc::channel(8);
        let health = Arc::new(Health::default());
        let desk = PinDesk {
            registry: Registry::new(GalleryStore::new(dir.join("gallery.json"))),
            pepper: pepper(),
            limits,
            store: Arc::new(Store::open(&dir.join("kiosk.db")).expect("store")),
            sightings: tx,
            health: health.clone(),
        };
        (desk, rx, health)
    }

    const T0: i64 = 1_780_000_000_000;

    #[test]
    fn the_desk_checks_in_the_person_counts_wrong_pins_and_locks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = Limits { per_minute: 2, minute_lock_ms: 60_000, per_hour: 4 };
        let (mut desk, mut rx, health) = new_desk(dir.path(), limits);
        assert_eq!(desk.answer("258046", T0), PinAnswer::Accepted { person: "jiwoo".into(), name: "이지우".into() });
        let s = rx.try_recv().expect("a check-in");
        assert_eq!((s.method, s.track_id, s.temperature), (CheckInMethod::Pin, 0, None));
        assert_eq!(desk.answer("111111", T0), PinAnswer::Wrong { tries_left: 1 });
        assert_eq!(desk.answer("2580", T0), PinAnswer::Wrong { tries_left: 0 }, "too short is wrong too");
        assert_eq!(health.summary().pin_lockouts, 1);
        assert!(health.summary().pin_locked);
        assert_eq!(
            desk.answer("258046", T0 + 1000),
            PinAnswer::Locked { retry_after_secs: 59, staff_unlock: false },
            "even the right PIN, while locked"
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(health.summary().pins_refused, 3);
        // After the minute: two more wrong reach the hour's limit.
        assert_eq!(desk.answer("111112", T0 + 60_000), PinAnswer::Wrong { tries_left: 1 });
        assert_eq!(desk.answer("111113", T0 + 61_000), PinAnswer::Wrong { tries_left: 0 });
        let locked = desk.answer("258046", T0 + 200_000);
        assert_eq!(locked, PinAnswer::Locked { retry_after_secs: 3600 - 139, staff_unlock: true });
        // A new desk on the same database (a restart) is still locked.
        let (mut again, _rx, restarted) = new_desk(dir.path(), limits);
        assert!(matches!(again.answer("258046", T0 + 300_000), PinAnswer::Locked { staff_unlock: true, .. }));
        assert!(restarted.summary().pin_locked);
        pin_tries::unlock(&again.store.lock().expect("lock")).expect("unlock");
        again.refresh(T0 + 300_000);
        assert!(!restarted.summary().pin_locked, "the status follows a staff unlock");
        assert!(matches!(again.answer("258046", T0 + 300_000), PinAnswer::Accepted { .. }));
    }

    /// A right PIN whose check-in cannot reach the event stage is not "accepted".
    #[test]
    fn a_check_in_that_cannot_be_recorded_is_unavailable_not_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut desk, rx, _health) = new_desk(dir.path(), PinConfig::default().limits());
        drop(rx);
        let answer = desk.answer("258046", T0);
        assert_eq!(answer, PinAnswer::Unavailable { message: UNAVAILABLE_MESSAGE.into() });
        let json = serde_json::to_string(&answer).expect("json");
        assert!(json.contains("\"result\":\"unavailable\"") && json.contains("선생님") && json.contains("teacher"));
    }

    #[test]
    fn the_limits_and_the_pepper_are_validated_by_key() {
        let enabled = PinConfig { enabled: true, ..PinConfig::default() };
        assert_eq!(enabled.validate().map_err(|e| e.0), Err("pin.pepper_file"));
        let hour = PinConfig { max_wrong_per_hour: 5, ..PinConfig::default() };
        assert_eq!(hour.validate().map_err(|e| e.0), Err("pin.max_wrong_per_hour"));
        let lock = PinConfig { minute_lock_secs: 1, ..PinConfig::default() };
        assert_eq!(lock.validate().map_err(|e| e.0), Err("pin.minute_lock_secs"));
        assert!(matches!(PinConfig::default().pepper(Path::new(".")), Err(PepperError::NotSet)));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pepper");
        std::fs::write(&file, "0123456789abcdef0123456789abcdef\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let config = PinConfig { pepper_file: Some("pepper".into()), ..PinConfig::default() };
        let err = config.pepper(dir.path()).expect_err("world-readable");
        assert!(err.to_string().contains("pin.pepper_file") && err.to_string().contains("페퍼"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        config.pepper(dir.path()).expect("a private pepper file");
        std::fs::write(&file, "short\n").expect("write");
        assert!(matches!(config.pepper(dir.path()), Err(PepperError::Invalid(GalleryError::ShortPepper))));
    }
}

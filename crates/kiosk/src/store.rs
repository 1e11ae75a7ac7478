//! The kiosk's durable state: one SQLite database holding the outbox and the attendance book,
//! so that deciding an event and queueing it happen in one transaction — a crash in between can
//! neither lose the event nor send it twice.
//!
//! WAL journal with `synchronous = FULL`: every committed transaction is on disk (fsync) before
//! the commit returns.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;
use serde::Deserialize;

/// `[state]`: where the kiosk keeps what must survive a restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Holds kiosk.db (outbox, attendance book, alerts) and status.json.
    pub dir: PathBuf,
    /// Events the outbox holds at most before dropping the least valuable.
    pub outbox_capacity: u64,
    /// Free space kept on the state disk. Below it, new events wait in memory until there is
    /// room, so the publisher can still delete what the broker acknowledged.
    pub reserve_mb: u64,
    /// Events held in memory at most while the disk is full; past it, the oldest visitor events
    /// go first, each counted and logged.
    pub waiting_capacity: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/dolbom"),
            outbox_capacity: 100_000,
            reserve_mb: 64,
            waiting_capacity: 10_000,
        }
    }
}

impl StateConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        use dolbom_face::config::in_range;
        // Ten million events is years of a busy door; more only fills the disk.
        in_range("state.outbox_capacity", self.outbox_capacity, 10, 10_000_000)?;
        in_range("state.reserve_mb", self.reserve_mb, 1, 1_048_576)?;
        in_range("state.waiting_capacity", self.waiting_capacity, 10, 1_000_000)?;
        Ok(())
    }

    /// The kiosk's database: outbox, attendance book, alerts (shared with `dolbom alerts`).
    pub fn db_file(&self) -> PathBuf {
        self.dir.join("kiosk.db")
    }

    /// The daemon's health, rewritten at every status interval (read by `dolbom status`).
    pub fn status_file(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    /// Locked by the running daemon for as long as it runs: one daemon per state directory, and
    /// `dolbom status` can tell a daemon that cannot write its status (a full disk) from none.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("kiosk.lock")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("kiosk database {path}: {error}")]
    Open { path: PathBuf, error: rusqlite::Error },
    #[error("kiosk database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("kiosk database lock poisoned by a panicked thread")]
    Poisoned,
}

/// Whether a daemon holds the state directory's lock.
pub fn daemon_running(lock_file: &Path) -> bool {
    match std::fs::File::open(lock_file) {
        Ok(f) => matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Takes the state directory's lock for the life of the returned file; refuses when another
/// daemon holds it.
pub fn lock_state_dir(lock_file: &Path) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock_file)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("another kiosk daemon holds {}", lock_file.display()),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

impl StoreError {
    /// True for what passes by itself: a full disk, an I/O error, a lock held by `dolbom alerts`.
    /// Trying the same write again later may succeed; anything else would fail the same way.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        let code = match self {
            StoreError::Open { error, .. } | StoreError::Sql(error) => error.sqlite_error_code(),
            StoreError::Poisoned => None,
        };
        matches!(code, Some(DiskFull | SystemIoFailure | DatabaseBusy | DatabaseLocked | CannotOpen | ReadOnly))
    }
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    kind       TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    retain     INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER
);
CREATE TABLE IF NOT EXISTS attendance (
    day           TEXT    NOT NULL,
    person        TEXT    NOT NULL,
    arrived_ms    INTEGER,
    departed_ms   INTEGER,
    last_event_ms INTEGER NOT NULL,
    PRIMARY KEY (day, person)
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id   TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    day        TEXT NOT NULL,
    state      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_visit ON alerts (subject, day);
-- How well each enrolled person is still recognised (recognition.rs).
CREATE TABLE IF NOT EXISTS recognition (
    person         TEXT PRIMARY KEY,
    seen           INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    last_strong_ms INTEGER,
    trend          REAL    NOT NULL
);
-- The air limits exceeded now (air/stage.rs): a restart neither raises an excursion again nor
-- forgets to say when it is over.
CREATE TABLE IF NOT EXISTS air_excursions (
    pollutant   TEXT PRIMARY KEY,
    exceeded_ms INTEGER NOT NULL
);
-- Nonces of signed staff commands already taken (command_gate.rs), kept for as long as a
-- command's age lets it be sent again.
CREATE TABLE IF NOT EXISTS command_nonces (
    key_id  TEXT    NOT NULL,
    nonce   TEXT    NOT NULL,
    ts_ms   INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE TABLE IF NOT EXISTS pin_wrong (
    at_ms INTEGER NOT NULL
);
-- Arrivals asked to re-measure (remeasure.rs): open until a later reading or a staff
-- thermometer value settles them, or fever.settle_within_mins passes (unsettled).
CREATE TABLE IF NOT EXISTS remeasures (
    arrival_event_id TEXT PRIMARY KEY,
    day              TEXT    NOT NULL,
    person           TEXT    NOT NULL,
    role             TEXT    NOT NULL,
    opened_ms        INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    closed_ms        INTEGER
);
CREATE INDEX IF NOT EXISTS remeasures_open ON remeasures (state, person, day);
CREATE TABLE IF NOT EXISTS commands (
    request_id TEXT PRIMARY KEY,
    result     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
";

/// Columns added after a kiosk may already have its database: added in place, never dropped.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    // What a command asked for, so a reused request_id with other content is refused.
    let has = conn.prepare("SELECT 1 FROM pragma_table_info('commands') WHERE name = 'content'")?.exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE commands ADD COLUMN content TEXT")?;
    }
    Ok(())
}

pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |error| StoreError::Open { path: path.to_path_buf(), error };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        // Deleted rows (people's attendance, alerts) are overwritten with zeros, not left in free
        // pages. The database holds no face template (ids, times and event payloads only).
        conn.pragma_update(None, "secure_delete", "ON").map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        migrate(&conn).map_err(open_err)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    pub fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deleted rows are overwritten in the file, not left in free pages for anyone to read.
    #[test]
    fn deleted_rows_leave_no_trace_in_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kiosk.db");
        let store = Store::open(&path).expect("open");
        let conn = store.lock().expect("lock");
        let on: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0)).expect("pragma");
        assert_eq!(on, 1);
        let marker = "person-that-left-0123456789";
        conn.execute(
            "INSERT INTO attendance (day, person, arrived_ms, last_event_ms) VALUES ('2026-12-02', ?1, 1, 1)",
            [marker],
        )
        .expect("insert");
        conn.execute("DELETE FROM attendance WHERE person = ?1", [marker]).expect("delete");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint");
        let contains =
            |p: &Path| std::fs::read(p).is_ok_and(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()));
        assert!(!contains(&path), "the deleted row is still in the database file");
        assert!(!contains(&path.with_extension("db-wal")), "the deleted row is still in the WAL");
    }
}

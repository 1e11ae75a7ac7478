//! The relay's durable memory: which events it has taken in (the dedupe on `event_id`) and every
//! delivery to every guardian with its outcome. An MQTT message is acknowledged only after its
//! deliveries are committed here, so a crash or a redelivery can neither lose nor repeat a text.
//!
//! A delivery that was being sent when the relay died is marked `unknown` at the next start and
//! not sent again: the gateway may already have it, and a parent must never get a text twice.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

pub type StoreResult<T> = Result<T, rusqlite::Error>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events_seen (
    event_id    TEXT PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    guardian    TEXT NOT NULL,
    child       TEXT NOT NULL,
    center      TEXT NOT NULL,
    notice      TEXT NOT NULL,
    event_ms    INTEGER NOT NULL,
    sender      TEXT NOT NULL,
    msg_type    TEXT NOT NULL,
    subject     TEXT,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    detail      TEXT,
    UNIQUE (event_id, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_ms);
CREATE INDEX IF NOT EXISTS deliveries_recent ON deliveries (recipient, status, updated_ms);
";

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub recipient: String,
    pub guardian: String,
    pub child: String,
    pub center: String,
    pub notice: String,
    /// Capture time of the event at the kiosk.
    pub event_ms: i64,
    pub sender: String,
    pub msg_type: String,
    pub subject: Option<String>,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub detail: Option<String>,
}

pub struct RelayStore {
    conn: Mutex<Connection>,
}

impl RelayStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A poisoned lock means a panic mid-statement; SQLite rolled back, the data is sound.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// At start-up: deliveries caught mid-send become `unknown` (never re-sent). Returns how many.
    pub fn recover(&self, now_ms: i64) -> StoreResult<usize> {
        self.lock().execute(
            "UPDATE deliveries SET status = 'unknown', updated_ms = ?1,
             detail = 'the relay stopped while sending; not re-sent to avoid a duplicate (check the gateway log)'
             WHERE status = 'sending'",
            params![now_ms],
        )
    }

    /// Takes in an event with its deliveries, once: false when the event was seen before.
    pub fn intake(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let fresh = tx.execute(
            "INSERT INTO events_seen (event_id, received_ms, outcome) VALUES (?1, ?2, ?3) ON CONFLICT (event_id) DO NOTHING",
            params![event_id, now_ms, outcome],
        )? == 1;
        if fresh {
            for d in deliveries {
                tx.execute(
                    "INSERT INTO deliveries (event_id, recipient, guardian, child, center, notice, event_ms, sender, msg_type, subject,
                                             body, status, attempts, next_ms, created_ms, updated_ms, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?13, ?14, ?14, ?15)
                     ON CONFLICT (event_id, recipient) DO NOTHING",
                    params![
                        d.event_id, d.recipient, d.guardian, d.child, d.center, d.notice, d.event_ms, d.sender, d.msg_type,
                        d.subject, d.body, d.status, d.next_ms, now_ms, d.detail
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// Claims the oldest due pending delivery, marking it `sending`.
    pub fn claim(&self, now_ms: i64) -> StoreResult<Option<Delivery>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let row = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM deliveries WHERE status = 'pending' AND next_ms <= ?1 ORDER BY next_ms, id LIMIT 1"),
                params![now_ms],
                row_to_delivery,
            )
            .optional()?;
        if let Some(d) = &row {
            tx.execute(
                "UPDATE deliveries SET status = 'sending', updated_ms = ?2 WHERE id = ?1",
                params![d.id, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(row)
    }

    pub fn finish(
        &self,
        id: i64,
        status: &str,
        attempts: i64,
        next_ms: i64,
        detail: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.lock().execute(
            "UPDATE deliveries SET status = ?2, attempts = ?3, next_ms = ?4, detail = ?5, updated_ms = ?6 WHERE id = ?1",
            params![id, status, attempts, next_ms, detail, now_ms],
        )?;
        Ok(())
    }

    /// Texts sent to `recipient` since `since_ms` (for the per-guardian rate limit).
    pub fn sent_since(&self, recipient: &str, since_ms: i64) -> StoreResult<i64> {
        self.lock().query_row(
            "SELECT COUNT(*) FROM deliveries WHERE recipient = ?1 AND status = 'sent' AND updated_ms >= ?2",
            params![recipient, since_ms],
            |r| r.get(0),
        )
    }

    /// When the next pending delivery is due, if any.
    pub fn next_due(&self) -> StoreResult<Option<i64>> {
        self.lock().query_row("SELECT MIN(next_ms) FROM deliveries WHERE status = 'pending'", [], |r| r.get(0))
    }

    pub fn log(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM deliveries ORDER BY id DESC LIMIT ?1"))?;
        let rows = stmt.query_map(params![limit as i64], row_to_delivery)?;
        rows.collect()
    }
}

const COLUMNS: &str = "id, event_id, recipient, guardian, child, center, notice, event_ms, sender, msg_type, subject, body, status, attempts, next_ms, created_ms, updated_ms, detail";

fn row_to_delivery(r: &rusqlite::Row<'_>) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        event_id: r.get(1)?,
        recipient: r.get(2)?,
        guardian: r.get(3)?,
        child: r.get(4)?,
        center: r.get(5)?,
        notice: r.get(6)?,
        event_ms: r.get(7)?,
        sender: r.get(8)?,
        msg_type: r.get(9)?,
        subject: r.get(10)?,
        body: r.get(11)?,
        status: r.get(12)?,
        attempts: r.get(13)?,
        next_ms: r.get(14)?,
        created_ms: r.get(15)?,
        updated_ms: r.get(16)?,
        detail: r.get(17)?,
    })
}

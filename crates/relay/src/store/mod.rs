//! The relay's durable memory: which events it has taken in (the dedupe on `event_id`) and every
//! delivery to every guardian with its outcome. An MQTT message is acknowledged only after its
//! deliveries are committed here, so a crash or a redelivery can neither lose nor repeat a text.
//!
//! Two back ends behind one trait: SQLite (one relay, the default) and PostgreSQL (several relays
//! sharing the load through an MQTT shared subscription; the event dedupe and the delivery claims
//! are then shared, claims taken with `FOR UPDATE SKIP LOCKED`). Both run the same SQL, written
//! once here with `?N` parameters.
//!
//! A delivery goes `pending` → `claimed` (a sender took it) → `sending` (just before the gateway
//! request) → an outcome. A claimed delivery whose relay died goes back to `pending`: it was never
//! sent. One that was `sending` is marked `unknown` and not sent again: the gateway may already
//! have it, and a parent must never get a text twice.

mod postgres;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

pub use self::postgres::PgStore;
pub use self::sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("database task: {0}")]
    Task(String),
    #[error("`relay.postgres`: {0}")]
    Config(String),
    #[error("another relay named `{0}` is using this database (each relay needs its own mqtt.client_id)")]
    InstanceTaken(String),
}

impl StoreError {
    /// Worth waiting for: the database is not reachable or not ready yet (as opposed to a bad
    /// connection string, a refused password or a broken file).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Postgres(e) => {
                use ::postgres::error::SqlState;
                let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
                // A refused certificate comes wrapped in an I/O error, but waiting will not fix it.
                let tls = io.and_then(|io| io.get_ref()).is_some_and(|inner| inner.is::<rustls::Error>());
                let network = io.is_some() && !tls;
                let not_ready = e.code().is_some_and(|c| {
                    [SqlState::CANNOT_CONNECT_NOW, SqlState::TOO_MANY_CONNECTIONS, SqlState::ADMIN_SHUTDOWN].contains(c)
                });
                network || e.is_closed() || not_ready
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            }
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A password that Debug never shows.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the relay keeps its records.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sqlite(PathBuf),
    /// A libpq-style connection string, `host=… user=… dbname=…` or `postgresql://…`, and the CA
    /// certificate(s) to verify the server with (PEM; the system's roots when `None`). TLS is
    /// used, and required, with `sslmode=require` or a CA file.
    Postgres {
        params: String,
        /// From `relay.postgres_password_file`; never in `params`.
        password: Option<Password>,
        ca: Option<PathBuf>,
    },
}

/// A claim older than this is presumed dead (its relay stopped and has not come back)
/// and is marked `unknown` by whichever relay notices. Far longer than any gateway timeout.
pub const CLAIM_LEASE_MS: i64 = 10 * 60_000;

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
    /// The relay instance (its MQTT client id) that last claimed it for sending.
    pub instance: Option<String>,
}

/// The relay's records. Calls block (disk or network): async code goes through [`call`].
pub trait RelayStore: Send + Sync {
    /// Settles claims of `instance` (it is starting, so they were interrupted) and any older than
    /// `lease_before_ms`: `claimed` ones go back to `pending`, `sending` ones become `unknown`.
    fn recover(&self, instance: &str, lease_before_ms: i64, now_ms: i64) -> StoreResult<Recovered>;

    /// Takes in an event with its deliveries, once: false when the event was seen before.
    fn intake(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool>;

    /// Takes in, once, an event the directory has no child for yet, keeping it to plan again
    /// when the directory changes: false when the event was seen before.
    fn intake_parked(&self, parked: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool>;

    /// Parked events captured at or after `since_event_ms`; older ones are forgotten here.
    fn parked(&self, since_event_ms: i64) -> StoreResult<Vec<Parked>>;

    /// Plans a parked event after all: takes it off the parked list and adds its deliveries in
    /// one transaction, only if it was still parked (false when another relay, or an earlier
    /// call, already did), so a parked event is texted at most once however many relays see
    /// the directory change.
    fn unpark(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool>;

    /// A parked arrival whose child the directory now knows, but whose reading was `remeasure`:
    /// moves it from the parked list to the held one in one transaction, only if it was still
    /// parked, so it waits for its settle (or deadline) like an arrival held on intake.
    fn unpark_to_held(&self, parked: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool>;

    /// Takes in, once, an arrival whose reading was `remeasure`, holding its texts until the
    /// kiosk settles it: false when the event was seen before.
    fn intake_held(&self, held: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool>;

    /// The held arrival `event_id`, if it is still held.
    fn held(&self, event_id: &str) -> StoreResult<Option<Parked>>;

    /// What was recorded of the event `event_id` (its `events_seen.outcome`), if it was seen.
    fn outcome(&self, event_id: &str) -> StoreResult<Option<String>>;

    /// Held arrivals captured before `before_event_ms`: past their deadline.
    fn held_before(&self, before_event_ms: i64) -> StoreResult<Vec<Parked>>;

    /// Texts a held arrival after all: takes it off the held list and adds its deliveries in one
    /// transaction, only if it was still held (false when a settle, a deadline or another relay
    /// came first), so an arrival is texted once.
    fn release_held(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool>;

    /// Claims the oldest due pending delivery for `instance`, marking it `claimed` under `token`
    /// (unique per claim: every later step of this attempt names it).
    fn claim(&self, instance: &str, token: &str, now_ms: i64) -> StoreResult<Option<Delivery>>;

    /// Puts a claim back in the queue (its claimer could not go on, or lost the claim's reply).
    fn release(&self, token: &str, now_ms: i64) -> StoreResult<usize>;

    /// Right before the gateway request: `claimed` → `sending`, only if the claim is still the
    /// caller's (false when a sweep took it back after the lease).
    fn begin_send(&self, id: i64, token: &str, now_ms: i64) -> StoreResult<bool>;

    /// Records how the attempt ended, if the claim is still the caller's (false when not: an
    /// outcome from an earlier claim can never land on a later one).
    fn finish(&self, id: i64, token: &str, outcome: &Outcome<'_>, now_ms: i64) -> StoreResult<bool>;

    /// Texts sent to `recipient` since `since_ms` (for the per-guardian rate limit).
    fn sent_since(&self, recipient: &str, since_ms: i64) -> StoreResult<i64>;

    /// When the next pending delivery is due, if any.
    fn next_due(&self) -> StoreResult<Option<i64>>;

    /// The newest deliveries first.
    fn log(&self, limit: usize) -> StoreResult<Vec<Delivery>>;

    /// Forgets settled deliveries and seen events last touched before `before_ms` (parents' phone
    /// numbers and children's names are kept no longer than needed). Returns the rows removed.
    fn prune(&self, before_ms: i64) -> StoreResult<usize>;
}

/// An event kept to be planned again: what arrived, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub event_id: String,
    pub topic: String,
    pub payload: String,
    /// Capture time of the event at the kiosk.
    pub event_ms: i64,
}

/// What [`RelayStore::recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Claimed but never sent: pending again.
    pub requeued: usize,
    /// Caught mid-send: `unknown`, not re-sent.
    pub unknown: usize,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub status: &'a str,
    pub attempts: i64,
    pub next_ms: i64,
    pub detail: Option<&'a str>,
}

/// Opens the store; a relay passes its instance name, which PostgreSQL then holds a lock on so
/// two relays under one name cannot settle each other's claims. `relay log` passes `None`.
pub fn open(config: &StoreConfig, instance: Option<&str>) -> StoreResult<Arc<dyn RelayStore>> {
    Ok(match config {
        StoreConfig::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        StoreConfig::Postgres { params, password, ca } => Arc::new(PgStore::open_with_password(
            params,
            password.as_ref().map(|p| p.0.as_str()),
            ca.as_deref(),
            instance,
        )?),
    })
}

/// Runs a store call on tokio's blocking pool, so an fsync or a slow database never stalls the
/// MQTT session or the sender.
pub async fn call<T, F>(store: &Arc<dyn RelayStore>, f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn RelayStore) -> StoreResult<T> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&*store)).await.map_err(|e| StoreError::Task(e.to_string()))?
}

/// The schema, with the one type that differs between the back ends left open.
fn schema(id_column: &str) -> String {
    format!(
        "
CREATE TABLE IF NOT EXISTS events_seen (
    event_id    TEXT PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    outcome     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id          {id_column},
    event_id    TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    guardian    TEXT NOT NULL,
    child       TEXT NOT NULL,
    center      TEXT NOT NULL,
    notice      TEXT NOT NULL,
    event_ms    BIGINT NOT NULL,
    sender      TEXT NOT NULL,
    msg_type    TEXT NOT NULL,
    subject     TEXT,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_ms     BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    detail      TEXT,
    claimed_by  TEXT,
    claim_token TEXT,
    UNIQUE (event_id, recipient)
);
-- One text in flight per guardian, across every sender of every relay.
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_in_flight ON deliveries (recipient)
    WHERE status IN ('claimed', 'sending');
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_ms);
CREATE INDEX IF NOT EXISTS deliveries_recent ON deliveries (recipient, status, updated_ms);
CREATE INDEX IF NOT EXISTS deliveries_age ON deliveries (updated_ms);
CREATE INDEX IF NOT EXISTS events_seen_age ON events_seen (received_ms);
-- Events whose child the directory did not know yet, kept for a while to plan again.
CREATE TABLE IF NOT EXISTS events_parked (
    event_id    TEXT PRIMARY KEY,
    topic       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    event_ms    BIGINT NOT NULL,
    parked_ms   BIGINT NOT NULL
);
-- Arrivals whose reading was `remeasure`: their texts wait for the kiosk's event/temperature
-- (or relay.hold_remeasure_minutes), so a parent gets one text with the settled value.
CREATE TABLE IF NOT EXISTS events_held (
    event_id    TEXT PRIMARY KEY,
    topic       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    event_ms    BIGINT NOT NULL,
    held_ms     BIGINT NOT NULL
);
"
    )
}

const COLUMNS: &str = "id, event_id, recipient, guardian, child, center, notice, event_ms, sender, msg_type, subject, \
                       body, status, attempts, next_ms, created_ms, updated_ms, detail, claimed_by";

const REQUEUE: &str = "UPDATE deliveries SET status = 'pending', updated_ms = ?3, claimed_by = NULL, claim_token = NULL
     WHERE status = 'claimed' AND (claimed_by = ?1 OR updated_ms < ?2)";

const RELEASE: &str = "UPDATE deliveries SET status = 'pending', updated_ms = ?2, claimed_by = NULL, claim_token = NULL
     WHERE claim_token = ?1 AND status = 'claimed'";

const RECOVER: &str = "UPDATE deliveries SET status = 'unknown', updated_ms = ?3,
     detail = 'the relay stopped while sending; not re-sent to avoid a duplicate (check the gateway log)'
     WHERE status = 'sending' AND (claimed_by = ?1 OR claimed_by IS NULL OR updated_ms < ?2)";

const SEE_EVENT: &str = "INSERT INTO events_seen (event_id, received_ms, outcome) VALUES (?1, ?2, ?3)
     ON CONFLICT (event_id) DO NOTHING";

const PARK: &str = "INSERT INTO events_parked (event_id, topic, payload, event_ms, parked_ms)
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (event_id) DO NOTHING";

const FORGET_PARKED: &str = "DELETE FROM events_parked WHERE event_ms < ?1";

const LIST_PARKED: &str =
    "SELECT event_id, topic, payload, event_ms FROM events_parked WHERE event_ms >= ?1 ORDER BY event_ms LIMIT 1000";

const UNPARK: &str = "DELETE FROM events_parked WHERE event_id = ?1";

const HOLD: &str = "INSERT INTO events_held (event_id, topic, payload, event_ms, held_ms)
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (event_id) DO NOTHING";

const GET_HELD: &str = "SELECT event_id, topic, payload, event_ms FROM events_held WHERE event_id = ?1";

const LIST_HELD_BEFORE: &str =
    "SELECT event_id, topic, payload, event_ms FROM events_held WHERE event_ms < ?1 ORDER BY event_ms LIMIT 1000";

const GET_OUTCOME: &str = "SELECT outcome FROM events_seen WHERE event_id = ?1";

const UNHOLD: &str = "DELETE FROM events_held WHERE event_id = ?1";

const SET_OUTCOME: &str = "UPDATE events_seen SET outcome = ?2 WHERE event_id = ?1";

const PRUNE_PARKED: &str = "DELETE FROM events_parked WHERE parked_ms < ?1";

const ADD_DELIVERY: &str =
    "INSERT INTO deliveries (event_id, recipient, guardian, child, center, notice, event_ms, sender,
         msg_type, subject, body, status, attempts, next_ms, created_ms, updated_ms, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?13, ?14, ?14, ?15)
     ON CONFLICT (event_id, recipient) DO NOTHING";

/// One statement, so the claim is atomic; `lock` is PostgreSQL's `FOR UPDATE SKIP LOCKED`, which
/// lets several senders take different rows at once instead of queueing on the same one. A
/// guardian with a text in flight is skipped until it settles; two claims racing for one guardian
/// meet the `deliveries_in_flight` index and the later one fails (the caller tries again).
fn claim_sql(lock: &str) -> String {
    format!(
        "UPDATE deliveries SET status = 'claimed', updated_ms = ?2, claimed_by = ?1, claim_token = ?3
         WHERE status = 'pending'
           AND id = (SELECT id FROM deliveries
                     WHERE status = 'pending' AND next_ms <= ?2
                       AND recipient NOT IN (SELECT recipient FROM deliveries WHERE status IN ('claimed', 'sending'))
                     ORDER BY next_ms, id LIMIT 1 {lock})
         RETURNING {COLUMNS}"
    )
}

const BEGIN_SEND: &str = "UPDATE deliveries SET status = 'sending', updated_ms = ?3
     WHERE id = ?1 AND status = 'claimed' AND claim_token = ?2";

/// `unknown` too: a sweep may have given up on a slow send whose real outcome arrives after all.
const FINISH: &str = "UPDATE deliveries SET status = ?2, attempts = ?3, next_ms = ?4, detail = ?5, updated_ms = ?6
     WHERE id = ?1 AND claim_token = ?7 AND status IN ('claimed', 'sending', 'unknown')";

const SENT_SINCE: &str =
    "SELECT COUNT(*) FROM deliveries WHERE recipient = ?1 AND status = 'sent' AND updated_ms >= ?2";

/// Only settled rows: anything still to send, or under way, stays whatever its age. In batches,
/// so a first prune over months of history neither holds the store for long nor times out.
const PRUNE_DELIVERIES: &str = "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
     WHERE updated_ms < ?1 AND status NOT IN ('pending', 'claimed', 'sending') LIMIT ?2)";

const PRUNE_EVENTS: &str = "DELETE FROM events_seen WHERE event_id IN (SELECT event_id FROM events_seen
     WHERE received_ms < ?1 LIMIT ?2)";

const PRUNE_BATCH: i64 = 1000;

/// Before the one-in-flight-per-guardian index exists on a store written by an older relay:
/// a second `sending` row for a guardian becomes `unknown` (as at a restart), a `claimed` row
/// beside another in-flight one goes back to the queue.
const SETTLE_DUPLICATE_CLAIMS: &str = "
UPDATE deliveries SET status = 'unknown',
    detail = 'the relay stopped while sending; not re-sent to avoid a duplicate (check the gateway log)'
 WHERE status = 'sending' AND EXISTS (SELECT 1 FROM deliveries o WHERE o.recipient = deliveries.recipient
                                      AND o.status = 'sending' AND o.id < deliveries.id);
UPDATE deliveries SET status = 'pending', claimed_by = NULL, claim_token = NULL
 WHERE status = 'claimed' AND EXISTS (SELECT 1 FROM deliveries o WHERE o.recipient = deliveries.recipient
                                      AND o.status IN ('claimed', 'sending') AND o.id <> deliveries.id
                                      AND (o.status = 'sending' OR o.id < deliveries.id));
";

/// When the next delivery a sender could claim is due (guardians with a text in flight wait).
const NEXT_DUE: &str = "SELECT MIN(next_ms) FROM deliveries WHERE status = 'pending'
     AND recipient NOT IN (SELECT recipient FROM deliveries WHERE status IN ('claimed', 'sending'))";

fn log_sql() -> String {
    format!("SELECT {COLUMNS} FROM deliveries ORDER BY id DESC LIMIT ?1")
}

/// A row read by either back end, column by column in [`COLUMNS`] order.
trait Columns {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
}

fn delivery_from<R: Columns>(r: &R) -> Result<Delivery, R::Error> {
    Ok(Delivery {
        id: r.int(0)?,
        event_id: r.text(1)?,
        recipient: r.text(2)?,
        guardian: r.text(3)?,
        child: r.text(4)?,
        center: r.text(5)?,
        notice: r.text(6)?,
        event_ms: r.int(7)?,
        sender: r.text(8)?,
        msg_type: r.text(9)?,
        subject: r.opt_text(10)?,
        body: r.text(11)?,
        status: r.text(12)?,
        attempts: r.int(13)?,
        next_ms: r.int(14)?,
        created_ms: r.int(15)?,
        updated_ms: r.int(16)?,
        detail: r.opt_text(17)?,
        instance: r.opt_text(18)?,
    })
}

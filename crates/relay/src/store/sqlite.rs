//! The relay store in one SQLite file (WAL, synchronous=FULL): the default, for one relay.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    claim_sql, delivery_from, log_sql, schema, Columns, Delivery, Outcome, Parked, Recovered, RelayStore, StoreResult,
    ADD_DELIVERY, BEGIN_SEND, FINISH, FORGET_PARKED, GET_HELD, GET_OUTCOME, HOLD, LIST_HELD_BEFORE, LIST_PARKED,
    NEXT_DUE, PARK, PRUNE_BATCH, PRUNE_DELIVERIES, PRUNE_EVENTS, PRUNE_PARKED, RECOVER, RELEASE, REQUEUE, SEE_EVENT,
    SENT_SINCE, SETTLE_DUPLICATE_CLAIMS, SET_OUTCOME, UNHOLD, UNPARK,
};

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // One writer at a time from here, so a relay and `relay log` starting together on an old
        // file do not both add the column.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Files written before claims were recorded per relay and per claim.
        let old_file: bool =
            tx.query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'deliveries'", [], |r| r.get(0))?;
        for column in ["claimed_by", "claim_token"] {
            let missing: bool = tx.query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'deliveries'
                   AND NOT EXISTS (SELECT 1 FROM pragma_table_info('deliveries') WHERE name = ?1)",
                [column],
                |r| r.get(0),
            )?;
            if missing {
                tx.execute_batch(&format!("ALTER TABLE deliveries ADD COLUMN {column} TEXT"))?;
            }
        }
        if old_file {
            tx.execute_batch(SETTLE_DUPLICATE_CLAIMS)?;
        }
        tx.execute_batch(&schema("INTEGER PRIMARY KEY AUTOINCREMENT"))?;
        tx.commit()?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock means a panic mid-statement; SQLite rolled back, the data is sound.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a first sighting of `p` and keeps it (`keep`: parked or held) in one
    /// transaction; false when the event was seen before.
    fn see_and_keep(&self, keep: &str, p: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let fresh = tx.execute(SEE_EVENT, params![p.event_id, now_ms, outcome])? == 1;
        if fresh {
            tx.execute(keep, params![p.event_id, p.topic, p.payload, p.event_ms, now_ms])?;
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// Takes a parked or held event (`delete`, by event id) and adds its deliveries in one
    /// transaction; false when it was taken already.
    fn take_and_deliver(
        &self,
        delete: &str,
        event_id: &str,
        outcome: &str,
        deliveries: &[Delivery],
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let ours = tx.execute(delete, params![event_id])? == 1;
        if ours {
            add_deliveries(&tx, deliveries, now_ms)?;
            tx.execute(SET_OUTCOME, params![event_id, outcome])?;
        }
        tx.commit()?;
        Ok(ours)
    }
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
}

impl RelayStore for SqliteStore {
    fn recover(&self, instance: &str, lease_before_ms: i64, now_ms: i64) -> StoreResult<Recovered> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let requeued = tx.execute(REQUEUE, params![instance, lease_before_ms, now_ms])?;
        let unknown = tx.execute(RECOVER, params![instance, lease_before_ms, now_ms])?;
        tx.commit()?;
        Ok(Recovered { requeued, unknown })
    }

    fn intake(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let fresh = tx.execute(SEE_EVENT, params![event_id, now_ms, outcome])? == 1;
        if fresh {
            add_deliveries(&tx, deliveries, now_ms)?;
        }
        tx.commit()?;
        Ok(fresh)
    }

    fn intake_parked(&self, p: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool> {
        self.see_and_keep(PARK, p, outcome, now_ms)
    }

    fn parked(&self, since_event_ms: i64) -> StoreResult<Vec<Parked>> {
        let conn = self.lock();
        conn.execute(FORGET_PARKED, params![since_event_ms])?;
        let mut stmt = conn.prepare_cached(LIST_PARKED)?;
        let rows = stmt.query_map(params![since_event_ms], |r| {
            Ok(Parked { event_id: r.get(0)?, topic: r.get(1)?, payload: r.get(2)?, event_ms: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn unpark(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool> {
        self.take_and_deliver(UNPARK, event_id, outcome, deliveries, now_ms)
    }

    fn unpark_to_held(&self, p: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let ours = tx.execute(UNPARK, params![p.event_id])? == 1;
        if ours {
            tx.execute(HOLD, params![p.event_id, p.topic, p.payload, p.event_ms, now_ms])?;
            tx.execute(SET_OUTCOME, params![p.event_id, outcome])?;
        }
        tx.commit()?;
        Ok(ours)
    }

    fn intake_held(&self, p: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool> {
        self.see_and_keep(HOLD, p, outcome, now_ms)
    }

    fn held(&self, event_id: &str) -> StoreResult<Option<Parked>> {
        let conn = self.lock();
        let row = conn
            .query_row(GET_HELD, params![event_id], |r| {
                Ok(Parked { event_id: r.get(0)?, topic: r.get(1)?, payload: r.get(2)?, event_ms: r.get(3)? })
            })
            .optional()?;
        Ok(row)
    }

    fn outcome(&self, event_id: &str) -> StoreResult<Option<String>> {
        let conn = self.lock();
        Ok(conn.query_row(GET_OUTCOME, params![event_id], |r| r.get(0)).optional()?)
    }

    fn held_before(&self, before_event_ms: i64) -> StoreResult<Vec<Parked>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(LIST_HELD_BEFORE)?;
        let rows = stmt.query_map(params![before_event_ms], |r| {
            Ok(Parked { event_id: r.get(0)?, topic: r.get(1)?, payload: r.get(2)?, event_ms: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn release_held(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool> {
        self.take_and_deliver(UNHOLD, event_id, outcome, deliveries, now_ms)
    }

    fn claim(&self, instance: &str, token: &str, now_ms: i64) -> StoreResult<Option<Delivery>> {
        // SQLite has one writer at a time: the single UPDATE … RETURNING is already exclusive.
        let conn = self.lock();
        let row = conn.query_row(&claim_sql(""), params![instance, now_ms, token], |r| delivery_from(r)).optional()?;
        Ok(row)
    }

    fn release(&self, token: &str, now_ms: i64) -> StoreResult<usize> {
        Ok(self.lock().execute(RELEASE, params![token, now_ms])?)
    }

    fn begin_send(&self, id: i64, token: &str, now_ms: i64) -> StoreResult<bool> {
        Ok(self.lock().execute(BEGIN_SEND, params![id, token, now_ms])? == 1)
    }

    fn finish(&self, id: i64, token: &str, o: &Outcome<'_>, now_ms: i64) -> StoreResult<bool> {
        let n = self.lock().execute(FINISH, params![id, o.status, o.attempts, o.next_ms, o.detail, now_ms, token])?;
        Ok(n == 1)
    }

    fn sent_since(&self, recipient: &str, since_ms: i64) -> StoreResult<i64> {
        Ok(self.lock().query_row(SENT_SINCE, params![recipient, since_ms], |r| r.get(0))?)
    }

    fn next_due(&self) -> StoreResult<Option<i64>> {
        Ok(self.lock().query_row(NEXT_DUE, [], |r| r.get(0))?)
    }

    fn log(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&log_sql())?;
        let rows = stmt.query_map(params![limit as i64], |r| delivery_from(r))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn prune(&self, before_ms: i64) -> StoreResult<usize> {
        let mut total = 0;
        total += self.lock().execute(PRUNE_PARKED, params![before_ms])?;
        for sql in [PRUNE_DELIVERIES, PRUNE_EVENTS] {
            // The lock is taken per batch, so intake and claims go on in between.
            loop {
                let n = self.lock().execute(sql, params![before_ms, PRUNE_BATCH])?;
                total += n;
                if (n as i64) < PRUNE_BATCH {
                    break;
                }
            }
        }
        Ok(total)
    }
}

fn add_deliveries(tx: &rusqlite::Transaction<'_>, deliveries: &[Delivery], now_ms: i64) -> StoreResult<()> {
    let mut add = tx.prepare_cached(ADD_DELIVERY)?;
    for d in deliveries {
        add.execute(params![
            d.event_id,
            d.recipient,
            d.guardian,
            d.child,
            d.center,
            d.notice,
            d.event_ms,
            d.sender,
            d.msg_type,
            d.subject,
            d.body,
            d.status,
            d.next_ms,
            now_ms,
            d.detail
        ])?;
    }
    Ok(())
}

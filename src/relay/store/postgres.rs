//! The relay store in PostgreSQL, shared by several relays: the event dedupe is the `events_seen`
//! primary key (a second relay inserting the same event waits for the first one's transaction and
//! then finds it), and delivery claims skip rows another relay holds (`FOR UPDATE SKIP LOCKED`).
//!
//! One connection per relay, re-opened on the next call after it breaks (a database restart costs
//! the calls in between an error each; the relay retries them).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, NoTls};

use super::{
    claim_sql, delivery_from, log_sql, schema, Columns, Delivery, Outcome, RelayStore, StoreError, StoreResult,
    ADD_DELIVERY, FINISH, NEXT_DUE, RECOVER, SEE_EVENT, SENT_SINCE,
};

pub struct PgStore {
    config: postgres::Config,
    client: Mutex<Option<Client>>,
}

/// The shared SQL is written with SQLite's `?N`; PostgreSQL numbers its parameters `$N`.
fn pg(sql: &str) -> String {
    sql.replace('?', "$")
}

/// Serialises schema creation across relays starting together (`CREATE TABLE IF NOT EXISTS` can
/// race in PostgreSQL). Any constant; this one spells "dolbom".
const SCHEMA_LOCK: i64 = 0x646f_6c62_6f6d;

impl PgStore {
    /// Connects and creates the tables if they are missing.
    pub fn open(params: &str) -> StoreResult<Self> {
        // The message of a parse error never repeats the string, which may hold a password.
        let mut config: postgres::Config =
            params.parse().map_err(|e: postgres::Error| StoreError::Config(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("dolbom-relay");
        }
        let mut client = config.connect(NoTls)?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
        tx.batch_execute(&schema("BIGSERIAL PRIMARY KEY"))?;
        tx.commit()?;
        Ok(Self { config, client: Mutex::new(Some(client)) })
    }

    /// Runs `f` on the connection, connecting first if there is none or it broke.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> StoreResult<T> {
        let mut slot: MutexGuard<'_, Option<Client>> = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let client = match slot.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.config.connect(NoTls)?,
        };
        let client = slot.insert(client);
        let result = f(client);
        if client.is_closed() {
            *slot = None;
        }
        Ok(result?)
    }
}

impl Columns for postgres::Row {
    type Error = postgres::Error;
    fn int(&self, i: usize) -> Result<i64, postgres::Error> {
        self.try_get(i)
    }
    fn text(&self, i: usize) -> Result<String, postgres::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, postgres::Error> {
        self.try_get(i)
    }
}

impl RelayStore for PgStore {
    fn recover(&self, instance: &str, lease_before_ms: i64, now_ms: i64) -> StoreResult<usize> {
        self.with(|c| c.execute(&pg(RECOVER), &[&instance, &lease_before_ms, &now_ms])).map(|n| n as usize)
    }

    fn intake(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let fresh = tx.execute(&pg(SEE_EVENT), &[&event_id, &now_ms, &outcome])? == 1;
            if fresh {
                let add = tx.prepare(&pg(ADD_DELIVERY))?;
                for d in deliveries {
                    let row: [&(dyn ToSql + Sync); 15] = [
                        &d.event_id,
                        &d.recipient,
                        &d.guardian,
                        &d.child,
                        &d.center,
                        &d.notice,
                        &d.event_ms,
                        &d.sender,
                        &d.msg_type,
                        &d.subject,
                        &d.body,
                        &d.status,
                        &d.next_ms,
                        &now_ms,
                        &d.detail,
                    ];
                    tx.execute(&add, &row)?;
                }
            }
            tx.commit()?;
            Ok(fresh)
        })
    }

    fn claim(&self, instance: &str, now_ms: i64) -> StoreResult<Option<Delivery>> {
        let sql = pg(&claim_sql("FOR UPDATE SKIP LOCKED"));
        self.with(|c| c.query_opt(&sql, &[&instance, &now_ms])?.map(|r| delivery_from(&r)).transpose())
    }

    fn finish(&self, id: i64, o: &Outcome<'_>, now_ms: i64) -> StoreResult<()> {
        self.with(|c| c.execute(&pg(FINISH), &[&id, &o.status, &o.attempts, &o.next_ms, &o.detail, &now_ms])).map(drop)
    }

    fn sent_since(&self, recipient: &str, since_ms: i64) -> StoreResult<i64> {
        self.with(|c| c.query_one(&pg(SENT_SINCE), &[&recipient, &since_ms])?.try_get(0))
    }

    fn next_due(&self) -> StoreResult<Option<i64>> {
        self.with(|c| c.query_one(NEXT_DUE, &[])?.try_get(0))
    }

    fn log(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let limit = limit as i64;
        self.with(|c| c.query(&pg(&log_sql()), &[&limit])?.iter().map(delivery_from).collect())
    }
}

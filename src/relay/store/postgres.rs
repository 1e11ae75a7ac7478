//! The relay store in PostgreSQL, shared by several relays: the event dedupe is the `events_seen`
//! primary key (a second relay inserting the same event waits for the first one's transaction and
//! then finds it), and delivery claims skip rows another relay holds (`FOR UPDATE SKIP LOCKED`).
//!
//! A few pooled connections per relay (the intake and each sender call at once), a broken one
//! replaced on the next call (a database restart costs the calls in between an error each; the
//! relay retries them). A relay holds a session lock on its instance name, on a connection of its
//! own, so a second process under the same name is refused instead of settling the first one's
//! claims as interrupted.

use std::sync::Mutex;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, NoTls};

use super::{
    claim_sql, delivery_from, log_sql, schema, Columns, Delivery, Outcome, Recovered, RelayStore, StoreError,
    StoreResult, ADD_DELIVERY, BEGIN_SEND, FINISH, NEXT_DUE, RECOVER, REQUEUE, SEE_EVENT, SENT_SINCE,
};

pub struct PgStore {
    config: postgres::Config,
    instance: Option<String>,
    /// Idle connections; a call takes one or opens one, and gives it back unless it broke.
    idle: Mutex<Vec<Client>>,
    /// The connection holding the instance lock (none for `relay log`).
    lock: Mutex<Option<Client>>,
}

/// The shared SQL is written with SQLite's `?N`; PostgreSQL numbers its parameters `$N`. Only a
/// `?` followed by a digit is a parameter (the shared SQL has no `?` in literals or operators).
fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Serialises schema creation across relays starting together (`CREATE TABLE IF NOT EXISTS` can
/// race in PostgreSQL). Any constant; this one spells "dolbom".
const SCHEMA_LOCK: i64 = 0x646f_6c62_6f6d;

/// Bounds on a call when the connection string sets none, so a dead network path or a stuck lock
/// turns into an error the relay retries instead of a call that hangs while events wait unacked.
const DEFAULT_SERVER_OPTIONS: &str =
    "-c statement_timeout=30000 -c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000";

impl PgStore {
    /// Connects, creates the tables if they are missing and, for a relay, takes its name's lock.
    pub fn open(params: &str, instance: Option<&str>) -> StoreResult<Self> {
        // The message of a parse error never repeats the string, which may hold a password.
        let mut config: postgres::Config =
            params.parse().map_err(|e: postgres::Error| StoreError::Config(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        config.keepalives_idle(config.get_keepalives_idle().min(Duration::from_secs(30)));
        if config.get_options().is_none() {
            config.options(DEFAULT_SERVER_OPTIONS);
        }
        if config.get_application_name().is_none() {
            config.application_name("dolbom-relay");
        }
        let store = PgStore {
            config,
            instance: instance.map(str::to_string),
            idle: Mutex::new(Vec::new()),
            lock: Mutex::new(None),
        };
        store.with(|c| {
            let exists: bool = c.query_one("SELECT to_regclass('deliveries') IS NOT NULL", &[])?.try_get(0)?;
            if !exists {
                // Only when missing: a relay role without CREATE rights can use existing tables.
                let mut tx = c.transaction()?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
                tx.batch_execute(&schema("BIGSERIAL PRIMARY KEY"))?;
                tx.commit()?;
            }
            Ok(())
        })?;
        Ok(store)
    }

    /// Holds this relay's name lock, taking it (again) when its connection is gone.
    fn hold_instance_lock(&self) -> StoreResult<()> {
        let Some(instance) = &self.instance else { return Ok(()) };
        let mut held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if held.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        *held = None;
        let mut client = self.config.connect(NoTls)?;
        let key = format!("dolbom-relay:{instance}");
        let mine: bool = client.query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])?.try_get(0)?;
        if !mine {
            return Err(StoreError::InstanceTaken(instance.clone()));
        }
        *held = Some(client);
        Ok(())
    }

    /// Runs `f` on a pooled connection, opening one when none is idle.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> StoreResult<T> {
        self.hold_instance_lock()?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.config.connect(NoTls)?,
        };
        let result = f(&mut client);
        if !client.is_closed() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(client);
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
    fn recover(&self, instance: &str, lease_before_ms: i64, now_ms: i64) -> StoreResult<Recovered> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let requeued = tx.execute(&pg(REQUEUE), &[&instance, &lease_before_ms, &now_ms])? as usize;
            let unknown = tx.execute(&pg(RECOVER), &[&instance, &lease_before_ms, &now_ms])? as usize;
            tx.commit()?;
            Ok(Recovered { requeued, unknown })
        })
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

    fn begin_send(&self, id: i64, instance: &str, now_ms: i64) -> StoreResult<bool> {
        self.with(|c| c.execute(&pg(BEGIN_SEND), &[&id, &instance, &now_ms])).map(|n| n == 1)
    }

    fn finish(&self, id: i64, instance: &str, o: &Outcome<'_>, now_ms: i64) -> StoreResult<bool> {
        let params: [&(dyn ToSql + Sync); 7] = [&id, &o.status, &o.attempts, &o.next_ms, &o.detail, &now_ms, &instance];
        self.with(|c| c.execute(&pg(FINISH), &params)).map(|n| n == 1)
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

#[cfg(test)]
mod tests {
    use super::pg;

    #[test]
    fn only_numbered_placeholders_are_renumbered() {
        assert_eq!(pg("a = ?1 AND b IN (?12, ?2)"), "a = $1 AND b IN ($12, $2)");
        assert_eq!(pg("j ? 'k' AND x = ?3"), "j ? 'k' AND x = $3");
    }
}

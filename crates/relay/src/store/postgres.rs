//! The relay store in PostgreSQL, shared by several relays: the event dedupe is the `events_seen`
//! primary key (a second relay inserting the same event waits for the first one's transaction and
//! then finds it), and delivery claims skip rows another relay holds (`FOR UPDATE SKIP LOCKED`).
//!
//! A few pooled connections per relay (the intake and each sender call at once), a broken one
//! replaced on the next call (a database restart costs the calls in between an error each; the
//! relay retries them). A relay holds a session lock on its instance name, on a connection of its
//! own, so a second process under the same name is refused instead of settling the first one's
//! claims as interrupted.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::config::SslMode;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    claim_sql, delivery_from, log_sql, schema, Columns, Delivery, Outcome, Parked, Recovered, RelayStore, StoreError,
    StoreResult, ADD_DELIVERY, BEGIN_SEND, FINISH, FORGET_PARKED, GET_HELD, GET_OUTCOME, HOLD, LIST_HELD_BEFORE,
    LIST_PARKED, NEXT_DUE, PARK, PRUNE_BATCH, PRUNE_DELIVERIES, PRUNE_EVENTS, PRUNE_PARKED, RECOVER, RELEASE, REQUEUE,
    SEE_EVENT, SENT_SINCE, SETTLE_DUPLICATE_CLAIMS, SET_OUTCOME, UNHOLD, UNPARK,
};

pub struct PgStore {
    config: postgres::Config,
    /// Set when the server must be reached over TLS (verified; never a silent fallback).
    tls: Option<MakeRustlsConnect>,
    instance: Option<String>,
    /// Idle connections and when each was last used; a call takes one or opens one, and gives it
    /// back unless it broke.
    idle: Mutex<Vec<(Client, Instant)>>,
    /// The connection holding the instance lock (none for `relay log`), and when it was last
    /// seen alive.
    lock: Mutex<Option<(Client, Instant)>>,
}

/// A connection idle longer than this is checked before use: the sync client only notices a
/// dead socket when it next talks, so a database restart would otherwise cost a failed call per
/// pooled connection, and a lost instance lock would go unnoticed.
const CHECK_AFTER: Duration = Duration::from_secs(5);

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

/// Bounds on a call when the connection string sets no `options`, so a dead network path or a
/// stuck lock turns into an error the relay retries instead of a call that hangs while events
/// wait unacked; the server-side keepalives end a session (and free its instance lock) soon
/// after its relay's host vanishes.
const DEFAULT_SERVER_OPTIONS: &str = "-c statement_timeout=30000 -c lock_timeout=10000 \
     -c idle_in_transaction_session_timeout=60000 -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 \
     -c tcp_keepalives_count=3";

/// Bump with every schema change; `open` migrates a store below it. 2: the claim columns are
/// added to stores an earlier build had already marked 1 without them. 3: `events_parked`.
/// 4: `events_held`.
const SCHEMA_VERSION: i32 = 4;

/// Gives the name back before the connection goes: the server drops a session's locks only
/// once its backend has noticed the disconnect, which a relay started right after this one
/// (a restart, a test) could otherwise beat and be refused.
impl Drop for PgStore {
    fn drop(&mut self) {
        let held = self.lock.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        let (Some((client, _)), Some(instance)) = (held, self.instance.clone()) else { return };
        let release = move || {
            let mut client = client;
            // A dead or half-open connection is not waited on (a call would take the TCP user
            // timeout): its lock goes with its session.
            if !client.is_closed() && client.is_valid(Duration::from_secs(1)).is_ok() {
                let key = Self::instance_key(&instance);
                if let Err(e) = client.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", &[&key]) {
                    tracing::debug!(error = %e, "name lock not released explicitly; the server releases it on disconnect");
                }
            }
            let _ = client.close();
        };
        // The sync client blocks on a runtime of its own, which must not run inside tokio's: there
        // (never on the relay's own path, which drops its store outside tokio) it gets a thread.
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new().name("pg-release".into()).spawn(release);
        } else {
            release();
        }
    }
}

impl PgStore {
    /// Connects, creates the tables if they are missing and, for a relay, takes its name's lock.
    /// With `ca`, or `sslmode=require` in `params`, the connection is TLS, verified against `ca`
    /// or else the system's roots.
    pub fn open(params: &str, ca: Option<&Path>, instance: Option<&str>) -> StoreResult<Self> {
        Self::open_with_password(params, None, ca, instance)
    }

    /// [`PgStore::open`] with the password from its own file (`relay.postgres_password_file`).
    pub fn open_with_password(
        params: &str,
        password: Option<&str>,
        ca: Option<&Path>,
        instance: Option<&str>,
    ) -> StoreResult<Self> {
        // The message of a parse error never repeats the string, which may hold a password.
        let mut config: postgres::Config =
            params.parse().map_err(|e: postgres::Error| StoreError::Config(e.to_string()))?;
        if let Some(password) = password {
            config.password(password);
        }
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
            // Names the holder of an instance lock in pg_stat_activity.
            config.application_name(&format!("dolbom-relay:{}", instance.unwrap_or("log")));
        }
        if ca.is_some() && config.get_ssl_mode() == SslMode::Disable {
            return Err(StoreError::Config("sslmode=disable contradicts `relay.postgres_ca`".into()));
        }
        let tls = if ca.is_some() || config.get_ssl_mode() == SslMode::Require {
            config.ssl_mode(SslMode::Require);
            Some(tls_connector(ca)?)
        } else {
            None
        };
        let store = PgStore {
            config,
            tls,
            instance: instance.map(str::to_string),
            idle: Mutex::new(Vec::new()),
            lock: Mutex::new(None),
        };
        store.with(|c| {
            // Only when behind: a relay role without CREATE rights can use existing tables.
            if schema_version(c)? < SCHEMA_VERSION {
                let mut tx = c.transaction()?;
                // Another relay's slow migration is waited for, and index builds over a large
                // table take what they take: no call bounds inside this transaction.
                tx.batch_execute("SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0")?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
                // That other relay may have migrated while this one waited.
                if schema_version(&mut tx)? < SCHEMA_VERSION {
                    migrate(&mut tx)?;
                }
                tx.commit()?;
            }
            Ok(())
        })?;
        Ok(store)
    }

    fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }

    /// Holds this relay's name lock, taking it again when its connection is gone.
    fn hold_instance_lock(&self) -> StoreResult<()> {
        let Some(instance) = &self.instance else { return Ok(()) };
        let mut held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((client, checked)) = held.as_mut() {
            if checked.elapsed() < CHECK_AFTER {
                return Ok(());
            }
            if !client.is_closed() && client.is_valid(Duration::from_secs(2)).is_ok() {
                *checked = Instant::now();
                return Ok(());
            }
            tracing::warn!(instance, "the connection holding this relay's name lock was lost; taking it again");
        }
        *held = None;
        let mut client = self.connect()?;
        let key = Self::instance_key(instance);
        let mine: bool =
            client.query_one("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", &[&key])?.try_get(0)?;
        if !mine {
            return Err(StoreError::InstanceTaken(instance.clone()));
        }
        *held = Some((client, Instant::now()));
        Ok(())
    }

    fn instance_key(instance: &str) -> String {
        format!("dolbom-relay:{instance}")
    }

    /// Runs `f` on a pooled connection, opening one when none is idle (or the idle one died).
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> StoreResult<T> {
        self.hold_instance_lock()?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let alive = |(mut c, used): (Client, Instant)| {
            let ok = !c.is_closed() && (used.elapsed() < CHECK_AFTER || c.is_valid(Duration::from_secs(2)).is_ok());
            ok.then_some(c)
        };
        let mut client = match idle.and_then(alive) {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&mut client);
        if !client.is_closed() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push((client, Instant::now()));
        }
        Ok(result?)
    }
}

fn schema_version(c: &mut impl GenericClient) -> Result<i32, postgres::Error> {
    let exists: bool = c.query_one("SELECT to_regclass('relay_schema') IS NOT NULL", &[])?.try_get(0)?;
    if !exists {
        return Ok(0);
    }
    c.query_one("SELECT COALESCE(MAX(version), 0) FROM relay_schema", &[])?.try_get(0)
}

/// Brings the tables to [`SCHEMA_VERSION`]; every step may run again on a store already there.
fn migrate(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    let existing: bool = tx.query_one("SELECT to_regclass('deliveries') IS NOT NULL", &[])?.try_get(0)?;
    if existing {
        // Written by an older relay (before claims were recorded per relay and per claim), which
        // may still be running against it.
        tx.batch_execute(
            "LOCK TABLE deliveries IN SHARE ROW EXCLUSIVE MODE;
             ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS claimed_by TEXT;
             ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS claim_token TEXT;",
        )?;
        tx.batch_execute(SETTLE_DUPLICATE_CLAIMS)?;
    }
    tx.batch_execute(&schema("BIGSERIAL PRIMARY KEY"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS relay_schema (version INTEGER NOT NULL)")?;
    tx.execute("INSERT INTO relay_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])?;
    Ok(())
}

/// A rustls client that verifies the server against `ca` (PEM, one or more certificates) or the
/// system's roots, and its name against the connection's `host`.
fn tls_connector(ca: Option<&Path>) -> StoreResult<MakeRustlsConnect> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| StoreError::Config(format!("`relay.postgres_ca` {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(StoreError::Config(format!("`relay.postgres_ca` {}: no certificate", path.display())));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| StoreError::Config(format!("`relay.postgres_ca`: {e}")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(StoreError::Config(
                    "sslmode=require, but no system CA certificates: set `relay.postgres_ca`".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
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
                add_deliveries(&mut tx, deliveries, now_ms)?;
            }
            tx.commit()?;
            Ok(fresh)
        })
    }

    fn intake_parked(&self, p: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool> {
        self.with(|c| see_and_keep(c, &pg(PARK), p, outcome, now_ms))
    }

    fn parked(&self, since_event_ms: i64) -> StoreResult<Vec<Parked>> {
        self.with(|c| {
            c.execute(&pg(FORGET_PARKED), &[&since_event_ms])?;
            parked_rows(c.query(&pg(LIST_PARKED), &[&since_event_ms])?)
        })
    }

    fn unpark(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool> {
        self.with(|c| take_and_deliver(c, &pg(UNPARK), event_id, outcome, deliveries, now_ms))
    }

    fn unpark_to_held(&self, p: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            // As unpark: the DELETE's row lock makes a second relay wait, then find nothing.
            let ours = tx.execute(&pg(UNPARK), &[&p.event_id])? == 1;
            if ours {
                tx.execute(&pg(HOLD), &[&p.event_id, &p.topic, &p.payload, &p.event_ms, &now_ms])?;
                tx.execute(&pg(SET_OUTCOME), &[&p.event_id, &outcome])?;
            }
            tx.commit()?;
            Ok(ours)
        })
    }

    fn intake_held(&self, p: &Parked, outcome: &str, now_ms: i64) -> StoreResult<bool> {
        self.with(|c| see_and_keep(c, &pg(HOLD), p, outcome, now_ms))
    }

    fn held(&self, event_id: &str) -> StoreResult<Option<Parked>> {
        self.with(|c| {
            c.query_opt(&pg(GET_HELD), &[&event_id])?
                .map(|r| {
                    Ok(Parked {
                        event_id: r.try_get(0)?,
                        topic: r.try_get(1)?,
                        payload: r.try_get(2)?,
                        event_ms: r.try_get(3)?,
                    })
                })
                .transpose()
        })
    }

    fn outcome(&self, event_id: &str) -> StoreResult<Option<String>> {
        self.with(|c| c.query_opt(&pg(GET_OUTCOME), &[&event_id])?.map(|r| r.try_get(0)).transpose())
    }

    fn held_before(&self, before_event_ms: i64) -> StoreResult<Vec<Parked>> {
        self.with(|c| parked_rows(c.query(&pg(LIST_HELD_BEFORE), &[&before_event_ms])?))
    }

    fn release_held(&self, event_id: &str, outcome: &str, deliveries: &[Delivery], now_ms: i64) -> StoreResult<bool> {
        self.with(|c| take_and_deliver(c, &pg(UNHOLD), event_id, outcome, deliveries, now_ms))
    }

    fn claim(&self, instance: &str, token: &str, now_ms: i64) -> StoreResult<Option<Delivery>> {
        let sql = pg(&claim_sql("FOR UPDATE SKIP LOCKED"));
        self.with(|c| match c.query_opt(&sql, &[&instance, &now_ms, &token]) {
            Ok(row) => row.map(|r| delivery_from(&r)).transpose(),
            // Another sender's claim for the same guardian committed first: nothing for us this
            // time; the next claim skips that guardian.
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn release(&self, token: &str, now_ms: i64) -> StoreResult<usize> {
        self.with(|c| c.execute(&pg(RELEASE), &[&token, &now_ms])).map(|n| n as usize)
    }

    fn begin_send(&self, id: i64, token: &str, now_ms: i64) -> StoreResult<bool> {
        self.with(|c| c.execute(&pg(BEGIN_SEND), &[&id, &token, &now_ms])).map(|n| n == 1)
    }

    fn finish(&self, id: i64, token: &str, o: &Outcome<'_>, now_ms: i64) -> StoreResult<bool> {
        let params: [&(dyn ToSql + Sync); 7] = [&id, &o.status, &o.attempts, &o.next_ms, &o.detail, &now_ms, &token];
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

    fn prune(&self, before_ms: i64) -> StoreResult<usize> {
        let mut total = self.with(|c| c.execute(&pg(PRUNE_PARKED), &[&before_ms]))? as usize;
        for sql in [pg(PRUNE_DELIVERIES), pg(PRUNE_EVENTS)] {
            loop {
                let n = self.with(|c| c.execute(&sql, &[&before_ms, &PRUNE_BATCH]))?;
                total += n as usize;
                if (n as i64) < PRUNE_BATCH {
                    break;
                }
            }
        }
        Ok(total)
    }
}

/// Records a first sighting of `p` and keeps it (`keep`: parked or held) in one transaction;
/// false when the event was seen before.
fn see_and_keep(c: &mut Client, keep: &str, p: &Parked, outcome: &str, now_ms: i64) -> Result<bool, postgres::Error> {
    let mut tx = c.transaction()?;
    let fresh = tx.execute(&pg(SEE_EVENT), &[&p.event_id, &now_ms, &outcome])? == 1;
    if fresh {
        tx.execute(keep, &[&p.event_id, &p.topic, &p.payload, &p.event_ms, &now_ms])?;
    }
    tx.commit()?;
    Ok(fresh)
}

/// Parked or held rows: (event_id, topic, payload, event_ms).
fn parked_rows(rows: Vec<postgres::Row>) -> Result<Vec<Parked>, postgres::Error> {
    rows.iter()
        .map(|r| {
            Ok(Parked {
                event_id: r.try_get(0)?,
                topic: r.try_get(1)?,
                payload: r.try_get(2)?,
                event_ms: r.try_get(3)?,
            })
        })
        .collect()
}

/// Takes a parked or held event (`delete`, by event id) and adds its deliveries in one
/// transaction. The row lock taken by the DELETE makes a second relay's attempt wait, then find
/// nothing: only one of them adds the deliveries.
fn take_and_deliver(
    c: &mut Client,
    delete: &str,
    event_id: &str,
    outcome: &str,
    deliveries: &[Delivery],
    now_ms: i64,
) -> Result<bool, postgres::Error> {
    let mut tx = c.transaction()?;
    let ours = tx.execute(delete, &[&event_id])? == 1;
    if ours {
        add_deliveries(&mut tx, deliveries, now_ms)?;
        tx.execute(&pg(SET_OUTCOME), &[&event_id, &outcome])?;
    }
    tx.commit()?;
    Ok(ours)
}

fn add_deliveries(
    tx: &mut postgres::Transaction<'_>,
    deliveries: &[Delivery],
    now_ms: i64,
) -> Result<(), postgres::Error> {
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
    Ok(())
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

//! `[retention]`: how long the kiosk database keeps what it no longer needs, and the sweep that
//! deletes it, at start and once a day. Without it the `commands`, `alerts` and `attendance`
//! tables only ever grow, until the disk of a kiosk that runs for years is full.
//!
//! The kiosk's rows are working state, not the center's records: attendance and alerts go to
//! the center as events; the kiosk keeps them to decide (one arrival per day, one alert per
//! visit) and to answer staff. The outbox is not swept here: it has its own capacity and expiry.
//! An alert's state is also retained on the broker (`alert/{id}`): deleting the row queues an
//! empty retained message on that topic in the same transaction, so the broker forgets it too.

use std::time::Duration;

use rusqlite::{params, Connection};
use serde::Deserialize;
use tracing::{info, info_span, warn, Instrument};

use dolbom_contract::Topics;

use crate::outbox::{NewMessage, Outbox, Priority, Tally};
use crate::shutdown::Shutdown;
use crate::store::StoreError;

const DAY_MS: i64 = 86_400_000;
/// Rows deleted per transaction: the store lock is let go between batches, so a first sweep of
/// a large database never holds up an arrival for long.
const BATCH: i64 = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Staff command results (the memory of request_ids): a retry comes within minutes.
    pub commands_days: u32,
    /// Fever alerts and their silence/resolve history: a season of colds, for staff questions.
    pub alerts_days: u32,
    /// The attendance book (who arrived and left which day): a year, for questions about a day.
    pub attendance_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { commands_days: 30, alerts_days: 90, attendance_days: 365 }
    }
}

/// Ten years: longer is no retention at all, and the millisecond arithmetic stays far from overflow.
const MAX_DAYS: u32 = 3_650;

impl RetentionConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, days) in [
            ("retention.commands_days", self.commands_days),
            ("retention.alerts_days", self.alerts_days),
            ("retention.attendance_days", self.attendance_days),
        ] {
            if !(1..=MAX_DAYS).contains(&days) {
                return Err((key, format!("= {days}: must be between 1 and {MAX_DAYS} days")));
            }
        }
        Ok(())
    }
}

/// Rows deleted by one sweep, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub commands: u64,
    pub alerts: u64,
    pub attendance: u64,
}

/// Each table, the column that dates its rows, and its retention.
fn tables(cfg: &RetentionConfig) -> [(&'static str, &'static str, u32); 3] {
    [
        ("commands", "created_ms", cfg.commands_days),
        ("alerts", "created_ms", cfg.alerts_days),
        ("attendance", "last_event_ms", cfg.attendance_days),
    ]
}

/// Deletes one batch of rows older than their table's retention, in one transaction, and queues
/// the clearing of each deleted alert's retained state; the count deleted per table.
pub fn sweep_batch(
    conn: &Connection,
    cfg: &RetentionConfig,
    topics: &Topics,
    capacity: u64,
    now_ms: i64,
    tally: &mut Tally,
) -> Result<Swept, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let mut counts = [0u64; 3];
    for ((table, column, days), count) in tables(cfg).into_iter().zip(&mut counts) {
        // Kept rows are never older than this; an index makes finding the rest cheap.
        tx.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {table}_by_age ON {table} ({column})"))?;
        let cutoff = now_ms - i64::from(days) * DAY_MS;
        if table == "alerts" {
            let ids: Vec<String> = tx
                .prepare("SELECT alert_id FROM alerts WHERE created_ms < ?1 ORDER BY created_ms LIMIT ?2")?
                .query_map(params![cutoff, BATCH], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                tx.execute("DELETE FROM alerts WHERE alert_id = ?1", params![id])?;
                tally.enqueue(&tx, &clear_alert(topics, id, now_ms), capacity, now_ms)?;
            }
            *count = ids.len() as u64;
            continue;
        }
        *count = tx.execute(
            &format!("DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < ?1 LIMIT ?2)"),
            params![cutoff, BATCH],
        )? as u64;
    }
    // Closed re-measures (remeasure.rs) go with the alerts; open ones close by themselves within
    // fever.settle_within_mins. What one batch leaves, the next sweep takes.
    tx.execute(
        "DELETE FROM remeasures WHERE rowid IN
             (SELECT rowid FROM remeasures WHERE state != 'open' AND opened_ms < ?1 LIMIT ?2)",
        params![now_ms - i64::from(cfg.alerts_days) * DAY_MS, BATCH],
    )?;
    tx.commit()?;
    Ok(Swept { commands: counts[0], alerts: counts[1], attendance: counts[2] })
}

/// An empty retained message: the broker drops what it kept on the topic.
fn clear_alert(topics: &Topics, alert_id: &str, now_ms: i64) -> NewMessage {
    NewMessage {
        topic: topics.alert(alert_id),
        payload: Vec::new(),
        kind: "alert".into(),
        priority: Priority::Visitor,
        retain: true,
        created_ms: now_ms,
        expires_ms: None,
    }
}

/// Sweeps until nothing is left to delete, taking the store lock once per batch.
pub fn sweep(outbox: &Outbox, topics: &Topics, cfg: &RetentionConfig, now_ms: i64) -> Result<Swept, StoreError> {
    let mut total = Swept::default();
    loop {
        let mut tally = Tally::default();
        let batch = sweep_batch(&*outbox.store().lock()?, cfg, topics, outbox.capacity(), now_ms, &mut tally)?;
        if tally.queued > 0 {
            outbox.after_enqueue(tally);
        }
        total.commands += batch.commands;
        total.alerts += batch.alerts;
        total.attendance += batch.attendance;
        if batch == Swept::default() {
            return Ok(total);
        }
    }
}

/// The daemon's retention task: a sweep at start, then one a day, until shutdown. Sweeps run on
/// the blocking pool (SQLite with fsync); a failed sweep is logged and tried again next time.
pub async fn run(outbox: Outbox, topics: Topics, cfg: RetentionConfig, shutdown: Shutdown) {
    let span = info_span!("retention");
    async move {
        loop {
            let (outbox, topics, cfg2) = (outbox.clone(), topics.clone(), cfg.clone());
            let now_ms = jiff::Timestamp::now().as_millisecond();
            match tokio::task::spawn_blocking(move || sweep(&outbox, &topics, &cfg2, now_ms)).await {
                Ok(Ok(s)) if s != Swept::default() => {
                    info!(commands = s.commands, alerts = s.alerts, attendance = s.attendance, "old rows deleted")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(error = %e, "retention sweep failed; trying again tomorrow"),
                Err(e) => warn!(error = %e, "retention sweep did not finish"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(DAY_MS as u64)) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn outbox(dir: &tempfile::TempDir) -> Outbox {
        let store = Arc::new(crate::store::Store::open(&dir.path().join("k.db")).expect("store"));
        Outbox::new(store, 1_000_000, Arc::new(crate::health::Health::default())).expect("outbox")
    }

    fn topics() -> Topics {
        Topics::new("c", "k")
    }

    /// One row per table at each age (in days, fractional), written as the kiosk writes them.
    fn fill(conn: &Connection, ages_days: &[f64]) {
        for (i, age) in ages_days.iter().enumerate() {
            let at = NOW - (age * DAY_MS as f64) as i64;
            conn.execute(
                "INSERT INTO commands (request_id, result, created_ms) VALUES (?1, '{}', ?2)",
                params![format!("r{i}"), at],
            )
            .expect("command");
            conn.execute(
                "INSERT INTO alerts (alert_id, subject, day, state, payload, created_ms) \
                 VALUES (?1, 'minji', ?1, 'active', '{}', ?2)",
                params![format!("a{i}"), at],
            )
            .expect("alert");
            conn.execute(
                "INSERT INTO attendance (day, person, arrived_ms, last_event_ms) VALUES (?1, 'minji', ?2, ?2)",
                params![format!("d{i}"), at],
            )
            .expect("attendance");
        }
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn rows_older_than_each_tables_retention_are_deleted_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = outbox(&dir);
        let ages = [0.0, 1.0, 29.9, 30.1, 89.9, 90.1, 364.9, 365.1, 5000.0];
        fill(&outbox.store().lock().expect("lock"), &ages);
        let cfg = RetentionConfig::default();
        let swept = sweep(&outbox, &topics(), &cfg, NOW).expect("sweep");
        // commands keep < 30 days, alerts < 90, attendance < 365.
        assert_eq!(swept, Swept { commands: 6, alerts: 4, attendance: 2 });
        let conn = outbox.store().lock().expect("lock");
        assert_eq!((count(&conn, "commands"), count(&conn, "alerts"), count(&conn, "attendance")), (3, 5, 7));
        // The broker forgets the deleted alerts too: an empty retained message for each.
        let clears: Vec<(String, Vec<u8>, bool)> = conn
            .prepare("SELECT topic, payload, retain FROM outbox ORDER BY seq")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let expected: Vec<(String, Vec<u8>, bool)> =
            (5..9).rev().map(|i| (topics().alert(&format!("a{i}")), Vec::new(), true)).collect();
        assert_eq!(clears, expected);
        drop(conn);
        assert_eq!(sweep(&outbox, &topics(), &cfg, NOW).expect("again"), Swept::default(), "nothing more to delete");
    }

    #[test]
    fn a_large_backlog_is_deleted_in_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = outbox(&dir);
        let ages: Vec<f64> = (0..(2 * BATCH + 17)).map(|i| 400.0 + i as f64).collect();
        {
            let mut conn = outbox.store().lock().expect("lock");
            let tx = conn.transaction().expect("tx");
            fill(&tx, &ages);
            tx.commit().expect("commit");
        }
        let n = ages.len() as u64;
        assert_eq!(
            sweep(&outbox, &topics(), &RetentionConfig::default(), NOW).expect("sweep"),
            Swept { commands: n, alerts: n, attendance: n }
        );
    }

    #[test]
    fn every_retention_key_is_bounded_and_named() {
        for bad in [0, MAX_DAYS + 1, u32::MAX] {
            for (key, cfg) in [
                ("retention.commands_days", RetentionConfig { commands_days: bad, ..RetentionConfig::default() }),
                ("retention.alerts_days", RetentionConfig { alerts_days: bad, ..RetentionConfig::default() }),
                ("retention.attendance_days", RetentionConfig { attendance_days: bad, ..RetentionConfig::default() }),
            ] {
                let (k, msg) = cfg.validate().expect_err("out of range");
                assert_eq!(k, key);
                assert!(msg.contains(&bad.to_string()), "{msg}");
            }
        }
        assert_eq!(RetentionConfig::default().validate(), Ok(()));
    }

    #[tokio::test]
    async fn the_task_sweeps_at_start_and_ends_at_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = outbox(&dir);
        let store = outbox.store().clone();
        // Ages relative to the real clock, as the task sweeps with it.
        let now = jiff::Timestamp::now().as_millisecond();
        {
            let conn = store.lock().expect("lock");
            for (i, age) in [1, 400].into_iter().enumerate() {
                conn.execute(
                    "INSERT INTO commands (request_id, result, created_ms) VALUES (?1, '{}', ?2)",
                    params![format!("r{i}"), now - age * DAY_MS],
                )
                .expect("insert");
            }
        }
        let shutdown = Shutdown::new();
        let task = tokio::spawn(run(outbox, topics(), RetentionConfig::default(), shutdown.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count(&store.lock().expect("lock"), "commands") != 1 {
            assert!(std::time::Instant::now() < deadline, "the start-up sweep did not run");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("ends at shutdown").expect("task");
    }
}

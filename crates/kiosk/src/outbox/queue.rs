//! The durable outbox: every event is committed to disk before it is published and deleted only
//! after the broker's PUBACK. The MQTT stage reads it in order; nothing else sends events.
//!
//! Bounded: when `capacity` rows are queued, room is made by dropping, in this order, rows whose
//! message expiry has passed, then the oldest visitor events, then the oldest events of any kind.
//! Every drop is counted and logged. Attendance events are the last to go because parents are
//! waiting for them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::{params, Connection};
use tokio::sync::Notify;
use tracing::warn;

use crate::health::Health;
use crate::store::{Store, StoreError};

/// Higher survives longer when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Visitor = 0,
    Attendance = 1,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Short label for logs and user properties, e.g. "attendance".
    pub kind: String,
    pub priority: Priority,
    pub retain: bool,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    pub seq: i64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub kind: String,
    pub retain: bool,
    pub expires_ms: Option<i64>,
}

/// Inserts a message inside the caller's transaction, making room first if the outbox is full.
/// Returns the new row's sequence number and how many rows were dropped for it.
pub fn enqueue(conn: &Connection, msg: &NewMessage, capacity: u64, now_ms: i64) -> Result<(i64, u64), StoreError> {
    let mut dropped = 0u64;
    let depth: i64 = conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
    let mut excess = (depth + 1).saturating_sub(capacity as i64);
    if excess > 0 {
        let n = conn.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE expires_ms IS NOT NULL AND expires_ms <= ?1 ORDER BY seq LIMIT ?2)",
            params![now_ms, excess],
        )? as i64;
        dropped += n as u64;
        excess -= n;
    }
    for cond in ["priority = 0", "1 = 1"] {
        if excess > 0 {
            let n = conn.execute(
                &format!("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE {cond} ORDER BY seq LIMIT ?1)"),
                params![excess],
            )? as i64;
            dropped += n as u64;
            excess -= n;
        }
    }
    conn.execute(
        "INSERT INTO outbox (topic, payload, kind, priority, retain, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![msg.topic, msg.payload, msg.kind, msg.priority as i64, msg.retain, msg.created_ms, msg.expires_ms],
    )?;
    Ok((conn.last_insert_rowid(), dropped))
}

/// [`enqueue`] for a "latest wins" message (retained telemetry, discovery configs): first
/// deletes the rows still queued for the same topic and kind, so a broker away for a day does
/// not leave a day of stale telemetry to replay, only the newest. Returns the new row's sequence
/// number, the rows dropped for room, and the rows replaced.
///
/// A replaced row may already be in flight: the publisher then gets a PUBACK for a row that is
/// gone (acking it deletes nothing), and the new row, with a higher sequence number than its
/// cursor, is sent after it, so the broker still ends with the newest.
pub fn enqueue_latest(
    conn: &Connection,
    msg: &NewMessage,
    capacity: u64,
    now_ms: i64,
) -> Result<(i64, u64, u64), StoreError> {
    let replaced =
        conn.execute("DELETE FROM outbox WHERE topic = ?1 AND kind = ?2", params![msg.topic, msg.kind])? as u64;
    let (seq, dropped) = enqueue(conn, msg, capacity, now_ms)?;
    Ok((seq, dropped, replaced))
}

/// What one transaction queued: messages, and the older ones dropped to make room for them.
/// Counted where the messages are enqueued, reported once the transaction has committed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub queued: u64,
    pub dropped: u64,
}

impl Tally {
    /// [`enqueue`], counted.
    pub fn enqueue(
        &mut self,
        conn: &Connection,
        msg: &NewMessage,
        capacity: u64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let (seq, dropped) = enqueue(conn, msg, capacity, now_ms)?;
        self.queued += 1;
        self.dropped += dropped;
        Ok(seq)
    }

    /// [`enqueue_latest`], counted: a replaced row is neither a drop nor a new message.
    pub fn enqueue_latest(
        &mut self,
        conn: &Connection,
        msg: &NewMessage,
        capacity: u64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let (seq, dropped, _replaced) = enqueue_latest(conn, msg, capacity, now_ms)?;
        self.queued += 1;
        self.dropped += dropped;
        Ok(seq)
    }
}

/// The handle the rest of the daemon holds: queue, read in order, acknowledge.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<Store>,
    capacity: u64,
    health: Arc<Health>,
    /// Woken whenever something is queued, so the publisher need not poll.
    queued: Arc<Notify>,
}

impl Outbox {
    pub fn new(store: Arc<Store>, capacity: u64, health: Arc<Health>) -> Result<Self, StoreError> {
        let outbox = Self { store, capacity, health, queued: Arc::new(Notify::new()) };
        outbox.refresh_depth()?;
        Ok(outbox)
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    pub fn queued(&self) -> &Arc<Notify> {
        &self.queued
    }

    /// Call after a transaction that enqueued messages has committed.
    pub fn after_enqueue(&self, tally: Tally) {
        let Tally { queued: count, dropped } = tally;
        if dropped > 0 {
            self.health.outbox_dropped.fetch_add(dropped, Ordering::Relaxed);
            warn!(dropped, capacity = self.capacity, "outbox full: dropped the oldest expendable messages");
        }
        self.health.events_queued.fetch_add(count, Ordering::Relaxed);
        let _ = self.refresh_depth();
        self.queued.notify_one();
    }

    /// Queues one message in its own transaction (the tests' way in; the stages enqueue within
    /// their own transactions).
    #[cfg(test)]
    pub fn push(&self, msg: &NewMessage, now_ms: i64) -> Result<i64, StoreError> {
        let (seq, dropped) = {
            let mut conn = self.store.lock()?;
            let tx = conn.transaction()?;
            let r = enqueue(&tx, msg, self.capacity, now_ms)?;
            tx.commit()?;
            r
        };
        self.after_enqueue(Tally { queued: 1, dropped });
        Ok(seq)
    }

    /// Up to `limit` messages with sequence numbers above `after`, oldest first.
    pub fn pending_after(&self, after: i64, limit: usize) -> Result<Vec<QueuedMessage>, StoreError> {
        let conn = self.store.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, topic, payload, kind, retain, expires_ms FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(QueuedMessage {
                seq: r.get(0)?,
                topic: r.get(1)?,
                payload: r.get(2)?,
                kind: r.get(3)?,
                retain: r.get(4)?,
                expires_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The broker has the message: forget it.
    pub fn ack(&self, seq: i64) -> Result<(), StoreError> {
        let deleted = self.store.lock()?.execute("DELETE FROM outbox WHERE seq = ?1", params![seq])? as u64;
        // Counting the table on every PUBACK would make draining a long backlog quadratic;
        // the count is refreshed exactly whenever something is queued.
        let _ = self
            .health
            .outbox_depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d.saturating_sub(deleted)));
        Ok(())
    }

    /// Drops a message that can no longer be delivered usefully (its expiry passed while queued).
    pub fn discard_expired(&self, seq: i64) -> Result<(), StoreError> {
        self.ack(seq)?;
        self.health.outbox_dropped.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn depth(&self) -> Result<u64, StoreError> {
        let n: i64 = self.store.lock()?.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn refresh_depth(&self) -> Result<(), StoreError> {
        let d = self.depth()?;
        self.health.outbox_depth.store(d, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: &str, priority: Priority, expires_ms: Option<i64>) -> NewMessage {
        NewMessage {
            topic: format!("t/{kind}"),
            payload: kind.as_bytes().to_vec(),
            kind: kind.into(),
            priority,
            retain: false,
            created_ms: 0,
            expires_ms,
        }
    }

    fn outbox(capacity: u64) -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("k.db")).expect("open"));
        let ob = Outbox::new(store, capacity, Arc::new(Health::default())).expect("outbox");
        (dir, ob)
    }

    #[test]
    fn keeps_order_until_acked_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.db");
        {
            let ob = Outbox::new(Arc::new(Store::open(&path).expect("open")), 10, Arc::new(Health::default()))
                .expect("outbox");
            for i in 0..3 {
                ob.push(&msg(&format!("a{i}"), Priority::Attendance, None), 0).expect("push");
            }
            let first = ob.pending_after(0, 10).expect("pending")[0].seq;
            ob.ack(first).expect("ack");
        }
        let ob = Outbox::new(Arc::new(Store::open(&path).expect("reopen")), 10, Arc::new(Health::default()))
            .expect("outbox");
        let kinds: Vec<String> = ob.pending_after(0, 10).expect("pending").into_iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["a1", "a2"]);
    }

    /// While the broker is away, telemetry does not pile up: each new one replaces the one
    /// still queued for its topic; events and other topics stay queued, in order.
    #[test]
    fn latest_wins_replaces_only_the_queued_row_of_its_topic_and_kind() {
        let (_d, ob) = outbox(100);
        let telemetry = |n: u8| NewMessage { payload: vec![n], ..msg("air-telemetry", Priority::Visitor, None) };
        let latest = |m: &NewMessage| {
            let mut conn = ob.store.lock().expect("lock");
            let tx = conn.transaction().expect("tx");
            let mut tally = Tally::default();
            tally.enqueue_latest(&tx, m, ob.capacity, 0).expect("enqueue");
            tx.commit().expect("commit");
            drop(conn);
            ob.after_enqueue(tally);
        };
        ob.push(&msg("att", Priority::Attendance, None), 0).expect("push");
        for n in 0..50 {
            latest(&telemetry(n));
        }
        let other = NewMessage { topic: "t/other".into(), ..telemetry(7) };
        latest(&other);
        ob.push(&msg("air", Priority::Attendance, None), 0).expect("push");
        latest(&telemetry(50));
        let rows: Vec<(String, String, Vec<u8>)> =
            ob.pending_after(0, 100).expect("pending").into_iter().map(|m| (m.kind, m.topic, m.payload)).collect();
        assert_eq!(
            rows,
            [
                ("att".to_string(), "t/att".to_string(), b"att".to_vec()),
                ("air-telemetry".into(), "t/other".into(), vec![7]),
                ("air".into(), "t/air".into(), b"air".to_vec()),
                ("air-telemetry".into(), "t/air-telemetry".into(), vec![50]),
            ]
        );
        assert_eq!(ob.depth().expect("depth"), 4);
        assert_eq!(ob.health.outbox_depth.load(Ordering::Relaxed), 4);
        assert_eq!(ob.health.outbox_dropped.load(Ordering::Relaxed), 0, "a replaced row is not a drop");
    }

    /// A replaced row that the publisher already sent: its PUBACK finds nothing to delete, and
    /// the newer row is still after the publisher's cursor.
    #[test]
    fn replacing_a_row_in_flight_keeps_the_newer_one_after_the_cursor() {
        let (_d, ob) = outbox(100);
        let t = |n: u8| NewMessage { payload: vec![n], ..msg("air-telemetry", Priority::Visitor, None) };
        let first = ob.push(&t(1), 0).expect("push");
        let cursor = ob.pending_after(0, 1).expect("pending")[0].seq; // sent, awaiting PUBACK
        let conn = ob.store.lock().expect("lock");
        let (second, _, replaced) = enqueue_latest(&conn, &t(2), 100, 0).expect("enqueue");
        drop(conn);
        assert_eq!((replaced, cursor), (1, first));
        ob.ack(first).expect("a late PUBACK for the replaced row");
        let after: Vec<(i64, Vec<u8>)> =
            ob.pending_after(cursor, 10).expect("pending").into_iter().map(|m| (m.seq, m.payload)).collect();
        assert_eq!(after, [(second, vec![2])]);
    }

    #[test]
    fn full_outbox_drops_expired_then_visitors_then_oldest() {
        let (_d, ob) = outbox(3);
        ob.push(&msg("att-old", Priority::Attendance, None), 0).expect("push");
        ob.push(&msg("vis", Priority::Visitor, None), 0).expect("push");
        ob.push(&msg("att-expired", Priority::Attendance, Some(50)), 0).expect("push");
        ob.push(&msg("att-new1", Priority::Attendance, None), 100).expect("push"); // drops the expired one
        ob.push(&msg("att-new2", Priority::Attendance, None), 100).expect("push"); // drops the visitor
        ob.push(&msg("att-new3", Priority::Attendance, None), 100).expect("push"); // drops the oldest
        let kinds: Vec<String> = ob.pending_after(0, 10).expect("pending").into_iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["att-new1", "att-new2", "att-new3"]);
        assert_eq!(ob.health.outbox_dropped.load(Ordering::Relaxed), 3);
        assert_eq!(ob.depth().expect("depth"), 3);
    }
}

//! The event stage: settled sightings in, durable events out. An enrolled person's sighting goes
//! through the attendance book; the resulting arrival or departure is queued in the outbox in
//! the same transaction. An unknown face is a visitor event.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tracing::{error, info, info_span, warn};

use dolbom_contract::{
    self as contract, AttendanceEvent, AttendanceKind, CheckInMethod, PersonRef, TemperatureStatus, VisitorEvent,
};

use crate::alerts::{AlertContext, NewAlert};
use crate::attendance::{self, AttendancePolicy};
use crate::disk::DiskWatch;
use crate::outbox::{NewMessage, Outbox, Priority, Tally};
use crate::screening::decision::{Decision, NotMeasured, Screening, Site as ReadSite};
use crate::site::Site;
use crate::store::StoreError;
use crate::vision::{Sighting, Who};

pub struct EventStage {
    pub site: Site,
    pub policy: AttendancePolicy,
    pub outbox: Outbox,
    /// How long an event stays worth delivering (MQTT v5 message expiry).
    pub expiry_ms: i64,
    pub alerts: AlertContext,
    /// Fever screening runs on this kiosk: a check-in without a face is then "not measured",
    /// not "screening off".
    pub screening_on: bool,
    pub disk: Arc<DiskWatch>,
    /// Sightings held in memory at most while they cannot be written.
    pub waiting_capacity: usize,
    /// The door screen, told each event once it is recorded.
    pub door: Option<crate::door::DoorHandle>,
}

/// How often sightings waiting for the disk are tried again when no new one comes.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// How often open re-measures are checked against `fever.settle_within_mins`.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);

impl EventStage {
    /// Records sightings in the order they come. One that cannot be written for a reason that
    /// passes (the state disk below its reserve or full, an I/O error, a busy database) waits
    /// in memory with everything behind it, and all go in, in order and with their own times,
    /// when the disk takes them again: nothing is lost silently, nothing overtakes.
    pub async fn run(self, mut sightings: mpsc::Receiver<Sighting>) {
        let stage = Arc::new(self);
        let health = stage.outbox.health().clone();
        let mut waiting: VecDeque<Sighting> = VecDeque::new();
        let mut open = true;
        let mut retry = tokio::time::interval(RETRY_EVERY);
        // The watchdog's sign of life, also while nobody walks up for hours.
        let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
        let mut expiry = tokio::time::interval(EXPIRE_EVERY);
        while open || !waiting.is_empty() {
            health.beat("event");
            tokio::select! {
                s = sightings.recv(), if open => match s {
                    Some(s) => stage.hold(&mut waiting, s),
                    None => open = false,
                },
                _ = retry.tick(), if !waiting.is_empty() => {}
                _ = heartbeat.tick() => continue,
                _ = expiry.tick(), if stage.disk.has_room() => {
                    let s = stage.clone();
                    match tokio::task::spawn_blocking(move || s.expire_open()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => warn!(error = %e, "open re-measures not checked for their deadline; tried again"),
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(e) => warn!(error = %e, "checking re-measure deadlines was cancelled"),
                    }
                    continue;
                }
            }
            let stuck = stage.record_waiting(&mut waiting).await;
            health.events_waiting.store(waiting.len() as u64, Ordering::Relaxed);
            if stuck && !open {
                // Shutting down with the disk still full: nothing can keep these now.
                health.events_lost.fetch_add(waiting.len() as u64, Ordering::Relaxed);
                error!(lost = waiting.len(), "stopping with events the state disk could not take: lost");
                waiting.clear();
                health.events_waiting.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Queues a sighting behind those waiting, making room by giving up the oldest visitor (or
    /// else the oldest) when memory's share is used up.
    fn hold(&self, waiting: &mut VecDeque<Sighting>, s: Sighting) {
        if waiting.len() >= self.waiting_capacity {
            let at = waiting.iter().position(|w| matches!(w.who, Who::Visitor)).unwrap_or(0);
            if let Some(lost) = waiting.remove(at) {
                self.outbox.health().events_lost.fetch_add(1, Ordering::Relaxed);
                error!(
                    track = lost.track_id,
                    captured_ms = lost.captured_ms,
                    capacity = self.waiting_capacity,
                    "too many events waiting for the state disk: the oldest expendable one is lost"
                );
            }
        }
        waiting.push_back(s);
    }

    /// Records waiting sightings, oldest first, until one cannot be written; true when some are
    /// left waiting.
    async fn record_waiting(self: &Arc<Self>, waiting: &mut VecDeque<Sighting>) -> bool {
        while let Some(s) = waiting.pop_front() {
            if !self.disk.has_room() {
                waiting.push_front(s);
                return true;
            }
            // Each record is a transaction that waits for fsync: it runs on the blocking pool, so
            // the publisher and the command stage keep the runtime's two workers meanwhile.
            let track = s.track_id;
            let (stage, span) = (self.clone(), info_span!("event", track));
            match tokio::task::spawn_blocking(move || span.in_scope(|| (stage.record(&s), s))).await {
                Ok((Ok(_), _)) => {}
                Ok((Err(e), s)) if e.is_transient() => {
                    warn!(error = %e, track, waiting = waiting.len() + 1, "sighting not recorded yet; it waits in memory and is tried again");
                    waiting.push_front(s);
                    return true;
                }
                Ok((Err(e), _)) => {
                    self.outbox.health().events_lost.fetch_add(1, Ordering::Relaxed);
                    error!(error = %e, track, "sighting could not be recorded and never will be: lost");
                }
                // A panic while holding the database would leave it poisoned and the daemon a
                // zombie: let it end the process, so systemd restarts the kiosk.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => error!(error = %e, track, "recording a sighting was cancelled"),
            }
        }
        false
    }

    /// Records one sighting in one transaction: the attendance book, the attendance or visitor
    /// event, and a fever alert if the temperature is elevated. Returns the messages queued.
    pub fn record(&self, s: &Sighting) -> Result<Vec<NewMessage>, StoreError> {
        let at = Timestamp::from_millisecond(s.captured_ms).unwrap_or_else(|_| Timestamp::now());
        let ts = self.site.ts(s.captured_ms);
        let now_ms = Timestamp::now().as_millisecond();
        let (temperature_c, temperature_status) = match temperature_status(s.temperature.as_ref()) {
            (None, TemperatureStatus::ScreeningOff) if self.screening_on && s.method != CheckInMethod::Face => {
                (None, TemperatureStatus::NotMeasured)
            }
            measured => measured,
        };
        let temperature_site = temperature_site(s.temperature.as_ref());
        let mut conn = self.outbox.store().lock()?;
        let tx = conn.transaction()?;
        let mut queued = Vec::new();
        let mut tally = Tally::default();
        let mut raised = false;
        // What the door screen says once the transaction is in.
        let mut door_news = None;
        let person = match &s.who {
            Who::Person { id, role, .. } => Some(PersonRef { id: id.clone(), role: *role }),
            Who::Visitor => None,
        };
        match &s.who {
            Who::Person { id, role, confidence } => {
                // How well a face is still recognised: a tag or PIN says nothing about that.
                if s.method == CheckInMethod::Face {
                    crate::recognition::record(&tx, id, *confidence, s.captured_ms)?;
                }
                let day = attendance::day_of(at, &self.site.tz);
                let who = PersonRef { id: id.clone(), role: *role };
                // A later measured reading settles an open re-measure, also when the attendance
                // cooldown makes this sighting no event of its own.
                if let Some(msg) = self.settle_open(&tx, &who, &day, s)? {
                    queued.push(msg);
                }
                if let Some(kind) = attendance::record_sighting(&tx, &self.policy, id, at)? {
                    let event = AttendanceEvent {
                        schema: contract::ATTENDANCE_SCHEMA.into(),
                        event_id: contract::new_event_id(),
                        center: self.site.center.clone(),
                        kiosk: self.site.kiosk.clone(),
                        ts: ts.clone(),
                        kind,
                        person: PersonRef { id: id.clone(), role: *role },
                        confidence: (confidence * 1000.0).round() / 1000.0,
                        temperature_c,
                        temperature_status,
                        temperature_site,
                        method: s.method,
                    };
                    info!(event_id = %event.event_id, person = %id, kind = ?kind, method = ?s.method, ts = %event.ts, temperature = ?temperature_c, "attendance event");
                    door_news = Some((Some((id.as_str(), *role, kind)), temperature_status, temperature_c));
                    if kind == AttendanceKind::Arrival && temperature_status == TemperatureStatus::Remeasure {
                        // The parent's text waits for the settled value (or the deadline).
                        crate::remeasure::open(&tx, event.event_id, &who, &day, s.captured_ms)?;
                    }
                    queued.push(self.message(
                        self.site.topics.attendance(),
                        "attendance",
                        Priority::Attendance,
                        &event,
                        s.captured_ms,
                    ));
                }
            }
            Who::Visitor => {
                let event = VisitorEvent {
                    schema: contract::VISITOR_SCHEMA.into(),
                    event_id: contract::new_event_id(),
                    center: self.site.center.clone(),
                    kiosk: self.site.kiosk.clone(),
                    ts: ts.clone(),
                    track_id: s.track_id,
                    temperature_c,
                    temperature_status,
                    temperature_site,
                };
                info!(event_id = %event.event_id, ts = %event.ts, temperature = ?temperature_c, "visitor event");
                door_news = Some((None, temperature_status, temperature_c));
                queued.push(self.message(
                    self.site.topics.visitor(),
                    "visitor",
                    Priority::Visitor,
                    &event,
                    s.captured_ms,
                ));
            }
        }
        if let Some(Decision::Measured { celsius, screening: Screening::Elevated, .. }) = s.temperature {
            // One alert per person per visit; a visitor is their own visit.
            let subject =
                person.as_ref().map_or_else(|| format!("visitor:{}:{}", s.captured_ms, s.track_id), |p| p.id.clone());
            let day = attendance::day_of(at, &self.site.tz);
            let new = NewAlert {
                subject: subject.clone(),
                day,
                person: person.clone(),
                temperature_c: celsius,
                at_ms: s.captured_ms,
            };
            if let Some(alert) = self.alerts.raise(&tx, new, now_ms, &mut tally)? {
                raised = true;
                queued.push(self.alerts.fever_message(&alert, person, s.track_id, celsius, s.captured_ms, false));
            }
        }
        for msg in &queued {
            tally.enqueue(&tx, msg, self.outbox.capacity(), now_ms)?;
        }
        tx.commit()?;
        if raised {
            crate::alerts::refresh_active_count(&conn, self.outbox.health());
        }
        drop(conn);
        self.outbox.after_enqueue(tally);
        match (&self.door, door_news) {
            (Some(door), Some((Some((id, role, kind)), status, celsius))) => {
                door.attendance(id, role, kind, status, celsius)
            }
            (Some(door), Some((None, status, _))) => door.tell(crate::door::DoorNews::Visitor { status }),
            _ => {}
        }
        Ok(queued)
    }

    /// Settles the person's open re-measure of `day` with this sighting's reading, if it is a
    /// measured normal or elevated one; the `event/temperature` message to queue.
    fn settle_open(
        &self,
        conn: &rusqlite::Connection,
        who: &PersonRef,
        day: &str,
        s: &Sighting,
    ) -> Result<Option<NewMessage>, StoreError> {
        let Some(Decision::Measured { celsius, screening, .. }) = s.temperature else { return Ok(None) };
        let status = match screening {
            Screening::Normal => TemperatureStatus::Normal,
            Screening::Elevated => TemperatureStatus::Elevated,
            Screening::Remeasure => return Ok(None),
        };
        let Some(open) = crate::remeasure::find_open(conn, &who.id, day)? else { return Ok(None) };
        let settling = crate::remeasure::Settling {
            celsius,
            status,
            site: temperature_site(s.temperature.as_ref()),
            method: contract::SettleMethod::Kiosk,
            by: None,
            at_ms: s.captured_ms,
        };
        Ok(crate::remeasure::settle(conn, &self.alerts, &open, &settling)?.map(|(_, msg)| msg))
    }

    /// Closes the re-measures nobody settled in time, each with its `event/temperature`.
    fn expire_open(&self) -> Result<usize, StoreError> {
        let now_ms = Timestamp::now().as_millisecond();
        let mut tally = Tally::default();
        let expired = crate::remeasure::expire(&mut *self.outbox.store().lock()?, &self.alerts, now_ms, &mut tally)?;
        self.outbox.after_enqueue(tally);
        Ok(expired.len())
    }

    fn message(
        &self,
        topic: String,
        kind: &str,
        priority: Priority,
        payload: &impl serde::Serialize,
        captured_ms: i64,
    ) -> NewMessage {
        NewMessage {
            topic,
            // Serialising these plain structs cannot fail; an empty payload would be caught by the schema tests.
            payload: serde_json::to_vec(payload).unwrap_or_default(),
            kind: kind.into(),
            priority,
            retain: false,
            created_ms: captured_ms,
            expires_ms: Some(captured_ms + self.expiry_ms),
        }
    }
}

/// Where a measured temperature was read.
pub fn temperature_site(d: Option<&Decision>) -> Option<contract::TemperatureSite> {
    match d {
        Some(Decision::Measured { site: ReadSite::Canthus, .. }) => Some(contract::TemperatureSite::Canthus),
        Some(Decision::Measured { site: ReadSite::Forehead, .. }) => Some(contract::TemperatureSite::Forehead),
        _ => None,
    }
}

/// A screening decision as the payloads report it: the reading, and what it means.
pub fn temperature_status(d: Option<&Decision>) -> (Option<f32>, TemperatureStatus) {
    match d {
        None => (None, TemperatureStatus::ScreeningOff),
        Some(Decision::Measured { celsius, screening, .. }) => (
            Some(*celsius),
            match screening {
                Screening::Normal => TemperatureStatus::Normal,
                Screening::Remeasure => TemperatureStatus::Remeasure,
                Screening::Elevated => TemperatureStatus::Elevated,
            },
        ),
        Some(Decision::NotMeasured(why)) => (
            None,
            match why {
                NotMeasured::TooFar => TemperatureStatus::TooFar,
                NotMeasured::NotFrontal => TemperatureStatus::NotFrontal,
                NotMeasured::OutOfView => TemperatureStatus::OutOfView,
                NotMeasured::NoThermal => TemperatureStatus::NoThermal,
                NotMeasured::SensorFault => TemperatureStatus::SensorFault,
                NotMeasured::Implausible => TemperatureStatus::Implausible,
                NotMeasured::Inconsistent => TemperatureStatus::Inconsistent,
                NotMeasured::ScreeningOff => TemperatureStatus::ScreeningOff,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use crate::store::Store;
    use dolbom_contract::Role;

    struct Rig {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        health: Arc<Health>,
        disk: Arc<DiskWatch>,
        tx: mpsc::Sender<Sighting>,
        stage: tokio::task::JoinHandle<()>,
    }

    fn rig(waiting_capacity: usize) -> Rig {
        rig_with(waiting_capacity, false)
    }

    fn rig_with(waiting_capacity: usize, screening_on: bool) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("k.db")).expect("store"));
        let health = Arc::new(Health::default());
        let outbox = Outbox::new(store.clone(), 1000, health.clone()).expect("outbox");
        let site =
            crate::site::SiteConfig { center_id: "c".into(), kiosk_id: "k".into(), timezone: "Asia/Seoul".into() }
                .build()
                .expect("site");
        let policy = crate::attendance::AttendanceConfig::default().build(site.tz.clone()).expect("policy");
        let disk = Arc::new(DiskWatch::new(dir.path(), 1));
        let stage = EventStage {
            alerts: AlertContext {
                site: site.clone(),
                staff: Vec::new(),
                capacity: 1000,
                threshold_c: 37.5,
                settle_within_ms: 1_800_000,
                expiry_ms: 3_600_000,
            },
            site,
            policy,
            outbox,
            expiry_ms: 3_600_000,
            screening_on,
            disk: disk.clone(),
            waiting_capacity,
            door: None,
        };
        let (tx, rx) = mpsc::channel(16);
        let stage = tokio::spawn(stage.run(rx));
        Rig { _dir: dir, store, health, disk, tx, stage }
    }

    fn visitor(track_id: u64, captured_ms: i64) -> Sighting {
        Sighting { track_id, captured_ms, who: Who::Visitor, temperature: None, method: CheckInMethod::Face }
    }

    fn child(id: &str, captured_ms: i64) -> Sighting {
        Sighting {
            track_id: 99,
            captured_ms,
            who: Who::Person { id: id.into(), role: Role::Child, confidence: 0.9 },
            temperature: None,
            method: CheckInMethod::Face,
        }
    }

    /// (kind, captured time) of every queued event, in outbox order.
    fn queued(store: &Store) -> Vec<(String, String)> {
        let conn = store.lock().expect("lock");
        let mut stmt = conn.prepare("SELECT kind, payload FROM outbox ORDER BY seq").expect("prepare");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .map(|(kind, p)| {
                let v: serde_json::Value = serde_json::from_slice(&p).expect("json");
                (kind, v["ts"].as_str().unwrap_or_default().to_string())
            });
        rows.collect()
    }

    async fn wait(what: &str, mut f: impl FnMut() -> bool) {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    const T0: i64 = 1_764_633_600_000; // 2025-12-02 09:00 KST

    /// Below the reserve nothing is written: events wait, in order, and go in with their own
    /// capture times once there is room again. Before, a failed write lost the event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_wait_for_disk_space_and_go_in_in_order_with_their_own_times() {
        let r = rig(100);
        r.disk.set_reserve(u64::MAX);
        for (i, s) in [visitor(1, T0), child("minji", T0 + 1000), visitor(2, T0 + 2000)].into_iter().enumerate() {
            r.tx.send(s).await.expect("send");
            wait("the event to wait", || r.health.events_waiting.load(Ordering::Relaxed) == i as u64 + 1).await;
        }
        assert!(queued(&r.store).is_empty(), "nothing written below the reserve");
        assert!(r.health.summary().degraded);
        assert!(r.health.summary().reasons.iter().any(|x| x.contains("waiting in memory")), "{:?}", r.health.summary());

        r.disk.set_reserve(1);
        wait("the waiting events to go in", || {
            queued(&r.store).len() == 3 && r.health.events_waiting.load(Ordering::Relaxed) == 0
        })
        .await;
        let q = queued(&r.store);
        let kinds: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["visitor", "attendance", "visitor"]);
        assert_eq!(q[0].1, "2025-12-02T09:00:00+09:00", "the capture time, not the time of writing");
        assert_eq!(r.health.events_lost.load(Ordering::Relaxed), 0);
        drop(r.tx);
        r.stage.await.expect("stage ends when its input does");
    }

    /// A write that fails for a reason that passes (here the database refusing writes, as a
    /// full disk or an I/O error does) is tried again, and what came after waits behind it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_is_retried_in_order_not_lost() {
        let r = rig(100);
        r.store.lock().expect("lock").pragma_update(None, "query_only", true).expect("pragma");
        r.tx.send(visitor(1, T0)).await.expect("send");
        r.tx.send(visitor(2, T0 + 1000)).await.expect("send");
        wait("both to wait", || r.health.events_waiting.load(Ordering::Relaxed) == 2).await;
        r.store.lock().expect("lock").pragma_update(None, "query_only", false).expect("pragma");
        wait("both to go in after a retry", || queued(&r.store).len() == 2).await;
        let times: Vec<String> = queued(&r.store).into_iter().map(|(_, t)| t).collect();
        assert_eq!(times, ["2025-12-02T09:00:00+09:00", "2025-12-02T09:00:01+09:00"]);
        assert_eq!(r.health.events_lost.load(Ordering::Relaxed), 0);
    }

    /// A tag check-in is the same attendance event as a face's, with its method, no
    /// temperature, and the same book (a second touch within the cooldown is nothing new); it
    /// says nothing about how well the face is recognised. Its status tells "screening is off"
    /// from "screening is on, nothing measured".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tag_check_in_is_an_attendance_event_with_its_method_and_no_temperature() {
        for (screening_on, status) in [(false, "screening_off"), (true, "not_measured")] {
            let r = rig_with(100, screening_on);
            for at in [T0, T0 + 60_000] {
                let mut s = Sighting::checked_in("jiwoo".into(), Role::Child, CheckInMethod::Tag);
                s.captured_ms = at;
                r.tx.send(s).await.expect("send");
            }
            drop(r.tx);
            r.stage.await.expect("stage ends when its input does");
            let conn = r.store.lock().expect("lock");
            let payloads: Vec<serde_json::Value> = conn
                .prepare("SELECT payload FROM outbox ORDER BY seq")
                .expect("prepare")
                .query_map([], |row| row.get::<_, Vec<u8>>(0))
                .expect("query")
                .map(|p| serde_json::from_slice(&p.expect("row")).expect("json"))
                .collect();
            assert_eq!(payloads.len(), 1, "the second touch is inside the cooldown: {payloads:?}");
            let e = &payloads[0];
            assert_eq!((e["kind"].as_str(), e["method"].as_str()), (Some("arrival"), Some("tag")));
            assert_eq!(e["confidence"], 1.0);
            assert_eq!(e["temperature_c"], serde_json::Value::Null);
            assert_eq!(e["temperature_status"], status, "screening on: {screening_on}");
            assert!(e.get("temperature_site").is_none());
            let rows: i64 = conn.query_row("SELECT COUNT(*) FROM recognition", [], |r| r.get(0)).expect("count");
            assert_eq!(rows, 0, "a tag says nothing about the face");
        }
    }

    /// Memory is bounded too: past the capacity the oldest visitor goes first (parents wait
    /// for attendance), counted as lost; the attendance events all survive.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_its_capacity_the_oldest_visitor_is_given_up_and_counted() {
        let r = rig(10);
        r.disk.set_reserve(u64::MAX);
        let mut sent = 0;
        for i in 0..6 {
            r.tx.send(child(&format!("c{i}"), T0 + i * 1000)).await.expect("send");
            r.tx.send(visitor(i as u64, T0 + i * 1000 + 500)).await.expect("send");
            sent += 2;
        }
        wait("the memory to fill", || {
            r.health.events_waiting.load(Ordering::Relaxed) + r.health.events_lost.load(Ordering::Relaxed) == sent
        })
        .await;
        assert_eq!(r.health.events_lost.load(Ordering::Relaxed), 2);
        r.disk.set_reserve(1);
        wait("the rest to go in", || queued(&r.store).len() == 10).await;
        let kinds: Vec<String> = queued(&r.store).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds.iter().filter(|k| *k == "attendance").count(), 6, "{kinds:?}");
    }
}

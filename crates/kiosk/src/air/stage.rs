//! The air stage: indoor window means and outdoor observations in; the retained `telemetry/air`
//! and the `event/air` alerts out, through the outbox.
//!
//! It keeps the newest of each value with the time it was measured. Telemetry goes out every
//! `interval` and at once on a transition, "latest wins": a telemetry row still queued (broker
//! away) is replaced by the newer one, never piled up. Each pollutant with a daycare limit has
//! its [`LimitWatch`]; a transition becomes an event, queued durably with the telemetry in one
//! transaction, with a recommendation from the outdoor dust at that moment.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, info_span, warn, Instrument};

use dolbom_contract::{
    self as contract, AirEvent, AirEventState, AirTelemetry, DustGrade, DustReading, IndoorAir, OutdoorAirReport,
    Pollutant, Reading,
};

use super::limits::{AirLimitsConfig, LimitWatch, Transition};
use super::recommend::{recommend, OutdoorDustNow};
use super::{IndoorMeasurement, IndoorUpdate, OutdoorAir, AIR_CO2, AIR_PM};
use crate::health::Health;
use crate::outbox::{NewMessage, Outbox, Priority, Tally};
use crate::shutdown::Shutdown;
use crate::site::Site;
use crate::store::StoreError;

/// The outbox `kind` of the retained telemetry rows (one queued at most, see `enqueue_latest`).
pub const TELEMETRY_KIND: &str = "air-telemetry";
/// The outbox `kind` of air events.
pub const EVENT_KIND: &str = "air";

/// Air events waiting in memory at most while the state database refuses writes.
const WAITING_CAPACITY: usize = 64;

pub struct AirStage {
    pub site: Site,
    pub outbox: Outbox,
    pub limits: AirLimitsConfig,
    /// How often `telemetry/air` is published (also at once on every transition).
    pub interval: Duration,
    /// An indoor value older than this is absent from telemetry, and a gap this long restarts a
    /// limit's count. Three sensor windows is a good choice.
    pub stale_after: Duration,
    /// Outdoor services observe hourly and publish late: their values stay this long.
    pub outdoor_stale_after: Duration,
    /// How long an air event stays worth delivering (MQTT v5 message expiry).
    pub expiry_ms: i64,
    /// The door screen, told the indoor grade with each telemetry.
    pub door: Option<crate::door::DoorHandle>,
}

impl AirStage {
    /// A stage with the defaults: telemetry every 60 s, indoor values stale after 180 s (three
    /// one-minute windows), outdoor after 3 h.
    pub fn new(site: Site, outbox: Outbox, limits: AirLimitsConfig, expiry_ms: i64) -> Self {
        Self {
            site,
            outbox,
            limits,
            interval: Duration::from_secs(60),
            stale_after: Duration::from_secs(180),
            outdoor_stale_after: Duration::from_secs(3 * 3600),
            expiry_ms,
            door: None,
        }
    }

    /// Runs until shutdown (or until both inputs are gone).
    pub async fn run(
        self,
        indoor: mpsc::Receiver<IndoorUpdate>,
        outdoor: watch::Receiver<OutdoorAir>,
        shutdown: Shutdown,
    ) {
        self.run_until(indoor, outdoor, async move { shutdown.wait().await }).await
    }

    /// Runs until `stop` completes (or until both inputs are gone); what could not be queued by
    /// then is counted as lost.
    pub async fn run_until(
        self,
        mut indoor: mpsc::Receiver<IndoorUpdate>,
        mut outdoor: watch::Receiver<OutdoorAir>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let span = info_span!("air", center = %self.site.center, kiosk = %self.site.kiosk);
        let stage = Arc::new(self);
        async move {
            let health = stage.outbox.health().clone();
            let mut air = AirState::new(&stage.limits, stage.stale_after.as_millis() as i64);
            air.outdoor = outdoor.borrow_and_update().clone();
            match stage.load_excursions() {
                Ok(rows) if !rows.is_empty() => {
                    let names: Vec<&str> = rows.iter().map(|(p, _)| p.name()).collect();
                    info!(pollutants = ?names, "air limits exceeded before the restart; only their recovery is told now / 재시작 전부터 기준 초과 중, 회복만 알립니다");
                    air.restore(rows);
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot read the air limits exceeded before the restart; an excursion may be told twice / 재시작 전 초과 상태를 읽지 못함"),
            }
            let mut waiting: VecDeque<NewMessage> = VecDeque::new();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + stage.interval, stage.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The watchdog's sign of life, also when no sensor speaks for a while.
            let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
            tokio::pin!(stop);
            let (mut indoor_open, mut outdoor_open) = (true, true);
            while indoor_open || outdoor_open {
                health.beat(crate::notify::AIR);
                let publish = tokio::select! {
                    _ = &mut stop => break,
                    u = indoor.recv(), if indoor_open => match u {
                        Some(u) => {
                            let transitions = air.apply(&u);
                            for (p, t) in transitions {
                                let event = stage.event(p, t, &air);
                                match event.state {
                                    AirEventState::Exceeded => warn!(event_id = %event.event_id, pollutant = p.name(), value = event.value, limit = event.limit, "air limit exceeded / 실내 공기질 기준 초과: {}", event.recommendation.en),
                                    AirEventState::Recovered => info!(event_id = %event.event_id, pollutant = p.name(), value = event.value, "air recovered / 실내 공기질 회복"),
                                }
                                hold(&mut waiting, stage.event_message(&event, t), &health);
                            }
                            !waiting.is_empty()
                        }
                        None => {
                            indoor_open = false;
                            false
                        }
                    },
                    r = outdoor.changed(), if outdoor_open => {
                        match r {
                            Ok(()) => air.outdoor = outdoor.borrow_and_update().clone(),
                            Err(_) => outdoor_open = false,
                        }
                        false
                    }
                    _ = tick.tick() => true,
                    _ = heartbeat.tick() => false,
                };
                if publish {
                    let now_ms = Timestamp::now().as_millisecond();
                    let telemetry = stage.telemetry_message(&air, now_ms);
                    stage.write(&mut waiting, telemetry, air.excursions().to_vec(), now_ms).await;
                }
            }
            if !waiting.is_empty() {
                health.events_lost.fetch_add(waiting.len() as u64, Ordering::Relaxed);
                error!(lost = waiting.len(), "stopping with air events the state database would not take: lost / 저장하지 못한 공기질 이벤트 유실");
            }
        }
        .instrument(span)
        .await
    }

    /// Writes the waiting events and the telemetry in one transaction, on the blocking pool (it
    /// waits for fsync). On failure the events keep waiting; the telemetry is rebuilt next time.
    async fn write(
        self: &Arc<Self>,
        waiting: &mut VecDeque<NewMessage>,
        telemetry: NewMessage,
        excursions: Vec<(Pollutant, i64)>,
        now_ms: i64,
    ) {
        let events: Vec<NewMessage> = waiting.iter().cloned().collect();
        let stage = self.clone();
        let span = tracing::Span::current();
        let done = tokio::task::spawn_blocking(move || {
            span.in_scope(|| stage.enqueue(&events, &telemetry, &excursions, now_ms))
        })
        .await;
        match done {
            Ok(Ok(())) => waiting.clear(),
            Ok(Err(e)) => {
                warn!(error = %e, waiting = waiting.len(), "air telemetry not queued; events wait in memory and are tried again / 공기질 정보 저장 실패, 이벤트는 메모리에서 대기 후 재시도")
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => warn!(error = %e, "queueing air telemetry was cancelled / 공기질 정보 저장 취소됨"),
        }
    }

    /// The events (each its own row), the telemetry (replacing any still queued), and the limits
    /// exceeded now, in one transaction: what was told and what is remembered never disagree.
    pub fn enqueue(
        &self,
        events: &[NewMessage],
        telemetry: &NewMessage,
        excursions: &[(Pollutant, i64)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.outbox.store().lock()?;
        let tx = conn.transaction()?;
        let mut tally = Tally::default();
        for e in events {
            tally.enqueue(&tx, e, self.outbox.capacity(), now_ms)?;
        }
        tx.execute("DELETE FROM air_excursions", [])?;
        for (p, exceeded_ms) in excursions {
            tx.execute(
                "INSERT INTO air_excursions (pollutant, exceeded_ms) VALUES (?1, ?2)",
                rusqlite::params![p.name(), exceeded_ms],
            )?;
        }
        tally.enqueue_latest(&tx, telemetry, self.outbox.capacity(), now_ms)?;
        tx.commit()?;
        drop(conn);
        self.outbox.after_enqueue(tally);
        Ok(())
    }

    /// The limits exceeded when the kiosk last wrote (before a restart).
    fn load_excursions(&self) -> Result<Vec<(Pollutant, i64)>, StoreError> {
        let conn = self.outbox.store().lock()?;
        let mut stmt = conn.prepare("SELECT pollutant, exceeded_ms FROM air_excursions")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, at_ms) = row?;
            // A pollutant this version does not know is left alone.
            if let Some(p) = Pollutant::ALL.into_iter().find(|p| p.name() == name) {
                out.push((p, at_ms));
            }
        }
        Ok(out)
    }

    fn event(&self, p: Pollutant, t: Transition, air: &AirState) -> AirEvent {
        let (state, since_ms, at_ms, value) = match t {
            Transition::Exceeded { since_ms, at_ms, value } => (AirEventState::Exceeded, since_ms, at_ms, value),
            Transition::Recovered { since_ms, at_ms, value } => (AirEventState::Recovered, since_ms, at_ms, value),
        };
        let outdoor = self.outdoor_dust_now(air, at_ms);
        AirEvent {
            schema: contract::AIR_SCHEMA.into(),
            event_id: contract::new_event_id(),
            center: self.site.center.clone(),
            kiosk: self.site.kiosk.clone(),
            ts: self.site.ts(at_ms),
            pollutant: p,
            state,
            value: round1(value),
            limit: self.limits.limit(p),
            recover_below: round1(self.limits.recover_below(p)),
            unit: p.unit().into(),
            since: self.site.ts(since_ms),
            recommendation: recommend(p, state, value, outdoor),
        }
    }

    fn event_message(&self, event: &AirEvent, t: Transition) -> NewMessage {
        let at_ms = match t {
            Transition::Exceeded { at_ms, .. } | Transition::Recovered { at_ms, .. } => at_ms,
        };
        NewMessage {
            topic: self.site.topics.air_event(),
            // Serialising these plain structs cannot fail.
            payload: serde_json::to_vec(event).unwrap_or_default(),
            kind: EVENT_KIND.into(),
            // An air alert outlasts visitor events when the outbox is full.
            priority: Priority::Attendance,
            retain: false,
            created_ms: at_ms,
            expires_ms: Some(at_ms + self.expiry_ms),
        }
    }

    fn outdoor_dust_now(&self, air: &AirState, now_ms: i64) -> OutdoorDustNow {
        match &air.outdoor.dust {
            Some(d) if now_ms - d.observed_ms <= self.outdoor_stale_after.as_millis() as i64 => {
                OutdoorDustNow { pm10: d.pm10, pm25: d.pm25 }
            }
            _ => OutdoorDustNow::default(),
        }
    }

    /// The telemetry payload at `now_ms`: every value fresh enough, with its age.
    pub fn telemetry(&self, air: &AirState, now_ms: i64) -> AirTelemetry {
        let fresh = |l: &Option<Latest>| l.filter(|l| now_ms - l.at_ms <= air.stale_ms);
        let reading = |l: Option<Latest>| l.map(|l| self.reading(l.value, l.at_ms, now_ms));
        let dust = |l: Option<Latest>, grade: fn(f32) -> Option<DustGrade>| {
            l.and_then(|l| self.dust(l.value, l.at_ms, now_ms, grade))
        };
        let i = &air.indoor;
        let indoor = IndoorAir {
            pm1: reading(fresh(&i.pm1)),
            pm25: dust(fresh(&i.pm25), DustGrade::pm25),
            pm10: dust(fresh(&i.pm10), DustGrade::pm10),
            co2_ppm: reading(fresh(&i.co2)),
            temperature_c: reading(fresh(&i.temperature)),
            humidity_pct: reading(fresh(&i.humidity)),
            hcho_ug_m3: reading(fresh(&i.hcho)),
        };
        let outdoor_max = self.outdoor_stale_after.as_millis() as i64;
        let mut outdoor = OutdoorAirReport::default();
        if let Some(d) = air.outdoor.dust.as_ref().filter(|d| now_ms - d.observed_ms <= outdoor_max) {
            outdoor.station = Some(d.station.clone());
            outdoor.pm10 = d.pm10.and_then(|v| self.dust(v, d.observed_ms, now_ms, DustGrade::pm10));
            outdoor.pm25 = d.pm25.and_then(|v| self.dust(v, d.observed_ms, now_ms, DustGrade::pm25));
        }
        if let Some(w) = air.outdoor.weather.as_ref().filter(|w| now_ms - w.observed_ms <= outdoor_max) {
            outdoor.temperature_c = w.temperature_c.map(|v| self.reading(v, w.observed_ms, now_ms));
            outdoor.humidity_pct = w.humidity_pct.map(|v| self.reading(v, w.observed_ms, now_ms));
        }
        AirTelemetry {
            schema: contract::AIR_TELEMETRY_SCHEMA.into(),
            center: self.site.center.clone(),
            kiosk: self.site.kiosk.clone(),
            ts: self.site.ts(now_ms),
            indoor,
            outdoor,
        }
    }

    fn telemetry_message(&self, air: &AirState, now_ms: i64) -> NewMessage {
        let telemetry = self.telemetry(air, now_ms);
        if let Some(door) = &self.door {
            // The worse of the two dust grades, as the idle screen shows it.
            let grade =
                [&telemetry.indoor.pm25, &telemetry.indoor.pm10].into_iter().flatten().map(|d| d.grade.code).max();
            door.tell(crate::door::DoorNews::Air(grade));
        }
        NewMessage {
            topic: self.site.topics.air_telemetry(),
            payload: serde_json::to_vec(&telemetry).unwrap_or_default(),
            kind: TELEMETRY_KIND.into(),
            // The first to go when the outbox is full: the next one replaces it anyway.
            priority: Priority::Visitor,
            retain: true,
            created_ms: now_ms,
            expires_ms: None,
        }
    }

    fn reading(&self, value: f32, at_ms: i64, now_ms: i64) -> Reading {
        Reading { value: round1(value), at: self.site.ts(at_ms), age_secs: age_secs(at_ms, now_ms) }
    }

    fn dust(&self, value: f32, at_ms: i64, now_ms: i64, grade: fn(f32) -> Option<DustGrade>) -> Option<DustReading> {
        let grade = grade(value)?;
        Some(DustReading {
            value: round1(value),
            at: self.site.ts(at_ms),
            age_secs: age_secs(at_ms, now_ms),
            grade: grade.label(),
        })
    }
}

/// Keeps an event to write, giving up the oldest when memory's share is used up.
fn hold(waiting: &mut VecDeque<NewMessage>, msg: NewMessage, health: &Health) {
    if waiting.len() >= WAITING_CAPACITY {
        waiting.pop_front();
        health.events_lost.fetch_add(1, Ordering::Relaxed);
        error!(capacity = WAITING_CAPACITY, "too many air events waiting for the state database: the oldest is lost / 대기 중인 공기질 이벤트가 너무 많아 가장 오래된 것을 버림");
    }
    waiting.push_back(msg);
}

fn age_secs(at_ms: i64, now_ms: i64) -> u64 {
    (now_ms - at_ms).max(0) as u64 / 1000
}

/// Window means carry no more precision than a tenth.
fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

/// A value and when it was measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub value: f32,
    pub at_ms: i64,
}

/// The newest indoor values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndoorLatest {
    pub pm1: Option<Latest>,
    pub pm25: Option<Latest>,
    pub pm10: Option<Latest>,
    pub hcho: Option<Latest>,
    pub temperature: Option<Latest>,
    pub humidity: Option<Latest>,
    pub co2: Option<Latest>,
}

/// What the stage knows: the newest values, and each limit's watch.
#[derive(Debug, Clone)]
pub struct AirState {
    pub indoor: IndoorLatest,
    pub outdoor: OutdoorAir,
    watches: Vec<(Pollutant, LimitWatch)>,
    /// The limits exceeded now, with when each alert was raised.
    excursions: Vec<(Pollutant, i64)>,
    stale_ms: i64,
}

impl AirState {
    pub fn new(limits: &AirLimitsConfig, stale_ms: i64) -> Self {
        let watches = Pollutant::ALL.iter().map(|&p| (p, limits.watch(p, stale_ms))).collect();
        Self {
            indoor: IndoorLatest::default(),
            outdoor: OutdoorAir::default(),
            watches,
            excursions: Vec::new(),
            stale_ms,
        }
    }

    /// The limits exceeded now, with when each alert was raised.
    pub fn excursions(&self) -> &[(Pollutant, i64)] {
        &self.excursions
    }

    /// Limits exceeded before a restart: their watches wait for the recovery only.
    pub fn restore(&mut self, excursions: Vec<(Pollutant, i64)>) {
        for &(p, _) in &excursions {
            if let Some(w) = self.watch(p) {
                w.restore_exceeded();
            }
        }
        self.excursions = excursions;
    }

    fn watch(&mut self, p: Pollutant) -> Option<&mut LimitWatch> {
        self.watches.iter_mut().find(|(q, _)| *q == p).map(|(_, w)| w)
    }

    /// Takes in one window; returns the transitions it completed.
    pub fn apply(&mut self, u: &IndoorUpdate) -> Vec<(Pollutant, Transition)> {
        let at_ms = u.at_ms;
        let latest = |v: f32| v.is_finite().then_some(Latest { value: v, at_ms });
        let mut values: Vec<(Pollutant, Option<f32>)> = Vec::new();
        match &u.measurement {
            IndoorMeasurement::Particles { pm1, pm25, pm10, hcho_ug_m3, temperature_c, humidity_pct } => {
                let i = &mut self.indoor;
                i.pm1 = latest(*pm1);
                i.pm25 = latest(*pm25);
                i.pm10 = latest(*pm10);
                i.hcho = hcho_ug_m3.and_then(latest);
                i.temperature = temperature_c.and_then(latest);
                i.humidity = humidity_pct.and_then(latest);
                values.extend([
                    (Pollutant::Pm25, Some(*pm25)),
                    (Pollutant::Pm10, Some(*pm10)),
                    (Pollutant::Hcho, *hcho_ug_m3),
                ]);
            }
            IndoorMeasurement::Co2 { ppm } => {
                self.indoor.co2 = latest(*ppm);
                values.push((Pollutant::Co2, Some(*ppm)));
            }
            // A warming sensor has no value now: its values go, and its counts restart.
            IndoorMeasurement::Warming if u.sensor == AIR_PM => {
                let i = &mut self.indoor;
                (i.pm1, i.pm25, i.pm10, i.hcho, i.temperature, i.humidity) = (None, None, None, None, None, None);
                values.extend([(Pollutant::Pm25, None), (Pollutant::Pm10, None), (Pollutant::Hcho, None)]);
            }
            IndoorMeasurement::Warming if u.sensor == AIR_CO2 => {
                self.indoor.co2 = None;
                values.push((Pollutant::Co2, None));
            }
            IndoorMeasurement::Warming => {}
        }
        let mut transitions = Vec::new();
        for (p, v) in values {
            let Some(w) = self.watch(p) else { continue };
            match v {
                Some(v) => transitions.extend(w.observe(at_ms, v).map(|t| (p, t))),
                None => w.interrupt(),
            }
        }
        for (p, t) in &transitions {
            self.excursions.retain(|(q, _)| q != p);
            if let Transition::Exceeded { at_ms, .. } = t {
                self.excursions.push((*p, *at_ms));
            }
        }
        transitions
    }
}

#[cfg(test)]
mod tests;

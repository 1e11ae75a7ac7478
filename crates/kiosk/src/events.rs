//! The event stage: settled sightings in, durable events out. An enrolled person's sighting goes
//! through the attendance book; the resulting arrival or departure is queued in the outbox in
//! the same transaction. An unknown face is a visitor event.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tracing::{error, info, info_span, warn};

use dolbom_contract::{
    self as contract, AttendanceEvent, CheckInMethod, FeverEvent, PersonRef, TemperatureStatus, VisitorEvent,
};

use crate::alerts::{AlertContext, NewAlert};
use crate::attendance::{self, AttendancePolicy};
use crate::outbox::{NewMessage, Outbox, Priority, Tally};
use crate::screening::decision::{Decision, NotMeasured, Screening};
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
    pub threshold_c: f32,
}

impl EventStage {
    pub async fn run(self, mut sightings: mpsc::Receiver<Sighting>) {
        // Each record is a transaction that waits for fsync: it runs on the blocking pool, so the
        // publisher and the command stage keep the runtime's two workers meanwhile. One sighting
        // at a time, in order.
        let stage = Arc::new(self);
        while let Some(s) = sightings.recv().await {
            let track = s.track_id;
            let (stage, span) = (stage.clone(), info_span!("event", track));
            match tokio::task::spawn_blocking(move || span.in_scope(|| stage.record(&s))).await {
                Ok(Ok(_)) => {}
                // The database is the kiosk's memory; if it fails, say so loudly, keep running.
                Ok(Err(e)) => error!(error = %e, track, "sighting could not be recorded"),
                // A panic while holding the database would leave it poisoned and the daemon a
                // zombie: let it end the process, so systemd restarts the kiosk.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => error!(error = %e, track, "recording a sighting was cancelled"),
            }
        }
    }

    /// Records one sighting in one transaction: the attendance book, the attendance or visitor
    /// event, and a fever alert if the temperature is elevated. Returns the messages queued.
    pub fn record(&self, s: &Sighting) -> Result<Vec<NewMessage>, StoreError> {
        let at = Timestamp::from_millisecond(s.captured_ms).unwrap_or_else(|_| Timestamp::now());
        let ts = self.site.ts(s.captured_ms);
        let now_ms = Timestamp::now().as_millisecond();
        let (temperature_c, temperature_status) = temperature_status(s.temperature.as_ref());
        let mut conn = self.outbox.store().lock()?;
        let tx = conn.transaction()?;
        let mut queued = Vec::new();
        let mut tally = Tally::default();
        let person = match &s.who {
            Who::Person { id, role, .. } => Some(PersonRef { id: id.clone(), role: *role }),
            Who::Visitor => None,
        };
        match &s.who {
            Who::Person { id, role, confidence } => {
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
                        method: CheckInMethod::Face,
                    };
                    info!(event_id = %event.event_id, person = %id, kind = ?kind, ts = %event.ts, temperature = ?temperature_c, "attendance event");
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
                };
                info!(event_id = %event.event_id, ts = %event.ts, temperature = ?temperature_c, "visitor event");
                queued.push(self.message(
                    self.site.topics.visitor(),
                    "visitor",
                    Priority::Visitor,
                    &event,
                    s.captured_ms,
                ));
            }
        }
        if let Some(Decision::Measured { celsius, screening: Screening::Elevated }) = s.temperature {
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
                let event = FeverEvent {
                    schema: contract::FEVER_SCHEMA.into(),
                    event_id: contract::new_event_id(),
                    center: self.site.center.clone(),
                    kiosk: self.site.kiosk.clone(),
                    ts: ts.clone(),
                    alert_id: alert.alert_id.clone(),
                    person,
                    track_id: s.track_id,
                    temperature_c: celsius,
                    threshold_c: self.threshold_c,
                    message: contract::FEVER_MESSAGE.into(),
                };
                warn!(alert_id = %alert.alert_id, temperature = celsius, subject = %subject, "fever alert: {}", contract::FEVER_MESSAGE);
                queued.push(self.message(
                    self.site.topics.fever(),
                    "fever",
                    Priority::Attendance,
                    &event,
                    s.captured_ms,
                ));
            }
        }
        for msg in &queued {
            tally.enqueue(&tx, msg, self.outbox.capacity(), now_ms)?;
        }
        tx.commit()?;
        drop(conn);
        self.outbox.after_enqueue(tally);
        Ok(queued)
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

/// A screening decision as the payloads report it: the reading, and what it means.
pub fn temperature_status(d: Option<&Decision>) -> (Option<f32>, TemperatureStatus) {
    match d {
        None => (None, TemperatureStatus::ScreeningOff),
        Some(Decision::Measured { celsius, screening }) => (
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
                NotMeasured::Inconsistent => TemperatureStatus::Inconsistent,
                NotMeasured::ScreeningOff => TemperatureStatus::ScreeningOff,
            },
        ),
    }
}

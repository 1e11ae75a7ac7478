//! The event stage: settled sightings in, durable events out. An enrolled person's sighting goes
//! through the attendance book; the resulting arrival or departure is queued in the outbox in
//! the same transaction. An unknown face is a visitor event.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tracing::{error, info, info_span, Instrument};

use crate::attendance::{self, AttendancePolicy};
use crate::contract::{self, AttendanceEvent, PersonRef, Topics, VisitorEvent};
use crate::outbox::{self, NewMessage, Outbox, Priority};
use crate::store::StoreError;
use crate::vision::{Sighting, Who};

pub struct EventStage {
    pub center: String,
    pub kiosk: String,
    pub topics: Topics,
    pub policy: AttendancePolicy,
    pub outbox: Outbox,
    /// How long an event stays worth delivering (MQTT v5 message expiry).
    pub expiry_ms: i64,
}

impl EventStage {
    pub async fn run(self, mut sightings: mpsc::Receiver<Sighting>) {
        while let Some(s) = sightings.recv().await {
            let span = info_span!("event", track = s.track_id);
            let result = async { self.record(&s) }.instrument(span).await;
            if let Err(e) = result {
                // The database is the kiosk's memory; if it fails, say so loudly, keep running.
                error!(error = %e, track = s.track_id, "sighting could not be recorded");
            }
        }
    }

    fn tz(&self) -> &TimeZone {
        &self.policy.tz
    }

    /// Records one sighting; returns the message queued, if any.
    pub fn record(&self, s: &Sighting) -> Result<Option<NewMessage>, StoreError> {
        let at = Timestamp::from_millisecond(s.captured_ms).unwrap_or_else(|_| Timestamp::now());
        let now_ms = Timestamp::now().as_millisecond();
        let mut conn = self.outbox.store().lock()?;
        let tx = conn.transaction()?;
        let msg = match &s.who {
            Who::Person { id, role, confidence } => {
                let Some(kind) = attendance::record_sighting(&tx, &self.policy, id, at)? else {
                    return Ok(None);
                };
                let event = AttendanceEvent {
                    schema: contract::ATTENDANCE_SCHEMA.into(),
                    event_id: contract::new_event_id(),
                    center: self.center.clone(),
                    kiosk: self.kiosk.clone(),
                    ts: contract::rfc3339(at, self.tz()),
                    kind,
                    person: PersonRef { id: id.clone(), role: *role },
                    confidence: (confidence * 1000.0).round() / 1000.0,
                    temperature_c: None,
                    method: "face".into(),
                };
                info!(event_id = %event.event_id, person = %id, kind = ?kind, ts = %event.ts, "attendance event");
                self.message(self.topics.attendance(), "attendance", Priority::Attendance, &event, s.captured_ms)
            }
            Who::Visitor => {
                let event = VisitorEvent {
                    schema: contract::VISITOR_SCHEMA.into(),
                    event_id: contract::new_event_id(),
                    center: self.center.clone(),
                    kiosk: self.kiosk.clone(),
                    ts: contract::rfc3339(at, self.tz()),
                    track_id: s.track_id,
                    temperature_c: None,
                };
                info!(event_id = %event.event_id, ts = %event.ts, "visitor event");
                self.message(self.topics.visitor(), "visitor", Priority::Visitor, &event, s.captured_ms)
            }
        };
        let (_, dropped) = outbox::enqueue(&tx, &msg, self.outbox.capacity(), now_ms)?;
        tx.commit()?;
        drop(conn);
        self.outbox.after_enqueue(1, dropped);
        Ok(Some(msg))
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

/// Shared so the daemon can hand the same stage to tests.
pub type SharedEventStage = Arc<EventStage>;

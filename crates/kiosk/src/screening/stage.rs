//! The screening stage: temperature readings per track, taken while the vision stage tracks
//! faces, and settled tracks held until their fever decision is made.

use std::collections::HashMap;
use std::sync::Arc;

use dolbom_face::Detection;

use super::decision::{against_reference, decide, Decision, FeverConfig, NotMeasured, Reading};
use super::fusion::{measure, BlackbodyWatch};
use super::reference::PopulationReference;
use crate::health::{Health, SensorState, THERMAL};
use crate::sources::thermal::source::LatestFrame;

/// Temperature readings per track, and settled tracks waiting for their screening decision.
pub struct ScreeningStage<T> {
    pub fever: FeverConfig,
    pub latest: LatestFrame,
    pub max_age_ms: i64,
    pub max_yaw: f32,
    /// Where the thermal source reports its state (None in tests without one).
    pub health: Option<Arc<Health>>,
    /// Per track: when it was last read, the thermal frame it was read from, and the readings.
    readings: HashMap<u64, (i64, i64, Vec<Reading>)>,
    /// What waits for a decision: the track, its deadline, who it is (if known) and the caller's
    /// item (a settled track, for the vision stage; screening needs nothing else of it).
    pending: Vec<(u64, i64, Option<String>, T)>,
    /// The readings of this morning at this door; every measured decision is judged against it.
    pub reference: PopulationReference,
    /// Whether the blackbody is in view, decided over thermal frames.
    blackbody: BlackbodyWatch,
}

impl<T> ScreeningStage<T> {
    pub fn new(fever: FeverConfig, latest: LatestFrame, max_age_ms: i64, max_yaw: f32) -> Self {
        let reference = PopulationReference::new(fever.reference.clone());
        Self {
            fever,
            latest,
            max_age_ms,
            max_yaw,
            health: None,
            readings: HashMap::new(),
            pending: Vec::new(),
            reference,
            blackbody: BlackbodyWatch::default(),
        }
    }

    /// Reports frames the sensor sent but the plausibility check refused as `sensor_fault`.
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    fn sensor_faulty(&self) -> bool {
        self.health.as_ref().is_some_and(|h| h.sensor_state(THERMAL) == SensorState::Faulty)
    }

    /// One reading per face in this frame, from the newest thermal frame if it is fresh.
    pub fn observe(&mut self, now_ms: i64, detections: &[Detection], ids: &[u64]) {
        let frame = self.latest.lock().ok().and_then(|l| l.clone());
        let faulty = self.sensor_faulty();
        // Once per thermal frame, with every face in it: a face over the blackbody's box
        // disqualifies the frame for all of them.
        let blackbody_c = match &frame {
            Some(f) if (now_ms - f.mono_ms).abs() <= self.max_age_ms => {
                self.blackbody.update(f, detections, &self.fever)
            }
            _ => None,
        };
        for (det, id) in detections.iter().zip(ids) {
            let entry = self.readings.entry(*id).or_insert_with(|| (now_ms, i64::MIN, Vec::new()));
            entry.0 = now_ms;
            let (reading, source) = match &frame {
                // One reading per thermal frame: the camera runs faster than the sensor, and
                // "consistent readings" must come from different frames.
                Some(f) if f.mono_ms == entry.1 => continue,
                Some(f) if (now_ms - f.mono_ms).abs() <= self.max_age_ms => {
                    (measure(f, det, &self.fever, self.max_yaw, blackbody_c), f.mono_ms)
                }
                // No fresh frame: a faulty sensor's are held back by the plausibility check.
                _ if faulty => (Reading::NotMeasured(NotMeasured::SensorFault), entry.1),
                _ => (Reading::NotMeasured(NotMeasured::NoThermal), entry.1),
            };
            entry.1 = source;
            if entry.2.len() >= 64 {
                entry.2.remove(0);
            }
            entry.2.push(reading);
        }
        // Forget tracks long gone.
        let pending: Vec<u64> = self.pending.iter().map(|(id, ..)| *id).collect();
        self.readings.retain(|id, (last, _, _)| now_ms - *last < 30_000 || pending.contains(id));
    }

    /// True while a settled track waits for its decision (the vision stage must keep looking).
    pub fn awaiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Holds a track settled at `settled_ms` until its screening is decided. `who`: the person
    /// it was recognised as (None: a visitor), so a re-measured child counts once in the reference.
    pub fn hold(&mut self, track_id: u64, settled_ms: i64, who: Option<String>, item: T) {
        let deadline = settled_ms + self.fever.decision_timeout_ms;
        self.pending.push((track_id, deadline, who, item));
    }

    /// Held items whose screening is decided (all of them when `flush`).
    pub fn ready(&mut self, now_ms: i64, flush: bool) -> Vec<(T, Decision)> {
        let mut out = Vec::new();
        let mut i = 0;
        let ambient_c = self.latest.lock().ok().and_then(|l| l.as_ref().and_then(|f| f.ambient_c));
        while i < self.pending.len() {
            let (track_id, deadline, ..) = &self.pending[i];
            let readings = self.readings.get(track_id).map(|(_, _, r)| r.as_slice()).unwrap_or(&[]);
            match decide(readings, flush || now_ms >= *deadline, &self.fever) {
                Some(d) => {
                    let (track, _, who, item) = self.pending.remove(i);
                    let d = against_reference(d, &mut self.reference, now_ms, ambient_c, who.as_deref(), &self.fever);
                    tracing::debug!(track, reference = ?self.reference.stats(), decision = ?d, "screened");
                    out.push((item, d));
                }
                None => i += 1,
            }
        }
        out
    }
}

//! What the daemon knows about its own health: written by every stage, read by the status
//! publisher, the status file and `dolbom status`. Serial sensors report under their own name
//! (a sensor is "off" until it first reports), so a new sensor needs no new field here.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

pub use dolbom_contract::{CameraState, HealthSummary, SensorState, SensorStatus};

use crate::disk::DiskWatch;

/// What a serial decoder took in and threw away, as each sensor reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub frames: u64,
    pub checksum_errors: u64,
    pub malformed: u64,
    pub bytes_skipped: u64,
}

/// The thermal array's name in the registry (its fields in the status payload come from it).
pub const THERMAL: &str = "thermal";

/// One sensor's last reported state and decoder counters.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorHealth {
    pub state: SensorState,
    pub error: Option<String>,
    pub stats: DecoderStats,
}

impl Default for SensorHealth {
    fn default() -> Self {
        Self { state: SensorState::Off, error: None, stats: DecoderStats::default() }
    }
}

/// Shared, lock-light health counters and states.
#[derive(Debug)]
pub struct Health {
    camera: Mutex<(CameraState, Option<String>)>,
    mqtt_protocol: Mutex<Option<String>>,
    sensors: Mutex<BTreeMap<&'static str, SensorHealth>>,
    pub broker_connected: AtomicBool,
    pub outbox_depth: AtomicU64,
    pub outbox_dropped: AtomicU64,
    pub frames_read: AtomicU64,
    pub frames_processed: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub active_tracks: AtomicU64,
    pub events_queued: AtomicU64,
    pub events_published: AtomicU64,
    /// MQTT messages not taken in: too big, retained on a command topic, or no room to queue.
    pub mqtt_ignored: AtomicU64,
    pub events_waiting: AtomicU64,
    pub events_lost: AtomicU64,
    /// Fever alerts raised and not yet silenced or resolved, as last counted in the database.
    pub fever_alerts_active: AtomicU64,
    /// Tags read that are enrolled for nobody (each is logged with its card id).
    pub tags_unknown: AtomicU64,
    /// PINs typed at the door that matched nobody, and tries refused while locked.
    pub pins_refused: AtomicU64,
    /// Times the PIN input locked after too many wrong PINs.
    pub pin_lockouts: AtomicU64,
    /// The PIN input is locked now (refreshed from the database every second).
    pub pin_locked: std::sync::atomic::AtomicBool,
    disk: OnceLock<Arc<DiskWatch>>,
    /// When each stage last showed it was alive (see [`Health::beat`]).
    heartbeats: Mutex<BTreeMap<&'static str, Instant>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            camera: Mutex::new((CameraState::Starting, None)),
            mqtt_protocol: Mutex::new(None),
            sensors: Mutex::new(BTreeMap::new()),
            broker_connected: AtomicBool::new(false),
            outbox_depth: AtomicU64::new(0),
            outbox_dropped: AtomicU64::new(0),
            frames_read: AtomicU64::new(0),
            frames_processed: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            active_tracks: AtomicU64::new(0),
            events_queued: AtomicU64::new(0),
            events_published: AtomicU64::new(0),
            mqtt_ignored: AtomicU64::new(0),
            events_waiting: AtomicU64::new(0),
            events_lost: AtomicU64::new(0),
            fever_alerts_active: AtomicU64::new(0),
            tags_unknown: AtomicU64::new(0),
            pins_refused: AtomicU64::new(0),
            pin_lockouts: AtomicU64::new(0),
            pin_locked: std::sync::atomic::AtomicBool::new(false),
            disk: OnceLock::new(),
            heartbeats: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Health {
    pub fn set_camera(&self, state: CameraState, error: Option<String>) {
        if let Ok(mut c) = self.camera.lock() {
            *c = (state, error);
        }
    }

    pub fn set_mqtt_protocol(&self, protocol: Option<&str>) {
        if let Ok(mut p) = self.mqtt_protocol.lock() {
            *p = protocol.map(str::to_string);
        }
    }

    pub fn set_sensor(&self, name: &'static str, state: SensorState, error: Option<String>) {
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        let entry = sensors.entry(name).or_default();
        entry.state = state;
        entry.error = error;
    }

    pub fn sensor_state(&self, name: &str) -> SensorState {
        self.sensors.lock().unwrap_or_else(|p| p.into_inner()).get(name).map_or(SensorState::Off, |s| s.state)
    }

    pub fn set_sensor_stats(&self, name: &'static str, stats: DecoderStats) {
        self.sensors.lock().unwrap_or_else(|p| p.into_inner()).entry(name).or_default().stats = stats;
    }

    /// A stage shows it is alive: called from its loop, blocking calls excepted.
    pub fn beat(&self, stage: &'static str) {
        self.heartbeats.lock().unwrap_or_else(|p| p.into_inner()).insert(stage, Instant::now());
    }

    /// A stage ended on purpose (the end of a file): it no longer needs to beat.
    pub fn retire(&self, stage: &'static str) {
        self.heartbeats.lock().unwrap_or_else(|p| p.into_inner()).remove(stage);
    }

    /// The stages of `watched` that beat once and then not within `limit`.
    pub fn stalled(&self, watched: &[&'static str], limit: std::time::Duration) -> Vec<&'static str> {
        let beats = self.heartbeats.lock().unwrap_or_else(|p| p.into_inner());
        watched.iter().copied().filter(|s| beats.get(s).is_some_and(|t| t.elapsed() > limit)).collect()
    }

    /// The state disk the summary reports on (set once at start).
    pub fn watch_disk(&self, disk: Arc<DiskWatch>) {
        let _ = self.disk.set(disk);
    }

    pub fn summary(&self) -> HealthSummary {
        let mut reasons = Vec::new();
        let (thermal, sensors) = {
            let sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
            for (name, s) in sensors.iter() {
                match s.state {
                    SensorState::Retrying => reasons.push(format!(
                        "sensor {name} failing / 센서 재시도 중: {}",
                        s.error.as_deref().unwrap_or("no data")
                    )),
                    SensorState::Faulty => reasons.push(format!(
                        "sensor {name} faulty / 센서 고장: {}",
                        s.error.as_deref().unwrap_or("implausible readings")
                    )),
                    _ => {}
                }
            }
            let all = sensors
                .iter()
                .map(|(name, s)| {
                    let status = SensorStatus {
                        state: s.state,
                        error: s.error.clone(),
                        frames: s.stats.frames,
                        checksum_errors: s.stats.checksum_errors,
                        malformed: s.stats.malformed,
                    };
                    (name.to_string(), status)
                })
                .collect();
            (sensors.get(THERMAL).cloned().unwrap_or_default(), all)
        };
        let (camera, camera_error) = self.camera.lock().map(|c| c.clone()).unwrap_or((CameraState::Retrying, None));
        if camera == CameraState::Retrying {
            reasons
                .push(format!("camera failing / 카메라 재시도 중: {}", camera_error.as_deref().unwrap_or("no frames")));
        }
        let broker_connected = self.broker_connected.load(Ordering::Relaxed);
        if !broker_connected {
            reasons.push("broker unreachable: events wait in the outbox / 브로커 연결 끊김: 이벤트는 보관 중".into());
        }
        let disk = self.disk.get().map(|d| d.state());
        if let Some(d) = disk.filter(|d| d.low) {
            reasons.push(format!(
                "state disk low: {} MB free, {} MB reserved / 저장 공간 부족",
                d.free_bytes >> 20,
                d.reserve_bytes >> 20
            ));
        }
        let events_waiting = self.events_waiting.load(Ordering::Relaxed);
        if events_waiting > 0 {
            reasons.push(format!("{events_waiting} event(s) waiting in memory for the state disk / 이벤트 {events_waiting}건 메모리에서 대기 중"));
        }
        HealthSummary {
            degraded: !reasons.is_empty(),
            reasons,
            camera,
            camera_error,
            models: "ok".into(),
            broker_connected,
            mqtt_protocol: self.mqtt_protocol.lock().ok().and_then(|p| p.clone()),
            outbox_depth: self.outbox_depth.load(Ordering::Relaxed),
            outbox_dropped: self.outbox_dropped.load(Ordering::Relaxed),
            frames_read: self.frames_read.load(Ordering::Relaxed),
            frames_processed: self.frames_processed.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            active_tracks: self.active_tracks.load(Ordering::Relaxed),
            events_queued: self.events_queued.load(Ordering::Relaxed),
            events_published: self.events_published.load(Ordering::Relaxed),
            mqtt_ignored: self.mqtt_ignored.load(Ordering::Relaxed),
            thermal: thermal.state,
            thermal_error: thermal.error,
            thermal_frames: thermal.stats.frames,
            thermal_checksum_errors: thermal.stats.checksum_errors,
            thermal_malformed: thermal.stats.malformed,
            sensors,
            state_disk_free_mb: disk.map(|d| d.free_bytes >> 20),
            state_disk_reserve_mb: disk.map(|d| d.reserve_bytes >> 20),
            events_waiting,
            events_lost: self.events_lost.load(Ordering::Relaxed),
            fever_alerts_active: self.fever_alerts_active.load(Ordering::Relaxed),
            tags_unknown: self.tags_unknown.load(Ordering::Relaxed),
            pins_refused: self.pins_refused.load(Ordering::Relaxed),
            pin_lockouts: self.pin_lockouts.load(Ordering::Relaxed),
            pin_locked: self.pin_locked.load(Ordering::Relaxed),
        }
    }
}

/// Writes the status file atomically (temporary file and rename), so `dolbom status` never reads
/// half of it.
pub fn write_status_file(path: &Path, status: &dolbom_contract::StatusPayload) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

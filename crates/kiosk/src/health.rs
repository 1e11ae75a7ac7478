//! What the daemon knows about its own health: written by every stage, read by the status
//! publisher, the status file and `dolbom status`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

pub use dolbom_contract::{CameraState, HealthSummary, SensorState};

/// What a serial decoder took in and threw away, as each sensor reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub frames: u64,
    pub checksum_errors: u64,
    pub malformed: u64,
    pub bytes_skipped: u64,
}

/// Shared, lock-light health counters and states.
#[derive(Debug)]
pub struct Health {
    camera: Mutex<(CameraState, Option<String>)>,
    mqtt_protocol: Mutex<Option<String>>,
    thermal: Mutex<(SensorState, Option<String>, DecoderStats)>,
    pub broker_connected: AtomicBool,
    pub outbox_depth: AtomicU64,
    pub outbox_dropped: AtomicU64,
    pub frames_read: AtomicU64,
    pub frames_processed: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub active_tracks: AtomicU64,
    pub events_queued: AtomicU64,
    pub events_published: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            camera: Mutex::new((CameraState::Starting, None)),
            mqtt_protocol: Mutex::new(None),
            thermal: Mutex::new((SensorState::Off, None, DecoderStats::default())),
            broker_connected: AtomicBool::new(false),
            outbox_depth: AtomicU64::new(0),
            outbox_dropped: AtomicU64::new(0),
            frames_read: AtomicU64::new(0),
            frames_processed: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            active_tracks: AtomicU64::new(0),
            events_queued: AtomicU64::new(0),
            events_published: AtomicU64::new(0),
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

    pub fn set_thermal(&self, state: SensorState, error: Option<String>) {
        if let Ok(mut t) = self.thermal.lock() {
            t.0 = state;
            t.1 = error;
        }
    }

    pub fn set_thermal_stats(&self, stats: DecoderStats) {
        if let Ok(mut t) = self.thermal.lock() {
            t.2 = stats;
        }
    }

    pub fn summary(&self) -> HealthSummary {
        let (thermal, thermal_error, stats) =
            self.thermal.lock().map(|t| t.clone()).unwrap_or((SensorState::Retrying, None, Default::default()));
        let (camera, camera_error) = self.camera.lock().map(|c| c.clone()).unwrap_or((CameraState::Retrying, None));
        let broker_connected = self.broker_connected.load(Ordering::Relaxed);
        HealthSummary {
            degraded: camera == CameraState::Retrying || !broker_connected || thermal == SensorState::Retrying,
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
            thermal,
            thermal_error,
            thermal_frames: stats.frames,
            thermal_checksum_errors: stats.checksum_errors,
            thermal_malformed: stats.malformed,
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

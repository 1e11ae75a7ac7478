//! A kiosk's health as it appears in its retained status and its status file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    Starting,
    Ok,
    /// Failing to open or to deliver frames; being retried.
    Retrying,
    /// A file or image sequence has been read to the end.
    Finished,
}

/// A sensor that may be absent, working, being reopened, or talking nonsense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SensorState {
    /// Not configured.
    Off,
    Starting,
    Ok,
    Retrying,
    /// Delivering frames no working sensor could produce (out of range, flat, frozen); the
    /// reason is in the matching `*_error` field. Nothing is measured from it.
    Faulty,
}

/// A snapshot, as published in the status payload and written to the status file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSummary {
    /// True when anything needs attention: camera not delivering, broker unreachable.
    pub degraded: bool,
    pub camera: CameraState,
    pub camera_error: Option<String>,
    pub models: String,
    pub broker_connected: bool,
    pub mqtt_protocol: Option<String>,
    pub outbox_depth: u64,
    pub outbox_dropped: u64,
    pub frames_read: u64,
    pub frames_processed: u64,
    pub frames_dropped: u64,
    pub active_tracks: u64,
    pub events_queued: u64,
    pub events_published: u64,
    pub thermal: SensorState,
    pub thermal_error: Option<String>,
    pub thermal_frames: u64,
    pub thermal_checksum_errors: u64,
    pub thermal_malformed: u64,
}

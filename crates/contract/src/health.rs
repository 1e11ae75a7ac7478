//! A kiosk's health as it appears in its retained status and its status file.

use std::collections::BTreeMap;

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
    /// True when anything needs attention: camera not delivering, broker unreachable, a sensor
    /// failing, the state disk full. `reasons` says which, in words for the integrator.
    pub degraded: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
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
    /// MQTT messages received and dropped (too big, retained on a command topic, no room).
    #[serde(default)]
    pub mqtt_ignored: u64,
    pub thermal: SensorState,
    pub thermal_error: Option<String>,
    pub thermal_frames: u64,
    pub thermal_checksum_errors: u64,
    pub thermal_malformed: u64,
    /// Every serial sensor and outside source by name (`thermal`, `air_pm`, `air_co2`,
    /// `outdoor_dust`, `outdoor_weather`, …): the `thermal*` fields above repeat the first.
    #[serde(default)]
    pub sensors: BTreeMap<String, SensorStatus>,
    /// Free space on the state disk, and the reserve kept below which events wait in memory.
    #[serde(default)]
    pub state_disk_free_mb: Option<u64>,
    #[serde(default)]
    pub state_disk_reserve_mb: Option<u64>,
    /// Events held in memory because the state disk could not take them (yet).
    #[serde(default)]
    pub events_waiting: u64,
    /// Events given up: more waited for disk space than memory may hold, or a write that can
    /// never succeed. Each is also logged as an error.
    #[serde(default)]
    pub events_lost: u64,
    /// Fever alerts raised and not yet silenced or resolved.
    #[serde(default)]
    pub fever_alerts_active: u64,
    /// Tags read at the reader that are enrolled for nobody (the kiosk logs each card id).
    #[serde(default)]
    pub tags_unknown: u64,
    /// Wrong PINs typed at the door, and tries refused while too many were wrong.
    #[serde(default)]
    pub pins_refused: u64,
    /// Times the PIN input locked after too many wrong PINs (a guesser at the door).
    #[serde(default)]
    pub pin_lockouts: u64,
    /// The PIN input is locked now; `dolbom pin unlock` ends it.
    #[serde(default)]
    pub pin_locked: bool,
}

/// One sensor's (or outside source's) state in the status payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorStatus {
    pub state: SensorState,
    /// Why it is not `ok`, in words for the integrator.
    pub error: Option<String>,
    /// Valid frames (or answers) taken in.
    pub frames: u64,
    pub checksum_errors: u64,
    pub malformed: u64,
}

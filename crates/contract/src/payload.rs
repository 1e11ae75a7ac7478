//! The payloads published under a kiosk's topics, one type per message, each with its schema.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::PersonRef;

pub const ATTENDANCE_SCHEMA: &str = "dolbom.attendance/1";
pub const VISITOR_SCHEMA: &str = "dolbom.visitor/1";
pub const STATUS_SCHEMA: &str = "dolbom.status/1";
pub const FEVER_SCHEMA: &str = "dolbom.fever/1";
pub const ALERT_SCHEMA: &str = "dolbom.alert/1";
pub const COMMAND_RESULT_SCHEMA: &str = "dolbom.cmd-result/1";
pub const TEMPERATURE_SCHEMA: &str = "dolbom.temperature/1";
/// Thermometer values staff may enter, in °C: outside, a typo or the wrong instrument.
pub const THERMOMETER_C: std::ops::RangeInclusive<f32> = 34.0..=43.0;
/// Screening wording: never a diagnosis.
pub const FEVER_MESSAGE: &str = "elevated skin temperature — confirm with a thermometer";
/// A fever raised by a staff thermometer value: it is the confirmation, not a screening reading.
pub const FEVER_MESSAGE_THERMOMETER: &str = "thermometer reading at or above the threshold — contact the family";
/// What the door screen says to a `remeasure` (Korean first, as the door shows it).
pub const REMEASURE_MESSAGE_KO: &str = "5분 후에 다시 측정해 주세요";
pub const REMEASURE_MESSAGE_EN: &str = "please re-measure in 5 minutes";
pub const CONTENT_TYPE: &str = "application/json";

/// How a person was recognised at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckInMethod {
    Face,
    Tag,
    Pin,
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttendanceKind {
    Arrival,
    Departure,
}

/// `event/attendance`: an enrolled person arrived or left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttendanceEvent {
    pub schema: String,
    pub event_id: Uuid,
    pub center: String,
    pub kiosk: String,
    /// Capture time of the frame that settled the identity.
    pub ts: String,
    pub kind: AttendanceKind,
    pub person: PersonRef,
    /// Weighted share of the track's votes for this person, 0..1.
    pub confidence: f32,
    /// Skin temperature from fever screening; null when not measured (see `temperature_status`).
    pub temperature_c: Option<f32>,
    pub temperature_status: TemperatureStatus,
    /// Where on the face the temperature was read; absent when not measured (and from kiosks
    /// older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_site: Option<TemperatureSite>,
    pub method: CheckInMethod,
}

/// Where on the face a temperature was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemperatureSite {
    /// The inner eye corners, the screening site of IEC 80601-2-59.
    Canthus,
    /// The lower forehead: the fallback when the face is too small for the eye corners.
    Forehead,
}

/// The outcome of fever screening for one sighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemperatureStatus {
    Normal,
    /// Near the threshold, or a face that has not warmed up yet: measure again in 5 minutes
    /// ([`REMEASURE_MESSAGE_KO`], [`REMEASURE_MESSAGE_EN`]). Not a settled value: never texted.
    Remeasure,
    /// At or above the threshold: an alert was raised (or was already raised this visit).
    Elevated,
    TooFar,
    NotFrontal,
    OutOfView,
    NoThermal,
    /// The thermal sensor is faulty (impossible frames); the status says why.
    SensorFault,
    /// The reading was no human skin temperature (outside 25 … 45 °C after corrections).
    Implausible,
    Inconsistent,
    /// Fever screening is off on this kiosk.
    ScreeningOff,
    /// Screening is on, but nothing was measured: a tag or PIN check-in (no face at the camera).
    NotMeasured,
}

/// `event/fever`: an elevated skin temperature at the door (QoS 1, not retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeverEvent {
    pub schema: String,
    pub event_id: Uuid,
    pub center: String,
    pub kiosk: String,
    pub ts: String,
    pub alert_id: String,
    /// The enrolled person, or null for a visitor.
    pub person: Option<PersonRef>,
    pub track_id: u64,
    pub temperature_c: f32,
    pub threshold_c: f32,
    pub message: String,
}

/// How an open re-measure ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemperatureKind {
    /// A later measured reading (the door, or a staff thermometer) settled it.
    Settled,
    /// Nobody settled it within `fever.settle_within_mins`: no value, a teacher checks.
    Unsettled,
}

/// What settled a re-measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettleMethod {
    /// A later reading of the same person at the door.
    Kiosk,
    /// A value staff took with a thermometer (`cmd/thermometer`, `dolbom alerts thermometer`).
    Thermometer,
}

/// `event/temperature` (QoS 1, not retained): an arrival's `remeasure` settled, or expired
/// unsettled. One per arrival that was asked to re-measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureEvent {
    pub schema: String,
    pub event_id: Uuid,
    pub center: String,
    pub kiosk: String,
    /// When the settling reading was taken (or the deadline passed).
    pub ts: String,
    pub kind: TemperatureKind,
    pub person: PersonRef,
    /// The arrival event whose reading was `remeasure`.
    pub arrival_event_id: Uuid,
    /// The settled value; null when unsettled.
    pub temperature_c: Option<f32>,
    /// `normal` or `elevated` when settled; `remeasure` when unsettled (still open when it expired).
    pub temperature_status: TemperatureStatus,
    /// Where on the face the door read it; absent for a thermometer or unsettled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_site: Option<TemperatureSite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<SettleMethod>,
    /// The staff id that entered a thermometer value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStateKind {
    Active,
    Silenced,
    Resolved,
}

/// `alert/{alert_id}` (retained): the alert's current state, with who changed it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub schema: String,
    pub alert_id: String,
    pub center: String,
    pub kiosk: String,
    pub state: AlertStateKind,
    pub person: Option<PersonRef>,
    pub temperature_c: f32,
    pub message: String,
    pub raised_at: String,
    pub silenced_by: Option<String>,
    pub silenced_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
    pub updated_at: String,
}

/// `cmd/result`: the answer to a command on `cmd/silence`, `cmd/resolve` or `cmd/thermometer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    pub schema: String,
    pub request_id: Option<String>,
    pub command: String,
    pub ok: bool,
    pub alert_id: Option<String>,
    /// The alert's state after the command (also on repeats and refusals, when the alert exists).
    pub state: Option<AlertStateKind>,
    pub error: Option<String>,
    pub ts: String,
    /// The person a staff action (`checkin`, `consent`, `enroll`, `erase`) was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// What a successful staff action did, in words for staff: English, " / ", Korean
    /// (e.g. "3 face templates enrolled / 얼굴 템플릿 3개를 등록했습니다").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `event/visitor`: an unknown face was at the door.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitorEvent {
    pub schema: String,
    pub event_id: Uuid,
    pub center: String,
    pub kiosk: String,
    pub ts: String,
    pub track_id: u64,
    pub temperature_c: Option<f32>,
    pub temperature_status: TemperatureStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_site: Option<TemperatureSite>,
}

/// `status` (retained): whether the kiosk is up, and its health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusPayload {
    pub schema: String,
    pub state: String,
    pub center: String,
    pub kiosk: String,
    pub ts: String,
    pub version: String,
    /// Absent in the Last Will, which the broker publishes when the kiosk is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::HealthSummary>,
}

/// Skin temperatures a kiosk can have measured on a living person, in °C, after its corrections.
/// Forehead skin runs about 32-37 °C, down to the high 20s for a child coming in from a Korean
/// winter; the hottest fever reads well below 43. The kiosk reports a reading outside as
/// `implausible` (never a fever, never normal), and a relay refuses an event that carries one:
/// both sides hold the same range, so no real reading is refused on the way.
pub const SKIN_TEMPERATURE_C: std::ops::RangeInclusive<f32> = 25.0..=45.0;

//! The MQTT contract: every topic name and payload the kiosk publishes, in one place, so that
//! docs/mqtt.md, the JSON Schemas in docs/schemas/ and the code cannot drift apart.
//!
//! Topic root: `dolbom/v1/{center_id}/{kiosk_id}/`.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::gallery::Role;

pub const ATTENDANCE_SCHEMA: &str = "dolbom.attendance/1";
pub const VISITOR_SCHEMA: &str = "dolbom.visitor/1";
pub const STATUS_SCHEMA: &str = "dolbom.status/1";
pub const FEVER_SCHEMA: &str = "dolbom.fever/1";
pub const ALERT_SCHEMA: &str = "dolbom.alert/1";
pub const COMMAND_RESULT_SCHEMA: &str = "dolbom.cmd-result/1";
/// Screening wording: never a diagnosis.
pub const FEVER_MESSAGE: &str = "elevated skin temperature — confirm with a thermometer";
pub const CONTENT_TYPE: &str = "application/json";

/// Topic names under one kiosk's root.
#[derive(Debug, Clone)]
pub struct Topics {
    root: String,
}

impl Topics {
    pub fn new(center_id: &str, kiosk_id: &str) -> Self {
        Self { root: format!("dolbom/v1/{center_id}/{kiosk_id}/") }
    }
    pub fn status(&self) -> String {
        format!("{}status", self.root)
    }
    pub fn attendance(&self) -> String {
        format!("{}event/attendance", self.root)
    }
    pub fn visitor(&self) -> String {
        format!("{}event/visitor", self.root)
    }
    pub fn fever(&self) -> String {
        format!("{}event/fever", self.root)
    }
    pub fn alert(&self, alert_id: &str) -> String {
        format!("{}alert/{alert_id}", self.root)
    }
    /// Commands the kiosk accepts (never retained).
    pub fn commands(&self) -> [String; 2] {
        [format!("{}cmd/silence", self.root), format!("{}cmd/resolve", self.root)]
    }
    pub fn command_result(&self) -> String {
        format!("{}cmd/result", self.root)
    }
}

/// A new event id: UUIDv7, unique forever and ordered by creation time. The relay dedupes on it.
pub fn new_event_id() -> Uuid {
    Uuid::now_v7()
}

/// RFC 3339 with the site's UTC offset and millisecond precision, e.g. `2026-11-25T08:42:07.120+09:00`.
pub fn rfc3339(ts: Timestamp, tz: &TimeZone) -> String {
    let ms = Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts);
    ms.display_with_offset(tz.to_offset(ms)).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttendanceKind {
    Arrival,
    Departure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonRef {
    pub id: String,
    pub role: Role,
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
    pub method: String,
}

/// The outcome of fever screening for one sighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemperatureStatus {
    Normal,
    /// Just under the threshold: measure again.
    Remeasure,
    /// At or above the threshold: an alert was raised (or was already raised this visit).
    Elevated,
    TooFar,
    NotFrontal,
    OutOfView,
    NoThermal,
    Inconsistent,
    ScreeningOff,
}

impl TemperatureStatus {
    pub fn from_decision(d: Option<&crate::fever::Decision>) -> (Option<f32>, Self) {
        use crate::fever::{Decision, NotMeasured, Screening};
        match d {
            None => (None, Self::ScreeningOff),
            Some(Decision::Measured { celsius, screening }) => (
                Some(*celsius),
                match screening {
                    Screening::Normal => Self::Normal,
                    Screening::Remeasure => Self::Remeasure,
                    Screening::Elevated => Self::Elevated,
                },
            ),
            Some(Decision::NotMeasured(why)) => (
                None,
                match why {
                    NotMeasured::TooFar => Self::TooFar,
                    NotMeasured::NotFrontal => Self::NotFrontal,
                    NotMeasured::OutOfView => Self::OutOfView,
                    NotMeasured::NoThermal => Self::NoThermal,
                    NotMeasured::Inconsistent => Self::Inconsistent,
                    NotMeasured::ScreeningOff => Self::ScreeningOff,
                },
            ),
        }
    }
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

/// `cmd/result`: the answer to a command on `cmd/silence` or `cmd/resolve`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_root() {
        let t = Topics::new("sunshine", "door-1");
        assert_eq!(t.status(), "dolbom/v1/sunshine/door-1/status");
        assert_eq!(t.attendance(), "dolbom/v1/sunshine/door-1/event/attendance");
        assert_eq!(t.visitor(), "dolbom/v1/sunshine/door-1/event/visitor");
        assert_eq!(t.alert("a1"), "dolbom/v1/sunshine/door-1/alert/a1");
        assert_eq!(t.commands()[0], "dolbom/v1/sunshine/door-1/cmd/silence");
    }

    #[test]
    fn timestamps_carry_the_site_offset() {
        let tz = TimeZone::get("Asia/Seoul").expect("tzdb");
        let ts = Timestamp::from_millisecond(1_764_027_727_120).expect("ts");
        assert_eq!(rfc3339(ts, &tz), "2025-11-25T08:42:07.12+09:00");
    }

    #[test]
    fn event_ids_are_v7_and_increase() {
        let a = new_event_id();
        let b = new_event_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(b > a);
    }
}

//! Staff actions beyond the alerts, sent to a kiosk on `cmd/{name}` (signed, through the same
//! gate as `cmd/silence`), and the roster a kiosk publishes so a staff console knows who is
//! enrolled without ever seeing a template or an image.
//!
//! Every command carries `by` (the staff id the sender logged in as) and an optional
//! `request_id` echoed on `cmd/result`, where a [`crate::CommandResult`] answers it.

use serde::{Deserialize, Serialize};

use crate::ids::Role;
use crate::payload::AttendanceKind;

pub const ROSTER_SCHEMA: &str = "dolbom.roster/1";

/// `cmd/checkin`: staff record an arrival or a departure by hand (the camera missed the child).
/// The kiosk publishes the same attendance event a face gives, with method `staff` and no
/// temperature, so the relay texts the guardians as for any other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckinCommand {
    pub person: String,
    pub kind: AttendanceKind,
    pub by: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// `cmd/consent`: record a guardian's consent for a child, as `dolbom consent add` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentCommand {
    pub person: String,
    pub guardian: String,
    /// e.g. 어머니, 아버지, 조부모.
    pub relation: String,
    /// How staff checked it was the guardian, e.g. "signed paper form, ID checked".
    pub verified: String,
    /// `face-attendance` (required) and optionally `template-refresh`.
    pub purposes: Vec<String>,
    /// The last day the templates may be kept, `YYYY-MM-DD`.
    pub until: String,
    /// The day the guardian signed, `YYYY-MM-DD`; today when absent.
    #[serde(default)]
    pub given_on: Option<String>,
    pub by: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// `cmd/enroll`: "capture at the door". The kiosk takes its own good frames of the one face in
/// front of it for up to `seconds` and enrols them for `person` (who must exist in the kiosk's
/// gallery, or be created with `name` and `role`; a child needs a consent in force). The images
/// never leave the kiosk; the result says how many templates were enrolled, or why none were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollCommand {
    pub person: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub seconds: Option<u32>,
    pub by: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// `cmd/erase`: erase a person's face templates (a child's consent is withdrawn with them, as
/// `dolbom consent withdraw` does). Tags and PIN stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EraseCommand {
    pub person: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub by: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Where a child's consent stands (adults need none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    InForce,
    /// No consent was ever recorded.
    None,
    Withdrawn,
    Expired,
    /// Guardians and staff: no consent record is needed.
    NotNeeded,
}

/// One person on the roster: names and what is enrolled, never a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Has at least one face template (enrolled or refreshed).
    pub face: bool,
    pub tags: u32,
    pub pin: bool,
    pub consent: ConsentState,
}

/// `roster` (retained, QoS 1): the people this kiosk knows, published at connect and whenever
/// its gallery changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roster {
    pub schema: String,
    pub center: String,
    pub kiosk: String,
    pub ts: String,
    pub people: Vec<RosterEntry>,
}

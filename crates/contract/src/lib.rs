//! The MQTT contract between a kiosk and whoever listens to it (the relay, a staff console, an
//! integrator's dashboard): every topic name, payload type, id rule and schema version, in one
//! place, so that docs/mqtt.md, the JSON Schemas in docs/schemas/ and the code cannot drift
//! apart. No I/O: the kiosk builds these, subscribers parse them.
//!
//! Topic root: `dolbom/v1/{center_id}/{kiosk_id}/`.

pub mod air;
pub mod health;
pub mod ids;
pub mod payload;
pub mod signed;
pub mod staff;
pub mod text;
pub mod time;
pub mod topics;

pub use air::{
    AirEvent, AirEventState, AirTelemetry, DustGrade, DustReading, GradeLabel, IndoorAir, OutdoorAirReport, Pollutant,
    Reading, Recommendation, RecommendationCode, AIR_SCHEMA, AIR_TELEMETRY_SCHEMA,
};
pub use health::{CameraState, HealthSummary, SensorState, SensorStatus};
pub use ids::{validate_id, BadId, PersonRef, Role};
pub use payload::*;
pub use staff::{
    CheckinCommand, ConsentCommand, ConsentState, EnrollCommand, EraseCommand, Roster, RosterEntry, ROSTER_SCHEMA,
};
pub use time::{new_event_id, rfc3339};
pub use topics::{Command, Kind, Topic, Topics};

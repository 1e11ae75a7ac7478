//! Outdoor air and weather from Korea's public APIs: AirKorea's fine dust at the nearest station
//! and the KMA's temperature and humidity on the center's grid cell, kept in the shared
//! `watch<OutdoorAir>` for the air stage.
//!
//! ```text
//! [outdoor] ─► poller ─┬─ airkorea (getMsrstnAcctoRltmMesureDnsty) ─┐
//!                      └─ kma (getUltraSrtNcst, grid)               ─┴─► watch<OutdoorAir>, health
//! ```
//!
//! Both services answer in the same envelope with the same error codes ([`answer`]); a request
//! is built and sent by [`request`]. A failure never clears a value: the last good one stays,
//! with its observation time, so the telemetry can say how old it is.

pub mod airkorea;
pub mod answer;
pub mod config;
pub mod grid;
pub mod kma;
pub mod poller;
pub mod request;

pub use answer::OutdoorError;
pub use config::{AirKoreaConfig, KmaConfig, OutdoorConfig};
pub use poller::{run, run_paced, Pace};

use jiff::tz::TimeZone;

/// Korea Standard Time, in which both services give their hours. From the system's time zone
/// database when it has one; otherwise UTC+9, which is exact (Korea has kept no summer time
/// since 1988).
pub fn kst() -> TimeZone {
    TimeZone::get("Asia/Seoul").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(9)))
}

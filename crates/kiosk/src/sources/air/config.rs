//! `[air]`: the indoor air sensors on serial ports, a Plantower particle sensor (`[air.pms]`)
//! and an MH-Z19B CO2 sensor (`[air.co2]`), and the window their readings are averaged over.
//! Either sensor may be absent, not both: an `[air]` section without a sensor is a mistake.

use std::path::Path;
use std::time::Duration;

use dolbom_face::config::in_range;
use serde::Deserialize;

use super::{mhz19, pms};
use crate::air::AirLimitsConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AirConfig {
    /// Readings are averaged over this many seconds and one update is sent per window.
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
    /// Correct PM1/PM2.5/PM10 for water taken up by particles in humid air (optical sensors read
    /// high above ~70 % RH; see `sources::air::humidity`). Only meaningful with a PMS5003ST,
    /// the one sensor here that reports relative humidity, so it requires
    /// `air.pms.model = "pms5003st"`.
    #[serde(default)]
    pub humidity_correction: bool,
    #[serde(default)]
    pub pms: Option<PmsConfig>,
    #[serde(default)]
    pub co2: Option<Co2Config>,
    /// Longest wait between attempts to open a sensor's port.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// `telemetry/air` is published this often (and at once when a limit is crossed).
    #[serde(default = "default_telemetry_secs")]
    pub telemetry_secs: u64,
    /// `[air.limits]`: the daycare limits and how patiently they are judged.
    #[serde(default)]
    pub limits: AirLimitsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PmsModel {
    Pms5003,
    Pms7003,
    /// Adds formaldehyde, temperature and humidity (40-byte frames).
    Pms5003st,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PmsMode {
    /// The sensor streams frames on its own (about one a second).
    Active,
    /// The stage asks for a frame every `poll_secs`: fewer bytes, and a silent sensor is noticed
    /// as surely as one that stopped streaming.
    #[default]
    Passive,
}

impl From<PmsMode> for pms::Mode {
    fn from(m: PmsMode) -> Self {
        match m {
            PmsMode::Active => pms::Mode::Active,
            PmsMode::Passive => pms::Mode::Passive,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PmsConfig {
    /// Serial device, e.g. /dev/ttyUSB1 (or a link from `dolbom sim air --pms-link`).
    pub port: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    pub model: PmsModel,
    #[serde(default)]
    pub mode: PmsMode,
    /// Seconds between read requests in passive mode (unused in active mode).
    #[serde(default = "default_pms_poll_secs")]
    pub poll_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Co2Config {
    /// Serial device, e.g. /dev/ttyAMA0 (or a link from `dolbom sim air --co2-link`).
    pub port: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Detection range set on the sensor each time the port opens: 2000, 5000 or 10000 ppm.
    #[serde(default = "default_range_ppm")]
    pub range_ppm: u16,
    /// Automatic baseline correction: switched on or off when the port opens, left as the
    /// sensor has it when absent. Off for a room that never gets fresh air for a day.
    #[serde(default)]
    pub abc: Option<bool>,
    /// Readings this soon after the daemon starts are warming (datasheet: 3 minutes).
    #[serde(default = "default_preheat_secs")]
    pub preheat_secs: u64,
    /// Seconds between read commands (the sensor measures about every 5 s).
    #[serde(default = "default_co2_poll_secs")]
    pub poll_secs: u64,
}

/// The sensors' UART speed (both are 9600 8N1); other rates for bridges that convert.
const BAUD_RATES: [u32; 8] = [1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200];
const CO2_RANGES: [u16; 3] = [2000, 5000, 10_000];

fn default_window_secs() -> u64 {
    60
}
fn default_retry_max_ms() -> u64 {
    10_000
}
fn default_telemetry_secs() -> u64 {
    60
}
fn default_baud() -> u32 {
    9600
}
fn default_pms_poll_secs() -> u64 {
    2
}
fn default_range_ppm() -> u16 {
    5000
}
fn default_preheat_secs() -> u64 {
    mhz19::PREHEAT.as_secs()
}
fn default_co2_poll_secs() -> u64 {
    mhz19::POLL_EVERY.as_secs()
}

impl AirConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        in_range("air.window_secs", self.window_secs, 1, 3600)?;
        in_range("air.retry_max_ms", self.retry_max_ms, 100, 3_600_000)?;
        in_range("air.telemetry_secs", self.telemetry_secs, 1, 3600)?;
        self.limits.validate()?;
        if self.pms.is_none() && self.co2.is_none() {
            return Err(("air", "needs a sensor: [air.pms], [air.co2] or both".into()));
        }
        if let Some(p) = &self.pms {
            if p.port.trim().is_empty() {
                return Err(("air.pms.port", "must not be empty".into()));
            }
            if !BAUD_RATES.contains(&p.baud) {
                return Err(("air.pms.baud", format!("= {}: must be one of {BAUD_RATES:?}", p.baud)));
            }
            in_range("air.pms.poll_secs", p.poll_secs, 1, 60)?;
            if p.mode == PmsMode::Passive && p.poll_secs > self.window_secs {
                return Err((
                    "air.pms.poll_secs",
                    format!("= {}: must not exceed air.window_secs ({})", p.poll_secs, self.window_secs),
                ));
            }
        }
        if self.humidity_correction && self.pms.as_ref().map(|p| p.model) != Some(PmsModel::Pms5003st) {
            return Err((
                "air.humidity_correction",
                "= true needs air.pms.model = \"pms5003st\", the sensor that reports humidity".into(),
            ));
        }
        if let Some(c) = &self.co2 {
            if c.port.trim().is_empty() {
                return Err(("air.co2.port", "must not be empty".into()));
            }
            if !BAUD_RATES.contains(&c.baud) {
                return Err(("air.co2.baud", format!("= {}: must be one of {BAUD_RATES:?}", c.baud)));
            }
            if !CO2_RANGES.contains(&c.range_ppm) {
                return Err(("air.co2.range_ppm", format!("= {}: must be one of {CO2_RANGES:?}", c.range_ppm)));
            }
            in_range("air.co2.preheat_secs", c.preheat_secs, 0, 1800)?;
            in_range("air.co2.poll_secs", c.poll_secs, 1, 60)?;
            if c.poll_secs > self.window_secs {
                return Err((
                    "air.co2.poll_secs",
                    format!("= {}: must not exceed air.window_secs ({})", c.poll_secs, self.window_secs),
                ));
            }
        }
        Ok(())
    }

    /// Port paths relative to the config file's directory (a simulator's links, say).
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = |port: &mut String| {
            // An empty port stays empty, for validate() to name it.
            if !port.starts_with('/') && !port.trim().is_empty() {
                *port = base.join(&*port).display().to_string();
            }
        };
        if let Some(p) = &mut self.pms {
            resolve(&mut p.port);
        }
        if let Some(c) = &mut self.co2 {
            resolve(&mut c.port);
        }
    }

    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }

    /// An indoor value older than three windows is gone from the telemetry: its sensor has
    /// missed two updates.
    pub fn stale_after(&self) -> Duration {
        3 * self.window()
    }
}

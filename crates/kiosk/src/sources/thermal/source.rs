//! `[thermal]` and the thermal array's stage: the shared serial loop ([`crate::sources::serial`])
//! with the configured device's decoder, keeping the newest frame for screening.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dolbom_face::config::in_range;
use serde::Deserialize;
use tracing::{info, info_span, warn};

use super::mlx90640::Checksum;
use super::plausibility::Plausibility;
use super::{DeviceKind, ThermalFrame};
use crate::health::{Health, THERMAL};
use crate::shutdown::Shutdown;
use crate::sources::camera::mono_now_ms;
use crate::sources::serial::{run_port, PortSettings};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalConfig {
    pub device: DeviceKind,
    /// Serial device, e.g. /dev/ttyUSB0 (or a pseudo-terminal from `dolbom sim thermal`).
    pub port: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default)]
    pub checksum: Checksum,
    /// GY-MCU90640 frame-rate command code (`A5 25 code sum`); not sent when absent.
    #[serde(default)]
    pub rate_code: Option<u8>,
    /// Array size for `device = "csv"`.
    #[serde(default = "default_csv_side")]
    pub width: usize,
    #[serde(default = "default_csv_side")]
    pub height: usize,
    /// A thermal frame older than this is not fused with a camera frame.
    #[serde(default = "default_max_age_ms")]
    pub max_age_ms: i64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Identical frames in a row after which the sensor is reported frozen (faulty).
    #[serde(default = "default_frozen_frames")]
    pub frozen_frames: u32,
    /// Applied to every pixel: `gain × read + offset_c` (`dolbom calibrate thermal --blackbody`).
    #[serde(default = "default_gain")]
    pub gain: f32,
    #[serde(default)]
    pub offset_c: f32,
}

fn default_gain() -> f32 {
    1.0
}

/// The rates serial bridges (CH340, CP2102, FTDI) and the modules speak.
const BAUD_RATES: [u32; 16] = [
    1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600, 1_000_000, 1_500_000,
    2_000_000, 3_000_000, 4_000_000,
];

fn default_baud() -> u32 {
    115_200
}
fn default_csv_side() -> usize {
    8
}
fn default_max_age_ms() -> i64 {
    500
}
fn default_retry_max_ms() -> u64 {
    10_000
}
fn default_frozen_frames() -> u32 {
    super::plausibility::DEFAULT_FROZEN_FRAMES
}

impl ThermalConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.port.trim().is_empty() {
            return Err(("thermal.port", "must not be empty".into()));
        }
        if !BAUD_RATES.contains(&self.baud) {
            return Err(("thermal.baud", format!("= {}: must be one of {BAUD_RATES:?}", self.baud)));
        }
        // Each side first: their product could overflow.
        in_range("thermal.width", self.width, 1, 256)?;
        in_range("thermal.height", self.height, 1, 256)?;
        if self.device == DeviceKind::Csv && self.width * self.height > 256 {
            return Err(("thermal.width", "width x height must be 1 to 256 pixels for device = \"csv\"".into()));
        }
        if !(50..=10_000).contains(&self.max_age_ms) {
            return Err(("thermal.max_age_ms", format!("= {}: must be between 50 and 10000", self.max_age_ms)));
        }
        if !(100..=3_600_000).contains(&self.retry_max_ms) {
            return Err(("thermal.retry_max_ms", format!("= {}: must be between 100 and 3600000", self.retry_max_ms)));
        }
        if !super::correction::GAIN.contains(&self.gain) {
            return Err(("thermal.gain", format!("= {}: must be between 0.8 and 1.2", self.gain)));
        }
        if !super::correction::OFFSET_C.contains(&self.offset_c) {
            return Err(("thermal.offset_c", format!("= {}: must be between -5 and 5", self.offset_c)));
        }
        if !(2..=1000).contains(&self.frozen_frames) {
            return Err(("thermal.frozen_frames", format!("= {}: must be between 2 and 1000", self.frozen_frames)));
        }
        Ok(())
    }

    /// A port path relative to the config file's directory (a simulator's link, say).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if !self.port.starts_with('/') {
            self.port = base.join(&self.port).display().to_string();
        }
    }
}

/// The newest decoded frame, shared with the vision stage.
pub type LatestFrame = Arc<Mutex<Option<ThermalFrame>>>;

/// The thermal array's stage: the shared serial loop with this device's decoder, keeping the
/// newest plausible frame (stamped with its arrival time) for screening. An implausible frame
/// clears it, so no face is ever measured from a sensor that is known to be lying.
pub fn run_thermal(config: ThermalConfig, latest: LatestFrame, health: Arc<Health>, shutdown: Shutdown) {
    let _span = info_span!("thermal", device = ?config.device, port = %config.port).entered();
    let mut decoder = super::decoder(&config);
    let mut plausibility = Plausibility::new(config.frozen_frames);
    let mut faulty = false;
    let settings = PortSettings {
        sensor: THERMAL,
        path: config.port.clone(),
        baud: config.baud,
        retry_max: Duration::from_millis(config.retry_max_ms),
        stale_after: Duration::from_secs(5),
        reopen_after: Duration::from_secs(15),
        quiet_is_normal: false,
    };
    run_port(&settings, decoder.as_mut(), &health, &shutdown, |frames| {
        // Every frame is checked (a frozen sensor is only seen across frames); screening wants
        // the newest one only, older ones in the same read are stale already.
        let mut verdict = Ok(());
        for f in frames.iter() {
            verdict = plausibility.check(f);
        }
        let newest = match &verdict {
            Ok(()) => frames.pop().map(|mut f| {
                f.mono_ms = mono_now_ms();
                // Plausibility judged the sensor's own values; screening gets corrected ones.
                if config.gain != 1.0 || config.offset_c != 0.0 {
                    f.pixels.iter_mut().for_each(|p| *p = config.gain * *p + config.offset_c);
                }
                f
            }),
            Err(_) => None,
        };
        if let Ok(mut l) = latest.lock() {
            *l = newest;
        }
        // Log the transitions only: a faulty sensor keeps sending several frames a second.
        match (&verdict, faulty) {
            (Err(reason), false) => warn!(reason = %reason, "thermal sensor faulty; temperatures not measured"),
            (Ok(()), true) => info!("thermal sensor plausible again"),
            _ => {}
        }
        faulty = verdict.is_err();
        verdict
    });
}

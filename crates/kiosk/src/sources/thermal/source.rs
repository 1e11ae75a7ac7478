//! The serial port: one thread owns it, sends the device's start commands, feeds the decoder,
//! keeps the newest frame for the vision stage, and reopens the port with backoff when it fails
//! or disappears (a USB module unplugged and plugged back).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::{info, info_span, warn};

use super::mlx90640::Checksum;
use super::{DeviceKind, ThermalFrame};
use crate::health::Health;
use crate::sources::camera::mono_now_ms;
use dolbom_backoff::{sleep_unless_stopped, Backoff};

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
}

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

impl ThermalConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.port.trim().is_empty() {
            return Err(("thermal.port", "must not be empty".into()));
        }
        if !(1200..=4_000_000).contains(&self.baud) {
            return Err(("thermal.baud", format!("= {}: must be between 1200 and 4000000", self.baud)));
        }
        if self.device == DeviceKind::Csv && !(1..=256).contains(&(self.width * self.height).min(257)) {
            return Err(("thermal.width", "width x height must be 1 to 256 pixels for device = \"csv\"".into()));
        }
        if !(50..=10_000).contains(&self.max_age_ms) {
            return Err(("thermal.max_age_ms", format!("= {}: must be between 50 and 10000", self.max_age_ms)));
        }
        if !(100..=3_600_000).contains(&self.retry_max_ms) {
            return Err(("thermal.retry_max_ms", format!("= {}: must be between 100 and 3600000", self.retry_max_ms)));
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

pub fn run_thermal(config: ThermalConfig, latest: LatestFrame, health: Arc<Health>, stop: Arc<AtomicBool>) {
    let _span = info_span!("thermal", device = ?config.device, port = %config.port).entered();
    let mut decoder = super::decoder(&config);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_millis(config.retry_max_ms));
    let mut buf = [0u8; 4096];
    let mut frames = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut port = match serialport::new(&config.port, config.baud).timeout(Duration::from_millis(200)).open() {
            Ok(p) => p,
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "thermal sensor unavailable");
                health.set_thermal(crate::health::SensorState::Retrying, Some(e.to_string()));
                sleep_unless_stopped(delay, &stop);
                continue;
            }
        };
        for cmd in decoder.init_commands() {
            if let Err(e) = port.write_all(&cmd) {
                warn!(error = %e, "could not send a start command to the thermal sensor");
            }
        }
        info!("thermal sensor opened");
        let mut last_frame = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match port.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    decoder.feed(&buf[..n], &mut frames);
                    let stats = decoder.stats();
                    health.set_thermal_stats(stats);
                    let newest = frames.pop();
                    frames.clear();
                    if let Some(mut f) = newest {
                        f.mono_ms = mono_now_ms();
                        if let Ok(mut l) = latest.lock() {
                            *l = Some(f);
                        }
                        last_frame = Instant::now();
                        backoff.reset();
                        health.set_thermal(crate::health::SensorState::Ok, None);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => {
                    warn!(error = %e, "thermal sensor read failed; reopening");
                    health.set_thermal(crate::health::SensorState::Retrying, Some(e.to_string()));
                    break;
                }
            }
            if last_frame.elapsed() > Duration::from_secs(5) {
                health.set_thermal(crate::health::SensorState::Retrying, Some("no valid frames for 5 s".into()));
                if last_frame.elapsed() > Duration::from_secs(15) {
                    warn!("no valid thermal frames for 15 s; reopening the port");
                    break;
                }
            }
        }
        sleep_unless_stopped(backoff.next_delay(), &stop);
    }
}

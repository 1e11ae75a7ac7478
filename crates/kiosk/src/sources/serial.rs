//! One loop that owns a serial port, for every serial sensor: open it, send the device's start
//! commands, feed what arrives to the sensor's decoder, hand over the frames, and reopen with
//! backoff when the port fails, disappears (a USB module unplugged and plugged back) or goes
//! silent. Health is reported under the sensor's name; nothing here panics on any input.
//!
//! A sensor brings a [`SerialDecoder`] and a closure that takes its frames; see
//! docs/architecture.md for a worked example.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use dolbom_backoff::Backoff;
use tracing::{info, warn};

use crate::health::{DecoderStats, Health, SensorState};
use crate::shutdown::Shutdown;

/// A byte-stream parser for one device: never panics, resynchronises after noise, and counts
/// what it had to throw away.
pub trait SerialDecoder: Send {
    type Frame;
    /// Consumes bytes as they arrive (any split), appending every complete, valid frame.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Self::Frame>);
    fn stats(&self) -> DecoderStats;
    /// Bytes to send after opening the port (e.g. "start automatic output").
    fn init_commands(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// Where the sensor is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct PortSettings {
    /// The sensor's name in the health summary and the logs, e.g. "thermal".
    pub sensor: &'static str,
    pub path: String,
    pub baud: u32,
    /// Longest wait between attempts to open the port.
    pub retry_max: Duration,
    /// No valid frame for this long: the sensor is reported as retrying.
    pub stale_after: Duration,
    /// No valid frame for this long: the port is closed and opened again.
    pub reopen_after: Duration,
}

/// Runs until `shutdown`; `deliver` gets the frames of each read (it may take them out) and
/// says whether they make sense: `Err(reason)` reports the sensor faulty (it talks, but what it
/// says is impossible), which no reopening can fix, so the port stays open.
pub fn run_port<F>(
    settings: &PortSettings,
    decoder: &mut dyn SerialDecoder<Frame = F>,
    health: &Health,
    shutdown: &Shutdown,
    mut deliver: impl FnMut(&mut Vec<F>) -> Result<(), String>,
) {
    let name = settings.sensor;
    let mut backoff = Backoff::new(Duration::from_millis(200), settings.retry_max);
    let mut buf = [0u8; 4096];
    let mut frames = Vec::new();
    while !shutdown.is_triggered() {
        let opened = serialport::new(&settings.path, settings.baud).timeout(Duration::from_millis(200)).open();
        let mut port = match opened {
            Ok(p) => p,
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(sensor = name, error = %e, retry_in_ms = delay.as_millis() as u64, "sensor unavailable");
                health.set_sensor(name, SensorState::Retrying, Some(e.to_string()));
                shutdown.sleep(delay);
                continue;
            }
        };
        for cmd in decoder.init_commands() {
            if let Err(e) = port.write_all(&cmd) {
                warn!(sensor = name, error = %e, "could not send a start command");
            }
        }
        info!(sensor = name, "sensor port opened");
        let mut last_frame = Instant::now();
        while !shutdown.is_triggered() {
            match port.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    decoder.feed(&buf[..n], &mut frames);
                    health.set_sensor_stats(name, decoder.stats());
                    if !frames.is_empty() {
                        let verdict = deliver(&mut frames);
                        frames.clear();
                        last_frame = Instant::now();
                        backoff.reset();
                        match verdict {
                            Ok(()) => health.set_sensor(name, SensorState::Ok, None),
                            Err(reason) => health.set_sensor(name, SensorState::Faulty, Some(reason)),
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => {
                    warn!(sensor = name, error = %e, "sensor read failed; reopening");
                    health.set_sensor(name, SensorState::Retrying, Some(e.to_string()));
                    break;
                }
            }
            if last_frame.elapsed() > settings.stale_after {
                let silent = format!("no valid frames for {} s", settings.stale_after.as_secs());
                health.set_sensor(name, SensorState::Retrying, Some(silent));
                if last_frame.elapsed() > settings.reopen_after {
                    warn!(
                        sensor = name,
                        "no valid frames for {} s; reopening the port",
                        settings.reopen_after.as_secs()
                    );
                    break;
                }
            }
        }
        shutdown.sleep(backoff.next_delay());
    }
}

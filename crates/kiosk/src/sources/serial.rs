//! One loop that owns a serial port, for every serial sensor: open it, send the device's start
//! commands, feed what arrives to the sensor's decoder, hand over the frames, and reopen with
//! backoff when the port fails, disappears (a USB module unplugged and plugged back) or goes
//! silent. Health is reported under the sensor's name; nothing here panics on any input.
//!
//! A sensor brings a [`SerialDecoder`] and a closure that takes its frames; see
//! docs/architecture.md for a worked example. A sensor that only speaks when asked (the MH-Z19B,
//! a Plantower in passive mode) also brings a [`Poll`]: the loop writes its command while the port
//! is open, and a sensor that stops answering is stale like one that stops streaming.

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
    /// The port is open again after the device was gone (unplugged, or a read failed): a USB
    /// sensor has been powered off and on, and starts over (its warm-up, say).
    fn device_returned(&mut self) {}
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
    /// The device speaks only when something happens (a card reader): an open port is `ok`,
    /// and silence is never stale (`stale_after` and `reopen_after` do not apply).
    pub quiet_is_normal: bool,
}

/// A command the loop writes every `every` while the port is open (first right after the start
/// commands), for sensors that answer only when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    pub command: Vec<u8>,
    pub every: Duration,
}

/// What a stage does with its sensor's frames, and with time passing (a stage that publishes
/// per window must close the window even when nothing arrives).
pub trait FrameSink<F> {
    /// Gets the frames of each read (it may take them out) and says whether they make sense:
    /// `Err(reason)` reports the sensor faulty.
    fn deliver(&mut self, frames: &mut Vec<F>) -> Result<(), String>;
    /// Called after every read attempt (at least every 200 ms while the port is open) and after
    /// every failed open.
    fn tick(&mut self) {}
}

/// A closure as a [`FrameSink`] that ignores time.
struct Deliver<D>(D);

impl<F, D: FnMut(&mut Vec<F>) -> Result<(), String>> FrameSink<F> for Deliver<D> {
    fn deliver(&mut self, frames: &mut Vec<F>) -> Result<(), String> {
        (self.0)(frames)
    }
}

/// Runs until `shutdown`; `deliver` gets the frames of each read (it may take them out) and
/// says whether they make sense: `Err(reason)` reports the sensor faulty (it talks, but what it
/// says is impossible), which no reopening can fix, so the port stays open.
pub fn run_port<F>(
    settings: &PortSettings,
    decoder: &mut dyn SerialDecoder<Frame = F>,
    health: &Health,
    shutdown: &Shutdown,
    deliver: impl FnMut(&mut Vec<F>) -> Result<(), String>,
) {
    run_port_polled(settings, None, decoder, health, shutdown, &mut Deliver(deliver));
}

/// [`run_port`] for a sensor that must be asked: `poll` is written right after the start
/// commands (unless the last of them is the same command) and then every `poll.every`; a write
/// that fails is a port failure. `sink` gets the frames and the ticks.
pub fn run_port_polled<F>(
    settings: &PortSettings,
    poll: Option<&Poll>,
    decoder: &mut dyn SerialDecoder<Frame = F>,
    health: &Health,
    shutdown: &Shutdown,
    sink: &mut dyn FrameSink<F>,
) {
    let name = settings.sensor;
    let mut backoff = Backoff::new(Duration::from_millis(200), settings.retry_max);
    let mut buf = [0u8; 4096];
    let mut frames = Vec::new();
    // The device disappeared since the last open (a failed open or read), not just went silent.
    let mut device_lost = false;
    while !shutdown.is_triggered() {
        let opened = serialport::new(&settings.path, settings.baud).timeout(Duration::from_millis(200)).open();
        let mut port = match opened {
            Ok(p) => p,
            Err(e) => {
                device_lost = true;
                let delay = backoff.next_delay();
                warn!(sensor = name, error = %e, retry_in_ms = delay.as_millis() as u64, "sensor unavailable");
                health.set_sensor(name, SensorState::Retrying, Some(e.to_string()));
                shutdown.sleep(delay);
                sink.tick();
                continue;
            }
        };
        if std::mem::take(&mut device_lost) {
            decoder.device_returned();
        }
        let init = decoder.init_commands();
        for cmd in &init {
            if let Err(e) = port.write_all(cmd) {
                warn!(sensor = name, error = %e, "could not send a start command");
            }
        }
        info!(sensor = name, "sensor port opened");
        if settings.quiet_is_normal {
            health.set_sensor(name, SensorState::Ok, None);
        }
        let mut last_frame = Instant::now();
        // The start commands may already end with the poll (the MH-Z19B's do): no second one.
        let mut next_poll = match poll {
            Some(p) if init.last() == Some(&p.command) => Some(Instant::now() + p.every),
            Some(_) => Some(Instant::now()),
            None => None,
        };
        while !shutdown.is_triggered() {
            if let (Some(p), Some(due)) = (poll, next_poll) {
                if Instant::now() >= due {
                    next_poll = Some(Instant::now() + p.every);
                    if let Err(e) = port.write_all(&p.command) {
                        warn!(sensor = name, error = %e, "sensor poll failed; reopening / 센서 요청 실패: 다시 여는 중");
                        health.set_sensor(name, SensorState::Retrying, Some(e.to_string()));
                        break;
                    }
                }
            }
            let read = port.read(&mut buf);
            sink.tick();
            match read {
                Ok(0) => {}
                Ok(n) => {
                    decoder.feed(&buf[..n], &mut frames);
                    health.set_sensor_stats(name, decoder.stats());
                    if !frames.is_empty() {
                        let verdict = sink.deliver(&mut frames);
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
                    warn!(sensor = name, error = %e, "sensor read failed; reopening / 센서 읽기 실패: 다시 여는 중");
                    health.set_sensor(name, SensorState::Retrying, Some(e.to_string()));
                    device_lost = true;
                    break;
                }
            }
            if !settings.quiet_is_normal && last_frame.elapsed() > settings.stale_after {
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

//! The indoor air sensors' stages: each sensor on the shared serial loop
//! ([`crate::sources::serial`]) with its decoder, every reading checked for plausibility (an
//! impossible one makes the sensor faulty, with the reason, and is left out), and one
//! [`IndoorUpdate`] per window: the mean of the window's readings, or `Warming` when only
//! warming readings came. A window without any reading sends nothing; the sensor's health says
//! why (retrying, faulty).
//!
//! Each stage is a blocking function for a thread of its own. Updates go out with `try_send`:
//! the serial loop must never wait on the air stage, so a full channel drops the update and
//! counts it (one update a minute fills no sane channel unless the receiver is stuck).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;
use tracing::{info, info_span, warn};

use super::config::{AirConfig, Co2Config, PmsMode, PmsModel};
use super::humidity::{DEFAULT_DENSITY, DEFAULT_KAPPA};
use super::mhz19::{self, Mhz19b};
use super::plausibility::{check_co2, check_pm};
use super::pms::{self, Pms};
use super::window::{co2_mean, PmMean};
use super::{Co2Reading, DecoderStats, PmReading, PmsFrame, SerialDecoder};
use crate::air::{IndoorMeasurement, IndoorUpdate, AIR_CO2, AIR_PM};
use crate::health::Health;
use crate::shutdown::Shutdown;
use crate::sources::serial::{run_port_polled, FrameSink, Poll, PortSettings};

/// An air sensor's stage, run on a thread of its own ([`run_pms`], [`run_co2`]).
pub type SensorStage = fn(AirConfig, Sender<IndoorUpdate>, Arc<Health>, Shutdown);

/// The particle sensor's stage; returns at `shutdown`, or at once when `[air.pms]` is absent.
pub fn run_pms(config: AirConfig, tx: Sender<IndoorUpdate>, health: Arc<Health>, shutdown: Shutdown) {
    let Some(pms_config) = config.pms.clone() else {
        return;
    };
    let _span = info_span!("air", sensor = AIR_PM, port = %pms_config.port).entered();
    let mut decoder = Pms::new(pms_config.mode.into());
    let poll = (pms_config.mode == PmsMode::Passive)
        .then(|| Poll { command: pms::read().to_vec(), every: Duration::from_secs(pms_config.poll_secs) });
    let settings = port_settings(AIR_PM, &pms_config.port, pms_config.baud, &config, poll.as_ref());
    let mut sink = WindowSink::new(AIR_PM, config.window(), tx, PmWindow { readings: Vec::new(), config });
    run_port_polled(&settings, poll.as_ref(), &mut decoder, &health, &shutdown, &mut sink);
    sink.finish();
}

/// The CO2 sensor's stage; returns at `shutdown`, or at once when `[air.co2]` is absent.
pub fn run_co2(config: AirConfig, tx: Sender<IndoorUpdate>, health: Arc<Health>, shutdown: Shutdown) {
    let Some(co2) = config.co2.clone() else {
        return;
    };
    let _span = info_span!("air", sensor = AIR_CO2, port = %co2.port).entered();
    // The range is set on every open: the sensor keeps it, but may have been set elsewhere.
    let mut decoder = WithStart {
        first: vec![mhz19::range(co2.range_ppm).to_vec()],
        inner: Mhz19b::new(Duration::from_secs(co2.preheat_secs), co2.abc),
    };
    let poll = Poll { command: mhz19::poll().to_vec(), every: Duration::from_secs(co2.poll_secs) };
    let settings = port_settings(AIR_CO2, &co2.port, co2.baud, &config, Some(&poll));
    let mut sink = WindowSink::new(AIR_CO2, config.window(), tx, Co2Window { readings: Vec::new(), config: co2 });
    run_port_polled(&settings, Some(&poll), &mut decoder, &health, &shutdown, &mut sink);
    sink.finish();
}

/// How long a sensor may be silent: a few of its periods (a frame a second in active mode, one
/// per poll otherwise), never under 5 s; reopened after three times that.
fn port_settings(sensor: &'static str, path: &str, baud: u32, air: &AirConfig, poll: Option<&Poll>) -> PortSettings {
    let period = poll.map_or(Duration::from_secs(1), |p| p.every);
    let stale_after = (period * 3).max(Duration::from_secs(5));
    PortSettings {
        sensor,
        path: path.to_string(),
        baud,
        retry_max: Duration::from_millis(air.retry_max_ms),
        stale_after,
        reopen_after: stale_after * 3,
        quiet_is_normal: false,
    }
}

/// A decoder with extra start commands before its own.
struct WithStart<D> {
    first: Vec<Vec<u8>>,
    inner: D,
}

impl<D: SerialDecoder> SerialDecoder for WithStart<D> {
    type Frame = D::Frame;
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<D::Frame>) {
        self.inner.feed(bytes, out);
    }
    fn stats(&self) -> DecoderStats {
        self.inner.stats()
    }
    fn init_commands(&self) -> Vec<Vec<u8>> {
        self.first.iter().cloned().chain(self.inner.init_commands()).collect()
    }
    fn device_returned(&mut self) {
        self.inner.device_returned();
    }
}

/// What one sensor keeps of a window and how it judges and averages it.
trait Window {
    type Frame;
    /// Takes the frames' plausible readings into the window; `Err` with the first reason when
    /// one was impossible (the rest of the batch is still taken).
    fn take(&mut self, frames: &mut Vec<Self::Frame>) -> Result<(), String>;
    /// The window's measurement and the readings it was taken over; `None` when empty. Empties
    /// the window.
    fn close(&mut self) -> Option<(IndoorMeasurement, usize)>;
}

struct PmWindow {
    readings: Vec<PmReading>,
    config: AirConfig,
}

impl Window for PmWindow {
    type Frame = PmsFrame;

    fn take(&mut self, frames: &mut Vec<PmsFrame>) -> Result<(), String> {
        let mut verdict = Ok(());
        let st = self.config.pms.as_ref().is_some_and(|p| p.model == PmsModel::Pms5003st);
        // Command answers (acks) show the sensor is alive; they carry no reading.
        for r in frames.iter().filter_map(PmsFrame::reading) {
            if st && !r.is_extended() {
                // Humidity correction and formaldehyde would silently be missing.
                let reason = "32-byte frames without formaldehyde, temperature and humidity, but air.pms.model = \"pms5003st\" / 설정한 센서 모델과 프레임이 다름";
                verdict = verdict.and(Err(reason.to_string()));
                continue;
            }
            match check_pm(r) {
                Ok(()) => self.readings.push(*r),
                Err(reason) => verdict = verdict.and(Err(reason)),
            }
        }
        verdict
    }

    fn close(&mut self) -> Option<(IndoorMeasurement, usize)> {
        let readings = std::mem::take(&mut self.readings);
        if readings.is_empty() {
            return None;
        }
        let Some(mean) = PmMean::of(&readings) else {
            return Some((IndoorMeasurement::Warming, 0));
        };
        let [pm1, pm25, pm10] = if self.config.humidity_correction {
            mean.humidity_corrected(None, DEFAULT_KAPPA, DEFAULT_DENSITY)
        } else {
            [mean.pm1, mean.pm25, mean.pm10]
        };
        let measurement = IndoorMeasurement::Particles {
            pm1,
            pm25,
            pm10,
            hcho_ug_m3: mean.hcho_ug_m3,
            temperature_c: mean.temperature_c,
            humidity_pct: mean.humidity_pct,
        };
        Some((measurement, mean.n))
    }
}

struct Co2Window {
    readings: Vec<Co2Reading>,
    config: Co2Config,
}

impl Window for Co2Window {
    type Frame = Co2Reading;

    fn take(&mut self, frames: &mut Vec<Co2Reading>) -> Result<(), String> {
        let mut verdict = Ok(());
        for r in frames.iter() {
            match check_co2(r, self.config.range_ppm) {
                Ok(()) => self.readings.push(*r),
                Err(reason) => verdict = verdict.and(Err(reason)),
            }
        }
        verdict
    }

    fn close(&mut self) -> Option<(IndoorMeasurement, usize)> {
        let readings = std::mem::take(&mut self.readings);
        match co2_mean(&readings) {
            (Some(ppm), warming) => Some((IndoorMeasurement::Co2 { ppm }, readings.len() - warming)),
            (None, warming) if warming > 0 => Some((IndoorMeasurement::Warming, 0)),
            (None, _) => None,
        }
    }
}

/// The serial loop's sink for an air sensor: readings into the window, and at each window's end
/// one update to the air stage.
struct WindowSink<W> {
    sensor: &'static str,
    window: W,
    length: Duration,
    ends: Instant,
    tx: Sender<IndoorUpdate>,
    dropped: u64,
    faulty: bool,
}

impl<W: Window> WindowSink<W> {
    fn new(sensor: &'static str, length: Duration, tx: Sender<IndoorUpdate>, window: W) -> Self {
        Self { sensor, window, length, ends: Instant::now() + length, tx, dropped: 0, faulty: false }
    }

    /// At the stage's end: how many updates never reached the air stage.
    fn finish(&self) {
        if self.dropped > 0 {
            warn!(dropped = self.dropped, "air sensor stage ended; updates dropped in all / 공기질 갱신 누락 합계");
        }
    }

    fn send(&mut self, measurement: IndoorMeasurement, samples: usize) {
        let update = IndoorUpdate { sensor: self.sensor, at_ms: unix_ms(), samples, measurement };
        match self.tx.try_send(update) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                warn!(
                    dropped = self.dropped,
                    "air update dropped: the air stage is not keeping up / 공기질 갱신 누락: 처리 지연"
                );
            }
            Err(TrySendError::Closed(_)) => {
                self.dropped += 1;
                if self.dropped == 1 {
                    warn!("air update dropped: the air stage has stopped / 공기질 갱신 누락: 처리 단계 중지");
                }
            }
        }
    }
}

impl<W: Window> FrameSink<W::Frame> for WindowSink<W> {
    fn deliver(&mut self, frames: &mut Vec<W::Frame>) -> Result<(), String> {
        let verdict = self.window.take(frames);
        // Log the transitions only: a faulty sensor keeps answering.
        match (&verdict, self.faulty) {
            (Err(reason), false) => {
                warn!(reason = %reason, "air sensor faulty; its readings are left out / 공기질 센서 고장: 값 제외")
            }
            (Ok(()), true) => info!("air sensor plausible again / 공기질 센서 정상 복귀"),
            _ => {}
        }
        self.faulty = verdict.is_err();
        verdict
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if now < self.ends {
            return;
        }
        // Windows stay on their grid; after a long stall the next one starts now.
        self.ends += self.length;
        if self.ends <= now {
            self.ends = now + self.length;
        }
        if let Some((measurement, samples)) = self.window.close() {
            self.send(measurement, samples);
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn air(toml_text: &str) -> AirConfig {
        let config: AirConfig = toml::from_str(toml_text).expect("air config");
        config.validate().expect("valid");
        config
    }

    fn reading(pm25: u16, rh: Option<f32>) -> PmReading {
        PmReading {
            pm1: pm25 / 2,
            pm25,
            pm10: pm25 + 4,
            counts: [900, 300, 50, 5, 1, 0],
            hcho_ug_m3: rh.map(|_| 20),
            temperature_c: rh.map(|_| 22.0),
            humidity_pct: rh,
            ..PmReading::default()
        }
    }

    #[test]
    fn a_pm_window_is_warming_a_mean_or_nothing_and_corrects_humidity_when_asked() {
        let plain = air("[pms]\nport = \"p\"\nmodel = \"pms5003\"\n");
        let mut w = PmWindow { readings: Vec::new(), config: plain };
        assert_eq!(w.close(), None, "an empty window sends nothing");
        let warm = PmReading { warming: true, ..PmReading::default() };
        assert_eq!(w.take(&mut vec![PmsFrame::Reading(warm), PmsFrame::Ack([0xE1, 0])]), Ok(()));
        assert_eq!(w.close(), Some((IndoorMeasurement::Warming, 0)));
        let impossible = PmReading { pm25: 90, ..reading(10, None) };
        let mut frames = vec![
            PmsFrame::Reading(reading(10, None)),
            PmsFrame::Reading(impossible),
            PmsFrame::Reading(warm),
            PmsFrame::Reading(reading(30, None)),
        ];
        assert!(w.take(&mut frames).expect_err("impossible").contains("cannot exceed"));
        let Some((IndoorMeasurement::Particles { pm25, pm10, humidity_pct, .. }, 2)) = w.close() else {
            panic!("a mean of the two plausible readings");
        };
        assert_eq!((pm25, pm10, humidity_pct), (20.0, 24.0, None));

        let st = air("humidity_correction = true\n[pms]\nport = \"p\"\nmodel = \"pms5003st\"\n");
        let mut w = PmWindow { readings: Vec::new(), config: st };
        let err = w.take(&mut vec![PmsFrame::Reading(reading(20, None))]).expect_err("32-byte frames");
        assert!(err.contains("pms5003st"), "{err}");
        assert_eq!(w.take(&mut vec![PmsFrame::Reading(reading(20, Some(90.0)))]), Ok(()));
        let Some((IndoorMeasurement::Particles { pm25, humidity_pct, hcho_ug_m3, .. }, 1)) = w.close() else {
            panic!("one reading");
        };
        assert!(pm25 < 10.0, "at 90 % RH the correction more than halves PM2.5: {pm25}");
        assert_eq!((humidity_pct, hcho_ug_m3), (Some(90.0), Some(20.0)));
    }

    #[test]
    fn a_co2_window_leaves_out_warming_and_impossible_readings() {
        let config = air("[co2]\nport = \"p\"\nrange_ppm = 2000\n").co2.expect("co2");
        let mut w = Co2Window { readings: Vec::new(), config };
        assert_eq!(w.take(&mut vec![Co2Reading { ppm: 555, warming: true }]), Ok(()));
        assert_eq!(w.close(), Some((IndoorMeasurement::Warming, 0)));
        assert_eq!(w.close(), None);
        let mut frames = vec![
            Co2Reading { ppm: 555, warming: true },
            Co2Reading { ppm: 900, warming: false },
            Co2Reading { ppm: 2500, warming: false },
            Co2Reading { ppm: 1100, warming: false },
        ];
        assert!(w.take(&mut frames).expect_err("above the range").contains("2000 ppm range"));
        assert_eq!(w.close(), Some((IndoorMeasurement::Co2 { ppm: 1000.0 }, 2)));
    }
}

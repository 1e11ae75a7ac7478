//! Simulated air-quality sensors: the byte streams a Plantower particle sensor and an MH-Z19B
//! send over a daycare day, for the tests and (later) `dolbom sim air`.
//!
//! The day is a small physical model, deterministic for a seed:
//! - CO2: a well-mixed room, `dC/dt = G·n(t)/V − λ(t)·(C − C_out)`, with `n(t)` children
//!   arriving in the morning and leaving in the afternoon, each exhaling [`CO2_PER_CHILD_L_S`],
//!   `λ` the air changes per hour: low with the windows shut, high while the room is aired
//!   (mid-morning, after lunch, mid-afternoon). It climbs from about 450 ppm to 1200+ ppm and
//!   drops with each airing.
//! - PM: outdoor PM2.5 follows a slow daily curve; indoors relaxes towards a fraction of it at the
//!   air-change rate (so an airing brings outdoor air in), and play stirs up coarse dust in
//!   random spikes that settle over minutes. PM1, PM10, the CF=1 values and the particle counts
//!   are derived so that every reading is physically consistent (it passes plausibility).
//! - The sensors: the particle sensor's first frames are all zero (warming); the CO2 sensor
//!   sends 555 ppm during its preheat (one value users report; the datasheet says nothing).
//!   Noise bytes before a frame and frames with one byte flipped come at configurable rates.
//!
//! Instead of the day, a [`Profile`] (a CSV `t_s,pm25,pm10,co2`, interpolated linearly) plays
//! exact excursions for end-to-end tests and the demo. [`PmsResponder`] and [`Co2Responder`]
//! answer what the kiosk writes as the real sensors do, and [`play`] runs both on
//! pseudo-terminals in compressed time (`dolbom sim air`).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::sim::thermal::{slave_is_open, Pty, Rng};
use crate::sources::air::{mhz19, pms, PmReading};

/// CO2 a resting or lightly active young child exhales, L/s (adults at rest are about 0.005).
pub const CO2_PER_CHILD_L_S: f64 = 0.004;
/// What the simulated MH-Z19B answers during its preheat.
pub const PREHEAT_PPM: u16 = 555;

#[derive(Debug, Clone)]
pub struct AirSim {
    pub seed: u64,
    /// Seconds between samples (a PMS in active mode sends about one frame a second; the CO2
    /// sensor is polled every 5 s; tests use a coarser step).
    pub period_s: f64,
    /// Time of day the stream starts, in hours (7.0 = 07:00).
    pub start_hour: f64,
    pub hours: f64,
    pub children: u32,
    pub room_m3: f64,
    pub outdoor_co2_ppm: f64,
    /// Send the PMS5003ST's 40-byte frames (formaldehyde, temperature, humidity).
    pub st: bool,
    /// All-zero frames at the start.
    pub warmup_frames: usize,
    /// Seconds of CO2 preheat at the start.
    pub preheat_s: f64,
    /// Fraction of frames preceded by noise bytes.
    pub noise: f64,
    /// Fraction of frames sent with one byte changed.
    pub corrupt: f64,
}

impl Default for AirSim {
    fn default() -> Self {
        Self {
            seed: 1,
            period_s: 5.0,
            start_hour: 7.0,
            hours: 12.0,
            children: 15,
            room_m3: 150.0,
            outdoor_co2_ppm: 420.0,
            st: false,
            warmup_frames: 6,
            preheat_s: 180.0,
            noise: 0.05,
            corrupt: 0.02,
        }
    }
}

/// One step of the simulated day: the true values and the bytes each sensor sends for them.
#[derive(Debug, Clone, PartialEq)]
pub struct AirSample {
    /// Seconds since the start of the stream.
    pub t_s: f64,
    pub pm: PmReading,
    pub co2_ppm: u16,
    /// The CO2 sensor is still in its preheat.
    pub co2_warming: bool,
    /// What the particle sensor sends: noise (maybe), then the frame (maybe damaged).
    pub pms_bytes: Vec<u8>,
    pub pms_intact: bool,
    /// What the CO2 sensor answers to one poll.
    pub mhz_bytes: Vec<u8>,
    pub mhz_intact: bool,
}

/// Children in the room at `hour`: arriving 08:00–09:30, all there until 16:00, gone by 18:00.
pub fn occupancy(children: u32, hour: f64) -> f64 {
    let n = f64::from(children);
    let ramp = |from: f64, to: f64| ((hour - from) / (to - from)).clamp(0.0, 1.0);
    n * (ramp(8.0, 9.5) - ramp(16.0, 18.0))
}

/// Air changes per hour at `hour`: windows shut, except three airings.
pub fn air_changes(hour: f64) -> f64 {
    let airings = [(10.5, 10.75), (12.75, 13.0), (15.0, 15.25)];
    if airings.iter().any(|(a, b)| (*a..*b).contains(&hour)) {
        8.0
    } else {
        1.5
    }
}

/// Outdoor PM2.5 at `hour`, µg/m³: higher in the morning rush, lower in the afternoon.
pub fn outdoor_pm25(hour: f64) -> f64 {
    22.0 + 10.0 * (std::f64::consts::TAU * (hour - 2.0) / 24.0).cos().max(-1.0)
}

/// Above ~30 µg/m³ the "standard particle" (CF=1) value rises faster than the atmospheric one.
fn cf1(v: f64) -> f64 {
    if v <= 30.0 {
        v
    } else {
        30.0 + (v - 30.0) * 1.5
    }
}

/// A mass concentration as the sensor sends it.
fn ug(v: f64) -> u16 {
    v.round().clamp(0.0, 999.0) as u16
}

/// A consistent particle reading with exactly the given PM2.5 and PM10 (µg/m³, PM10 at least
/// PM2.5): the coarse part is what PM10 has beyond what fine dust alone gives it.
pub fn pm_reading_for(pm25: f64, pm10: f64, rng: &mut Rng) -> PmReading {
    let pm25 = pm25.max(0.0);
    let pm10 = pm10.max(pm25);
    let mut r = pm_reading(pm25, (pm10 - pm25 * 1.15).max(0.0), rng);
    r.pm10 = ug(pm10);
    r.pm10_cf1 = ug(cf1(pm10)).max(r.pm25_cf1);
    r
}

/// A consistent particle reading for the given PM2.5 and coarse dust (µg/m³).
pub fn pm_reading(pm25: f64, coarse: f64, rng: &mut Rng) -> PmReading {
    let pm25 = pm25.max(0.0);
    let pm1 = 0.65 * pm25;
    let pm10 = pm25 * 1.15 + coarse.max(0.0);
    let u = ug;
    let jitter = |rng: &mut Rng| 1.0 + 0.05 * rng.gauss().clamp(-2.0, 2.0);
    let n03 = (pm25 * 70.0 + 150.0) * jitter(rng);
    let n05 = n03 * 0.3;
    let n10 = n05 * 0.22;
    let n25 = n10 * 0.12 + coarse * 2.0;
    let n50 = n25 * 0.25;
    let n100 = n50 * 0.3;
    // Counts are cumulative: each at most the one before, whatever the jitter.
    let mut counts = [n03, n05, n10, n25, n50, n100].map(|c| c.round().clamp(0.0, 65535.0) as u16);
    let mut above = u16::MAX;
    for c in &mut counts {
        *c = (*c).min(above);
        above = *c;
    }
    PmReading {
        pm1_cf1: u(cf1(pm1)),
        pm25_cf1: u(cf1(pm25)),
        pm10_cf1: u(cf1(pm10)),
        pm1: u(pm1),
        pm25: u(pm25),
        pm10: u(pm10),
        counts,
        version: 0x97,
        ..PmReading::default()
    }
}

/// Noise before a frame and frames with one byte changed, at these rates (0..=1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Wire {
    pub noise: f64,
    pub corrupt: f64,
}

impl Wire {
    /// `frame` as it arrives: maybe after noise, maybe damaged.
    pub fn send(&self, frame: &[u8], rng: &mut Rng) -> Vec<u8> {
        let mut out = if rng.next_f64() < self.noise { noise(rng) } else { Vec::new() };
        let mut f = frame.to_vec();
        if !f.is_empty() && rng.next_f64() < self.corrupt {
            corrupt(&mut f, rng);
        }
        out.extend_from_slice(&f);
        out
    }
}

/// Changes one byte of `frame` to another value.
fn corrupt(frame: &mut [u8], rng: &mut Rng) {
    let at = (rng.next_f64() * frame.len() as f64) as usize % frame.len();
    frame[at] ^= 1 + (rng.next_f64() * 255.0) as u8;
}

fn noise(rng: &mut Rng) -> Vec<u8> {
    (0..1 + (rng.next_f64() * 40.0) as usize).map(|_| (rng.next_f64() * 256.0) as u8).collect()
}

/// The simulated day, one sample per `period_s`.
pub fn day(sim: &AirSim) -> Vec<AirSample> {
    let mut rng = Rng::new(sim.seed);
    let steps = (sim.hours * 3600.0 / sim.period_s).max(0.0) as usize;
    let mut co2 = sim.outdoor_co2_ppm + 30.0;
    let mut indoor_pm25 = 0.5 * outdoor_pm25(sim.start_hour);
    let mut coarse = 0.0f64;
    let mut out = Vec::with_capacity(steps);
    for i in 0..steps {
        let t_s = i as f64 * sim.period_s;
        let hour = sim.start_hour + t_s / 3600.0;
        // Integrate in steps of at most 10 s so an airing (8 changes an hour) stays stable.
        let sub = (sim.period_s / 10.0).ceil().max(1.0) as usize;
        let dt_h = sim.period_s / 3600.0 / sub as f64;
        for _ in 0..sub {
            let lambda = air_changes(hour);
            let generation_m3_h = occupancy(sim.children, hour) * CO2_PER_CHILD_L_S * 3.6;
            co2 += (generation_m3_h / sim.room_m3 * 1e6 - lambda * (co2 - sim.outdoor_co2_ppm)) * dt_h;
            // Indoors tends to half the outdoor level (filtered by the building) at the air-change rate.
            let target = if lambda > 2.0 { outdoor_pm25(hour) } else { 0.5 * outdoor_pm25(hour) };
            indoor_pm25 += (target - indoor_pm25) * (lambda * dt_h).min(1.0);
            coarse *= (-dt_h * 6.0).exp(); // settles over ~10 minutes
        }
        let playing = occupancy(sim.children, hour) / f64::from(sim.children.max(1));
        if rng.next_f64() < 0.02 * playing * sim.period_s / 5.0 {
            coarse += 20.0 + 40.0 * rng.next_f64();
        }
        let mut pm = if i < sim.warmup_frames {
            PmReading { version: 0x97, ..PmReading::default() }
        } else {
            pm_reading(indoor_pm25 + rng.gauss() * 0.8, coarse, &mut rng)
        };
        pm.warming = pm.is_all_zero();
        if sim.st {
            pm.hcho_ug_m3 = Some((12.0 + 6.0 * rng.next_f64()).round() as u16);
            pm.temperature_c = Some(((21.5 + playing * 1.5 + rng.gauss() * 0.1) * 10.0).round() as f32 / 10.0);
            pm.humidity_pct = Some(((45.0 + 10.0 * playing + rng.gauss()) * 10.0).round() as f32 / 10.0);
        }
        let co2_warming = t_s < sim.preheat_s;
        let co2_ppm =
            if co2_warming { PREHEAT_PPM } else { (co2 + rng.gauss() * 5.0).round().clamp(0.0, 5000.0) as u16 };

        let mut pms_bytes = if rng.next_f64() < sim.noise { noise(&mut rng) } else { Vec::new() };
        let mut frame = pms::encode(&pm);
        let pms_intact = rng.next_f64() >= sim.corrupt;
        if !pms_intact {
            corrupt(&mut frame, &mut rng);
        }
        pms_bytes.extend_from_slice(&frame);

        let mut mhz_bytes = if rng.next_f64() < sim.noise { noise(&mut rng) } else { Vec::new() };
        let mut answer = mhz19::encode_answer(co2_ppm, [0x41, 0, 0, 0]);
        let mhz_intact = rng.next_f64() >= sim.corrupt;
        if !mhz_intact {
            corrupt(&mut answer, &mut rng);
        }
        mhz_bytes.extend_from_slice(&answer);

        out.push(AirSample { t_s, pm, co2_ppm, co2_warming, pms_bytes, pms_intact, mhz_bytes, mhz_intact });
    }
    out
}

/// One row of a [`Profile`]: the values at a moment, seconds since the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfilePoint {
    pub t_s: f64,
    pub pm25: f64,
    pub pm10: f64,
    pub co2_ppm: f64,
}

/// A scripted course of the air: rows `t_s,pm25,pm10,co2`, linearly interpolated between rows
/// and held before the first and after the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    points: Vec<ProfilePoint>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProfileError {
    #[error("profile line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("the profile has no rows (expected `t_s,pm25,pm10,co2` lines) / 프로파일에 값이 없음")]
    Empty,
}

/// The highest values a profile may ask for: what the sensors can send at all.
pub const PROFILE_MAX_PM: f64 = 999.0;
pub const PROFILE_MAX_CO2: f64 = 10_000.0;
/// The longest profile (a week), so a typo in a time cannot make a run endless.
pub const PROFILE_MAX_S: f64 = 7.0 * 86_400.0;

impl Profile {
    /// Parses the CSV: an optional header line `t_s,pm25,pm10,co2`, blank lines and `#` comments
    /// allowed; times strictly increasing from 0 or later; PM10 at least PM2.5.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let mut points: Vec<ProfilePoint> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let row = raw.split('#').next().unwrap_or_default().trim();
            if row.is_empty() {
                continue;
            }
            let fields: Vec<&str> = row.split(',').map(str::trim).collect();
            if points.is_empty() && fields.first().is_some_and(|f| f.starts_with(|c: char| c.is_ascii_alphabetic())) {
                if fields != ["t_s", "pm25", "pm10", "co2"] {
                    let message = format!("header `{row}`: expected `t_s,pm25,pm10,co2` / 머리글이 다름");
                    return Err(ProfileError::Line { line, message });
                }
                continue;
            }
            let err = |message: String| ProfileError::Line { line, message };
            let [t_s, pm25, pm10, co2_ppm] = <[&str; 4]>::try_from(fields.as_slice())
                .map_err(|_| err(format!("`{row}`: expected 4 values t_s,pm25,pm10,co2 / 값 4개가 필요함")))?
                .map(|f| f.parse::<f64>().map_err(|_| f.to_string()));
            let num = |v: Result<f64, String>, name: &str, lo: f64, hi: f64| -> Result<f64, ProfileError> {
                match v {
                    Ok(x) if (lo..=hi).contains(&x) => Ok(x),
                    Ok(x) => Err(err(format!("{name} = {x}: must be between {lo} and {hi} / 범위 밖"))),
                    Err(s) => Err(err(format!("{name} = `{s}`: not a number / 숫자가 아님"))),
                }
            };
            let p = ProfilePoint {
                t_s: num(t_s, "t_s", 0.0, PROFILE_MAX_S)?,
                pm25: num(pm25, "pm25", 0.0, PROFILE_MAX_PM)?,
                pm10: num(pm10, "pm10", 0.0, PROFILE_MAX_PM)?,
                co2_ppm: num(co2_ppm, "co2", 0.0, PROFILE_MAX_CO2)?,
            };
            if p.pm10 < p.pm25 {
                return Err(err(format!(
                    "pm10 {} below pm25 {}: PM10 includes PM2.5 / PM10이 PM2.5보다 작음",
                    p.pm10, p.pm25
                )));
            }
            if let Some(last) = points.last().filter(|last| p.t_s <= last.t_s) {
                return Err(err(format!("t_s {} not after {} / 시간이 증가하지 않음", p.t_s, last.t_s)));
            }
            points.push(p);
        }
        if points.is_empty() {
            return Err(ProfileError::Empty);
        }
        Ok(Self { points })
    }

    /// The values at `t_s`, interpolated linearly.
    pub fn at(&self, t_s: f64) -> ProfilePoint {
        let after = self.points.partition_point(|p| p.t_s <= t_s);
        let (Some(a), Some(b)) = (after.checked_sub(1).and_then(|i| self.points.get(i)), self.points.get(after)) else {
            // Before the first row or after the last: held.
            let p = if after == 0 { self.points[0] } else { self.points[self.points.len() - 1] };
            return ProfilePoint { t_s, ..p };
        };
        let k = (t_s - a.t_s) / (b.t_s - a.t_s);
        let lerp = |x: f64, y: f64| x + (y - x) * k;
        ProfilePoint {
            t_s,
            pm25: lerp(a.pm25, b.pm25),
            pm10: lerp(a.pm10, b.pm10),
            co2_ppm: lerp(a.co2_ppm, b.co2_ppm),
        }
    }

    /// The time of the last row.
    pub fn end_s(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.t_s)
    }
}

/// What is played: the simulated day, sample by sample, or a profile.
#[derive(Debug, Clone)]
pub enum Script {
    Day { samples: Vec<AirSample>, period_s: f64 },
    Profile(Profile),
}

/// The sensors' values at one moment of a script.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AirNow {
    pub pm: PmReading,
    pub co2_ppm: u16,
}

impl Script {
    pub fn day(sim: &AirSim) -> Self {
        Script::Day { samples: day(sim), period_s: sim.period_s }
    }

    /// Where the script ends, in simulated seconds.
    pub fn end_s(&self) -> f64 {
        match self {
            Script::Day { samples, period_s } => samples.len() as f64 * period_s,
            Script::Profile(p) => p.end_s(),
        }
    }

    /// The values at `t_s` (`st`: the particle sensor is a PMS5003ST; a profile then reports
    /// fixed indoor formaldehyde, temperature and humidity).
    pub fn at(&self, t_s: f64, st: bool, rng: &mut Rng) -> AirNow {
        match self {
            Script::Day { samples, period_s } => {
                let i = ((t_s / period_s).max(0.0) as usize).min(samples.len().saturating_sub(1));
                samples.get(i).map_or(AirNow { pm: PmReading::default(), co2_ppm: PREHEAT_PPM }, |s| AirNow {
                    pm: s.pm,
                    co2_ppm: s.co2_ppm,
                })
            }
            Script::Profile(p) => {
                let v = p.at(t_s);
                let mut pm = pm_reading_for(v.pm25, v.pm10, rng);
                if st {
                    pm.hcho_ug_m3 = Some(15);
                    pm.temperature_c = Some(22.0);
                    pm.humidity_pct = Some(45.0);
                }
                AirNow { pm, co2_ppm: v.co2_ppm.round() as u16 }
            }
        }
    }
}

/// Keeps a command buffer from growing on noise: a command is never longer than this.
const MAX_COMMAND_BUF: usize = 64;

/// A simulated Plantower: active at power-on, switched by the mode command, answering mode and
/// sleep commands with an ack and read requests (in passive mode) with a frame.
pub struct PmsResponder {
    mode: pms::Mode,
    input: Vec<u8>,
    wire: Wire,
    rng: Rng,
    /// Read requests answered so far.
    pub reads: u64,
}

impl PmsResponder {
    pub fn new(wire: Wire, seed: u64) -> Self {
        Self { mode: pms::Mode::Active, input: Vec::new(), wire, rng: Rng::new(seed), reads: 0 }
    }

    pub fn mode(&self) -> pms::Mode {
        self.mode
    }

    /// What the sensor sends in answer to `input` (bytes the kiosk wrote, any split, noise
    /// passed over) when the air is `pm`.
    pub fn answer(&mut self, input: &[u8], pm: &PmReading) -> Vec<u8> {
        self.input.extend_from_slice(input);
        let mut out = Vec::new();
        while let Some(start) = self.input.windows(2).position(|w| w == pms::HEADER) {
            self.input.drain(..start);
            if self.input.len() < 7 {
                break;
            }
            let cmd: [u8; 7] = [0, 1, 2, 3, 4, 5, 6].map(|i| self.input[i]);
            if pms::command(cmd[2], u16::from_be_bytes([cmd[3], cmd[4]])) != cmd {
                self.input.drain(..2);
                continue;
            }
            self.input.drain(..7);
            match cmd[2] {
                pms::CMD_MODE => {
                    self.mode = if cmd[4] == 0 { pms::Mode::Passive } else { pms::Mode::Active };
                    out.extend(self.wire.send(&pms::encode_ack([cmd[2], cmd[4]]), &mut self.rng));
                }
                pms::CMD_SLEEP => out.extend(self.wire.send(&pms::encode_ack([cmd[2], cmd[4]]), &mut self.rng)),
                pms::CMD_READ if self.mode == pms::Mode::Passive => {
                    self.reads += 1;
                    out.extend(self.frame(pm));
                }
                _ => {}
            }
        }
        let keep = usize::from(self.input.last() == Some(&pms::HEADER[0]));
        if self.input.len() > MAX_COMMAND_BUF || !self.input.starts_with(&pms::HEADER[..self.input.len().min(2)]) {
            let n = self.input.len() - keep;
            self.input.drain(..n);
        }
        out
    }

    /// One frame as the sensor sends it (after noise, maybe damaged).
    pub fn frame(&mut self, pm: &PmReading) -> Vec<u8> {
        self.wire.send(&pms::encode(pm), &mut self.rng)
    }
}

/// A simulated MH-Z19B: answers each valid read command with the current concentration; other
/// commands (ABC, range) are taken silently; noise between commands is passed over.
pub struct Co2Responder {
    input: Vec<u8>,
    wire: Wire,
    rng: Rng,
    /// Read commands answered so far, and other valid commands taken.
    pub reads: u64,
    pub others: u64,
}

impl Co2Responder {
    pub fn new(wire: Wire, seed: u64) -> Self {
        Self { input: Vec::new(), wire, rng: Rng::new(seed), reads: 0, others: 0 }
    }

    pub fn answer(&mut self, input: &[u8], ppm: u16) -> Vec<u8> {
        self.input.extend_from_slice(input);
        let mut out = Vec::new();
        while let Some(start) = self.input.windows(2).position(|w| w == [0xFF, 0x01]) {
            self.input.drain(..start);
            if self.input.len() < mhz19::FRAME_LEN {
                break;
            }
            let cmd: [u8; mhz19::FRAME_LEN] = std::array::from_fn(|i| self.input[i]);
            if mhz19::checksum(&cmd) != cmd[8] {
                self.input.drain(..2);
                continue;
            }
            self.input.drain(..mhz19::FRAME_LEN);
            if cmd[2] == mhz19::CMD_READ {
                self.reads += 1;
                out.extend(self.wire.send(&mhz19::encode_answer(ppm, [0x41, 0, 0, 0]), &mut self.rng));
            } else {
                self.others += 1;
            }
        }
        if self.input.len() > MAX_COMMAND_BUF || !self.input.starts_with(&[0xFF, 0x01][..self.input.len().min(2)]) {
            let keep = usize::from(self.input.last() == Some(&0xFF));
            let n = self.input.len() - keep;
            self.input.drain(..n);
        }
        out
    }
}

/// How [`play`] runs a script.
#[derive(Debug, Clone)]
pub struct PlaySettings {
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated seconds between the frames a PMS streams in active mode.
    pub period_s: f64,
    /// The particle sensor is a PMS5003ST (profiles only; the day knows it already).
    pub st: bool,
    pub wire: Wire,
    pub seed: u64,
    /// Stop after this much real time (else at the script's end).
    pub run_for: Option<Duration>,
}

/// What [`play`] sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayStats {
    pub pms_frames: u64,
    pub pms_reads: u64,
    pub co2_answers: u64,
}

/// Plays `script` on the sensors' pseudo-terminals: the clock starts when the kiosk first opens
/// one of them; the CO2 sensor answers every read, the particle sensor streams in active mode
/// and answers read requests in passive mode. Ends at the script's end or after `run_for`.
pub fn play(
    mut pms_pty: Option<&mut Pty>,
    mut co2_pty: Option<&mut Pty>,
    script: &Script,
    settings: &PlaySettings,
) -> std::io::Result<PlayStats> {
    let masters: Vec<&File> = pms_pty.iter().chain(co2_pty.iter()).map(|p| &p.master).collect();
    let waiting = Instant::now();
    while !masters.iter().any(|m| slave_is_open(m)) {
        if waiting.elapsed() > Duration::from_secs(300) {
            return Err(std::io::Error::other("nobody opened the simulated sensors within 5 minutes"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for m in &masters {
        set_nonblocking(m);
    }
    let mut rng = Rng::new(settings.seed);
    let mut pms = PmsResponder::new(settings.wire, settings.seed ^ 0x504D);
    let mut co2 = Co2Responder::new(settings.wire, settings.seed ^ 0xC02);
    let mut stats = PlayStats::default();
    let frame_every = Duration::from_secs_f64(settings.period_s / settings.speed);
    let started = Instant::now();
    let mut next_frame = started;
    let mut buf = [0u8; 512];
    loop {
        let real = started.elapsed();
        let t_s = real.as_secs_f64() * settings.speed;
        let ran_out = settings.run_for.map_or(t_s > script.end_s(), |r| real >= r);
        if ran_out {
            break;
        }
        let now = script.at(t_s, settings.st, &mut rng);
        if let Some(pty) = pms_pty.as_deref_mut() {
            let input = read_available(&mut pty.master, &mut buf);
            let answer = pms.answer(&input, &now.pm);
            write_lossy(&mut pty.master, &answer);
            if pms.mode() == pms::Mode::Active && Instant::now() >= next_frame {
                next_frame += frame_every;
                if next_frame < Instant::now() {
                    next_frame = Instant::now() + frame_every;
                }
                if write_lossy(&mut pty.master, &pms.frame(&now.pm)) {
                    stats.pms_frames += 1;
                }
            }
        }
        if let Some(pty) = co2_pty.as_deref_mut() {
            let input = read_available(&mut pty.master, &mut buf);
            let answer = co2.answer(&input, now.co2_ppm);
            write_lossy(&mut pty.master, &answer);
        }
        stats.pms_reads = pms.reads;
        stats.co2_answers = co2.reads;
        // Wake for the kiosk's commands, and in time for the next streamed frame.
        let mut limit = Duration::from_millis(10);
        if pms_pty.is_some() && pms.mode() == pms::Mode::Active {
            limit = limit.min(next_frame.saturating_duration_since(Instant::now()));
        }
        wait_for_input(pms_pty.as_deref().into_iter().chain(co2_pty.as_deref()), limit);
    }
    Ok(stats)
}

fn set_nonblocking(f: &File) {
    // SAFETY: setting O_NONBLOCK on our own descriptor.
    unsafe {
        let fd = f.as_raw_fd();
        libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK);
    }
}

/// Everything the kiosk wrote that is waiting (nothing while the port is closed).
fn read_available(master: &mut File, buf: &mut [u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(n @ 1..) = master.read(buf) {
        out.extend_from_slice(&buf[..n]);
        if out.len() > 1 << 16 {
            break;
        }
    }
    out
}

/// Writes what a sensor sends; lost when nobody has the port open or its buffer is full, as on
/// a real line. True when written.
fn write_lossy(master: &mut File, bytes: &[u8]) -> bool {
    !bytes.is_empty() && master.write_all(bytes).is_ok()
}

/// Sleeps until one of the ptys has input or `limit` passes (10 ms while the kiosk has none of
/// them open: a closed slave makes poll return at once).
fn wait_for_input<'a>(ptys: impl Iterator<Item = &'a Pty>, limit: Duration) {
    let mut fds: Vec<libc::pollfd> =
        ptys.map(|p| libc::pollfd { fd: p.master.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: a valid array of pollfds, its length, and a bounded timeout.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, limit.as_millis() as libc::c_int) };
    if rc > 0 && !fds.iter().any(|f| f.revents & libc::POLLIN != 0) {
        // Hung up (no one has the port open): nothing to stream to, so no hurry.
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::air::plausibility;

    #[test]
    fn the_day_has_the_expected_shape_and_replays_from_its_seed() {
        let sim = AirSim { noise: 0.0, corrupt: 0.0, ..AirSim::default() };
        let a = day(&sim);
        assert_eq!(a, day(&sim), "deterministic");
        assert_ne!(a, day(&AirSim { seed: 2, ..sim.clone() }), "the seed matters");
        let at = |hour: f64| &a[((hour - sim.start_hour) * 3600.0 / sim.period_s) as usize];
        let ppm = |hour: f64| at(hour).co2_ppm;
        assert!(ppm(7.5) < 520, "empty room in the morning: {}", ppm(7.5));
        assert!(ppm(10.45) > 1200, "full room before the airing: {}", ppm(10.45));
        assert!(ppm(10.74) < ppm(10.45) - 300, "airing brings it down: {} -> {}", ppm(10.45), ppm(10.74));
        assert!(ppm(18.9) < 700, "empty again in the evening: {}", ppm(18.9));
        assert!(a[..sim.warmup_frames].iter().all(|s| s.pm.warming));
        for s in &a[sim.warmup_frames..] {
            assert!(!s.pm.warming);
            assert_eq!(plausibility::check_pm(&s.pm), Ok(()), "at {} s: {:?}", s.t_s, s.pm);
        }
        let max_pm10 = a.iter().map(|s| s.pm.pm10).max().unwrap_or(0);
        assert!(max_pm10 > a[200].pm.pm25 + 15, "play stirs up coarse dust: max PM10 {max_pm10}");
    }
}

#[cfg(test)]
mod profile_tests {
    use super::*;
    use crate::sources::air::plausibility;
    use crate::sources::air::pms::{Mode, Pms};
    use crate::sources::air::{PmsFrame, SerialDecoder};

    #[test]
    fn a_profile_parses_interpolates_and_holds_its_ends() {
        let p = Profile::parse("t_s,pm25,pm10,co2\n# a rise\n0, 10, 20, 600\n\n100,30,50,1400 # peak\n200,30,50,800\n")
            .expect("profile");
        assert_eq!(p.end_s(), 200.0);
        let at = |t: f64| {
            let v = p.at(t);
            (v.pm25, v.pm10, v.co2_ppm)
        };
        assert_eq!(at(-5.0), (10.0, 20.0, 600.0));
        assert_eq!(at(0.0), (10.0, 20.0, 600.0));
        assert_eq!(at(25.0), (15.0, 27.5, 800.0));
        assert_eq!(at(150.0), (30.0, 50.0, 1100.0));
        assert_eq!(at(1e6), (30.0, 50.0, 800.0));
        let bad = [
            ("", "no rows"),
            ("t,pm,x,y\n0,1,2,3\n", "header"),
            ("0,1,2\n", "4 values"),
            ("0,1,2,x\n", "not a number"),
            ("0,1,2,nan\n", "between"),
            ("0,5,2,400\n", "below pm25"),
            ("0,1,2,400\n0,1,2,400\n", "not after"),
            ("-1,1,2,400\n", "between"),
            ("0,1000,1000,400\n", "between"),
        ];
        for (text, what) in bad {
            let err = Profile::parse(text).expect_err(text).to_string();
            assert!(err.contains(what), "{text:?}: {err}");
        }
    }

    #[test]
    fn profile_readings_carry_the_exact_values_and_are_plausible() {
        let mut rng = Rng::new(3);
        for (pm25, pm10) in [(0.0, 0.0), (12.0, 12.0), (35.0, 36.0), (80.0, 200.0), (999.0, 999.0)] {
            let r = pm_reading_for(pm25, pm10, &mut rng);
            assert_eq!((r.pm25, r.pm10), (pm25 as u16, pm10 as u16));
            assert_eq!(plausibility::check_pm(&r), Ok(()), "{r:?}");
            assert!(!r.is_all_zero(), "clean air is not warm-up");
        }
    }

    #[test]
    fn the_responders_answer_what_the_kiosk_asks_through_noise() {
        let pm = pm_reading_for(20.0, 30.0, &mut Rng::new(1));
        let mut s = PmsResponder::new(Wire::default(), 1);
        assert_eq!(s.mode(), Mode::Active);
        assert!(s.answer(&pms::read(), &pm).is_empty(), "active mode: reads are not answered");
        let input = [&[0x42, 0x00, 0x13][..], &pms::wake(), &[0x42], &pms::passive_mode()].concat();
        let mut out = Vec::new();
        for b in &input {
            out.extend(s.answer(std::slice::from_ref(b), &pm));
        }
        assert_eq!(s.mode(), Mode::Passive);
        out.extend(s.answer(&[&pms::read()[..], &[0x99], &pms::read()[..4]].concat(), &pm));
        out.extend(s.answer(&pms::read()[4..], &pm));
        let mut d = Pms::new(Mode::Passive);
        let mut frames = Vec::new();
        d.feed(&out, &mut frames);
        let expected = [
            PmsFrame::Ack([pms::CMD_SLEEP, 1]),
            PmsFrame::Ack([pms::CMD_MODE, 0]),
            PmsFrame::Reading(pm),
            PmsFrame::Reading(pm),
        ];
        assert_eq!(frames, expected);
        assert_eq!(s.reads, 2);

        let mut c = Co2Responder::new(Wire::default(), 1);
        let input =
            [&[0xFF, 0xFF, 0x01][..], &mhz19::abc(false), &mhz19::poll(), &[0xFF, 0x01, 0x86, 0, 0, 0, 0, 0, 0x78]]
                .concat();
        let out = c.answer(&input, 1234);
        assert_eq!(out, mhz19::encode_answer(1234, [0x41, 0, 0, 0]));
        assert_eq!((c.reads, c.others), (1, 1), "the damaged poll is not answered");
    }
}

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

use crate::sim::thermal::Rng;
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

/// A consistent particle reading for the given PM2.5 and coarse dust (µg/m³).
pub fn pm_reading(pm25: f64, coarse: f64, rng: &mut Rng) -> PmReading {
    let pm25 = pm25.max(0.0);
    let pm1 = 0.65 * pm25;
    let pm10 = pm25 * 1.15 + coarse.max(0.0);
    // Above ~30 µg/m³ the "standard particle" value rises faster than the atmospheric one.
    let cf1 = |v: f64| if v <= 30.0 { v } else { 30.0 + (v - 30.0) * 1.5 };
    let u = |v: f64| v.round().clamp(0.0, 999.0) as u16;
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

//! The daycare limits of the Indoor Air Quality Control Act (실내공기질 관리법: PM10 75, PM2.5
//! 35 µg/m³, CO2 1,000 ppm, HCHO 80 µg/m³), and a watch per pollutant that says when a value has
//! exceeded its limit and when it has recovered, without flapping.
//!
//! A value must stay above the limit for `min_duration_secs` to be "exceeded", and below the
//! limit less `hysteresis_pct` for as long to be "recovered". A gap in the values (the sensor
//! warming up, unplugged, or silent for longer than the stage's stale age) restarts the count:
//! missing values neither raise nor recover.

use serde::Deserialize;

use dolbom_contract::Pollutant;
use dolbom_face::config::in_range;

/// `[air.limits]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AirLimitsConfig {
    /// µg/m³.
    pub pm10: f32,
    /// µg/m³.
    pub pm25: f32,
    /// ppm.
    pub co2: f32,
    /// µg/m³.
    pub hcho: f32,
    /// Recovered only below limit × (1 − hysteresis_pct / 100).
    pub hysteresis_pct: f32,
    /// How long a value must stay past the limit (or the recovery level) to count.
    pub min_duration_secs: u64,
}

impl Default for AirLimitsConfig {
    fn default() -> Self {
        Self { pm10: 75.0, pm25: 35.0, co2: 1000.0, hcho: 80.0, hysteresis_pct: 10.0, min_duration_secs: 300 }
    }
}

impl AirLimitsConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        // Bounds a sensor can report and a limit could sensibly be set to; NaN fails them all.
        in_range("air.limits.pm10", self.pm10, 1.0, 1000.0)?;
        in_range("air.limits.pm25", self.pm25, 1.0, 1000.0)?;
        in_range("air.limits.co2", self.co2, 400.0, 10_000.0)?;
        in_range("air.limits.hcho", self.hcho, 1.0, 5000.0)?;
        in_range("air.limits.hysteresis_pct", self.hysteresis_pct, 0.0, 50.0)?;
        // A day: a limit exceeded for longer than that without an alert is no alert at all.
        in_range("air.limits.min_duration_secs", self.min_duration_secs, 0, 86_400)
    }

    pub fn limit(&self, p: Pollutant) -> f32 {
        match p {
            Pollutant::Pm10 => self.pm10,
            Pollutant::Pm25 => self.pm25,
            Pollutant::Co2 => self.co2,
            Pollutant::Hcho => self.hcho,
        }
    }

    pub fn recover_below(&self, p: Pollutant) -> f32 {
        self.limit(p) * (1.0 - self.hysteresis_pct / 100.0)
    }

    /// A watch for one pollutant; a gap longer than `max_gap_ms` between values restarts a count.
    pub fn watch(&self, p: Pollutant, max_gap_ms: i64) -> LimitWatch {
        LimitWatch::new(self.limit(p), self.recover_below(p), self.min_duration_secs as i64 * 1000, max_gap_ms)
    }
}

/// A change of a pollutant's state; `since_ms` is when the run of values that made it began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    Exceeded { since_ms: i64, at_ms: i64, value: f32 },
    Recovered { since_ms: i64, at_ms: i64, value: f32 },
}

/// One pollutant's state: a pure machine fed (time, value).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitWatch {
    limit: f32,
    recover_below: f32,
    min_duration_ms: i64,
    max_gap_ms: i64,
    exceeded: bool,
    /// When the current run of values on the other side began.
    run_since: Option<i64>,
    last_ms: Option<i64>,
}

impl LimitWatch {
    pub fn new(limit: f32, recover_below: f32, min_duration_ms: i64, max_gap_ms: i64) -> Self {
        Self {
            limit,
            recover_below: recover_below.min(limit),
            min_duration_ms: min_duration_ms.max(0),
            max_gap_ms: max_gap_ms.max(0),
            exceeded: false,
            run_since: None,
            last_ms: None,
        }
    }

    pub fn is_exceeded(&self) -> bool {
        self.exceeded
    }

    pub fn limit(&self) -> f32 {
        self.limit
    }

    pub fn recover_below(&self) -> f32 {
        self.recover_below
    }

    /// The limit was already exceeded before a restart: only a recovery comes next.
    pub fn restore_exceeded(&mut self) {
        self.exceeded = true;
        self.run_since = None;
    }

    /// The value is missing (warming up, sensor gone): whatever run was being counted is over.
    pub fn interrupt(&mut self) {
        self.run_since = None;
        self.last_ms = None;
    }

    /// One value; a transition when it completes one. Values that are not numbers, or older
    /// than the last one, are ignored.
    pub fn observe(&mut self, at_ms: i64, value: f32) -> Option<Transition> {
        if !value.is_finite() || self.last_ms.is_some_and(|last| at_ms < last) {
            return None;
        }
        if self.last_ms.is_some_and(|last| at_ms - last > self.max_gap_ms) {
            self.run_since = None;
        }
        self.last_ms = Some(at_ms);
        let across = if self.exceeded { value < self.recover_below } else { value > self.limit };
        if !across {
            self.run_since = None;
            return None;
        }
        let since_ms = *self.run_since.get_or_insert(at_ms);
        if at_ms - since_ms < self.min_duration_ms {
            return None;
        }
        self.run_since = None;
        self.exceeded = !self.exceeded;
        Some(if self.exceeded {
            Transition::Exceeded { since_ms, at_ms, value }
        } else {
            Transition::Recovered { since_ms, at_ms, value }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 300_000;
    const GAP: i64 = 180_000;

    fn pm25() -> LimitWatch {
        AirLimitsConfig::default().watch(Pollutant::Pm25, GAP)
    }

    /// Feeds (minute, value) pairs; returns the transitions with the minute they came at.
    fn feed(w: &mut LimitWatch, values: &[(i64, f32)]) -> Vec<(i64, Transition)> {
        values.iter().filter_map(|&(m, v)| w.observe(m * 60_000, v).map(|t| (m, t))).collect()
    }

    #[test]
    fn an_excursion_raises_once_after_the_minimum_duration_and_recovers_once() {
        let mut w = pm25();
        let mut values: Vec<(i64, f32)> = (0..5).map(|m| (m, 20.0)).collect();
        values.extend((5..20).map(|m| (m, 50.0)));
        // 33 is below the limit but not below the recovery level (31.5): still exceeded.
        values.extend((20..30).map(|m| (m, 33.0)));
        values.extend((30..40).map(|m| (m, 25.0)));
        let t = feed(&mut w, &values);
        assert_eq!(
            t,
            [
                (10, Transition::Exceeded { since_ms: 5 * 60_000, at_ms: 10 * 60_000, value: 50.0 }),
                (35, Transition::Recovered { since_ms: 30 * 60_000, at_ms: 35 * 60_000, value: 25.0 }),
            ]
        );
    }

    #[test]
    fn hovering_at_the_limit_raises_nothing() {
        let mut w = pm25();
        let values: Vec<(i64, f32)> = (0..240).map(|m| (m, if m % 4 == 0 { 34.0 } else { 36.0 })).collect();
        assert_eq!(feed(&mut w, &values), []);
        assert!(!w.is_exceeded());
    }

    #[test]
    fn a_gap_restarts_the_count_and_missing_values_neither_raise_nor_recover() {
        let mut w = pm25();
        // Above at 0..3, silent for 4 minutes, above again: the count starts over at 7.
        let t = feed(&mut w, &[(0, 50.0), (1, 50.0), (2, 50.0), (3, 50.0), (7, 50.0), (8, 50.0), (11, 50.0)]);
        assert_eq!(t, []);
        let t = feed(&mut w, &[(12, 50.0)]);
        assert_eq!(t, [(12, Transition::Exceeded { since_ms: 7 * 60_000, at_ms: 12 * 60_000, value: 50.0 })]);
        // Warming up interrupts a recovery that was under way.
        assert_eq!(feed(&mut w, &[(13, 10.0), (14, 10.0), (15, 10.0), (16, 10.0)]), []);
        w.interrupt();
        assert_eq!(feed(&mut w, &[(18, 10.0), (19, 10.0), (20, 10.0), (21, 10.0), (22, 10.0)]), []);
        assert_eq!(feed(&mut w, &[(23, 10.0)]).len(), 1, "five minutes after the interruption");
        assert!(!w.is_exceeded());
    }

    #[test]
    fn nonsense_values_and_times_going_back_are_ignored() {
        let mut w = LimitWatch::new(35.0, 31.5, 0, GAP);
        assert_eq!(w.observe(1000, f32::NAN), None);
        assert!(matches!(w.observe(1000, 40.0), Some(Transition::Exceeded { .. })));
        assert_eq!(w.observe(500, 10.0), None, "older than the last value");
        assert!(matches!(w.observe(2000, 10.0), Some(Transition::Recovered { .. })));
    }

    #[test]
    fn limits_are_bounded_and_the_error_names_the_key() {
        assert!(AirLimitsConfig::default().validate().is_ok());
        for (toml, key) in [
            ("pm10 = 0.0", "air.limits.pm10"),
            ("pm25 = nan", "air.limits.pm25"),
            ("co2 = 100.0", "air.limits.co2"),
            ("hcho = inf", "air.limits.hcho"),
            ("hysteresis_pct = 60.0", "air.limits.hysteresis_pct"),
            ("hysteresis_pct = -1.0", "air.limits.hysteresis_pct"),
            ("min_duration_secs = 86401", "air.limits.min_duration_secs"),
        ] {
            let c: AirLimitsConfig = toml::from_str(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
            assert_eq!(c.validate().map_err(|e| e.0), Err(key), "{toml}");
        }
        assert!(toml::from_str::<AirLimitsConfig>("pm2_5 = 30.0").is_err(), "unknown keys are refused");
        let c: AirLimitsConfig = toml::from_str("co2 = 1500.0").expect("one key");
        assert_eq!((c.co2, c.pm25, c.min_duration_secs), (1500.0, 35.0, 300));
        assert_eq!(c.recover_below(Pollutant::Co2), 1350.0);
    }

    /// A small deterministic generator (no dependency for a test's random walk).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Whether samples[..=i] end in a run on the wanted side that is at least `min` long with
    /// no gap longer than `gap`, found by looking back from i (independently of the machine).
    fn run_ends_at(samples: &[(i64, f32)], i: usize, min: i64, gap: i64, side: impl Fn(f32) -> bool) -> bool {
        let mut j = i;
        loop {
            if !side(samples[j].1) {
                return false;
            }
            if samples[i].0 - samples[j].0 >= min {
                return true;
            }
            if j == 0 || samples[j].0 - samples[j - 1].0 > gap {
                return false;
            }
            j -= 1;
        }
    }

    /// Over many generated sequences (a random walk around the limit, with gaps): transitions
    /// alternate starting with "exceeded"; each comes exactly when a qualifying run completes
    /// since the last transition, and never otherwise.
    #[test]
    fn generated_sequences_alternate_and_fire_exactly_when_a_run_completes() {
        let mut rng = Lcg(0x5eed);
        let (limit, recover) = (35.0f32, 31.5f32);
        let mut total = 0;
        for _ in 0..400 {
            let mut w = LimitWatch::new(limit, recover, MIN, GAP);
            let mut samples = Vec::new();
            let mut t = 0i64;
            let mut v = 20.0 + rng.below(30) as f32;
            for _ in 0..300 {
                t += if rng.below(40) == 0 { 60_000 * (2 + rng.below(6) as i64) } else { 60_000 };
                v = (v + rng.below(9) as f32 - 4.0).clamp(0.0, 90.0);
                samples.push((t, v));
            }
            let mut exceeded = false;
            // Index of the sample after the last transition: runs must start after it.
            let mut from = 0usize;
            for i in 0..samples.len() {
                let got = w.observe(samples[i].0, samples[i].1);
                let side = |x: f32| if exceeded { x < recover } else { x > limit };
                // Only samples after the last transition: a run does not count twice.
                let due = run_ends_at(&samples[from..=i], i - from, MIN, GAP, side);
                match got {
                    Some(Transition::Exceeded { since_ms, at_ms, .. }) => {
                        assert!(!exceeded && due, "exceeded at {i} without a qualifying run");
                        assert!(at_ms - since_ms >= MIN);
                        exceeded = true;
                        from = i + 1;
                        total += 1;
                    }
                    Some(Transition::Recovered { since_ms, at_ms, .. }) => {
                        assert!(exceeded && due, "recovered at {i} without a qualifying run");
                        assert!(at_ms - since_ms >= MIN);
                        exceeded = false;
                        from = i + 1;
                        total += 1;
                    }
                    None => assert!(!due, "a qualifying run ended at {i} and nothing fired"),
                }
            }
        }
        assert!(total > 100, "the generator exercises transitions: {total}");
    }
}

//! The population reference: what the children at this door read this morning.
//!
//! A static correction (ambient, distance, site offset) is right only near the conditions it
//! was fitted in; in a 10 degC winter entrance or a 32 degC summer one it is off by several
//! tenths of a degree, and a sensor drifts on top. Screening thermographs (IEC 80601-2-59)
//! therefore compare a face with the recent faces at the same door: most children are healthy,
//! so the robust centre of their readings is where "normal" reads today. This module keeps
//! that centre (the median) and its spread (the MAD) over the last `window` decided readings of
//! the session, and turns a raw reading into a screening:
//!
//! - **Trusted** (at least `min_count` readings and a robust spread of at most `max_spread_c`
//!   below the median: fevers and re-measured children add only above it):
//!   the reading is corrected by the reference's offset from `population_c`, the expected skin
//!   temperature of healthy children, and the corrected value meets the absolute threshold. A
//!   reading more than `cold_margin_c` below the median is a face that has not warmed up yet
//!   (arrived from the cold): `remeasure`, whatever it reads.
//! - **Not trusted** (the morning's first children, or a reference whose spread says it is
//!   mixed, e.g. a cold class among warm ones): the absolute threshold with a re-measure band
//!   widened by the static correction's own uncertainty (`untrusted_band_c` plus
//!   `untrusted_band_per_c` per degree of room away from its fit); nobody near the
//!   threshold is called normal on a guess. A re-measure minutes later usually meets a
//!   trusted reference. The children read so far may doubt or raise an alarm, never clear one.
//!
//! Only readings that look like healthy, warmed-up skin feed the reference: never a cold face,
//! and once trusted, nothing further than `outlier_mads` robust spreads from the median (a
//! fever, a mis-framed face). A session ends after `session_gap_min` minutes without a reading:
//! the next morning starts empty rather than with yesterday's weather.

use std::collections::VecDeque;

use dolbom_face::config::in_range;
use serde::Deserialize;

/// The MAD of a normal distribution times this is its standard deviation.
const MAD_TO_SIGMA: f32 = 1.4826;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceConfig {
    /// Off: only the static corrections and the absolute threshold, as before.
    pub enabled: bool,
    /// Decided readings the reference keeps (the most recent ones).
    pub window: usize,
    /// Readings needed before the reference is trusted.
    pub min_count: usize,
    /// Expected skin temperature of healthy children at the measurement site, after
    /// `site_offset_c`: the physiological prior the reference's median is compared with.
    pub population_c: f32,
    /// A robust spread below the median (1.4826 MAD of the readings at or below it) above this
    /// means the reference mixes populations (faces from the cold): not trusted.
    pub max_spread_c: f32,
    /// A reference further than this from `population_c` is a broken setup, not weather: not trusted.
    pub max_offset_c: f32,
    /// Once trusted, readings further than this many robust spreads from the median stay out of it.
    pub outlier_mads: f32,
    /// A face this far below the median (trusted) has not warmed up: re-measure.
    pub cold_margin_c: f32,
    /// How much wider the re-measure band is while the reference is not trusted, in a room at
    /// the static model's `reference_ambient_c`...
    pub untrusted_band_c: f32,
    /// ...plus this per degree the room is away from it: the static ambient model's error grows
    /// with the distance from where it was fitted.
    pub untrusted_band_per_c: f32,
    /// Minutes without a reading after which the next reading starts a new session.
    pub session_gap_min: i64,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: 25,
            min_count: 10,
            population_c: 36.6,
            max_spread_c: 0.5,
            max_offset_c: 2.5,
            outlier_mads: 3.0,
            cold_margin_c: 1.0,
            untrusted_band_c: 0.2,
            untrusted_band_per_c: 0.06,
            session_gap_min: 120,
        }
    }
}

impl ReferenceConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        in_range("fever.reference.window", self.window, 5, 1000)?;
        in_range("fever.reference.min_count", self.min_count, 3, self.window)?;
        in_range("fever.reference.population_c", self.population_c, 34.0, 38.0)?;
        in_range("fever.reference.max_spread_c", self.max_spread_c, 0.1, 2.0)?;
        in_range("fever.reference.max_offset_c", self.max_offset_c, 0.5, 6.0)?;
        in_range("fever.reference.outlier_mads", self.outlier_mads, 1.5, 10.0)?;
        in_range("fever.reference.cold_margin_c", self.cold_margin_c, 0.3, 5.0)?;
        in_range("fever.reference.untrusted_band_c", self.untrusted_band_c, 0.0, 3.0)?;
        in_range("fever.reference.untrusted_band_per_c", self.untrusted_band_per_c, 0.0, 0.5)?;
        in_range("fever.reference.session_gap_min", self.session_gap_min, 10, 24 * 60)?;
        Ok(())
    }
}

/// The reference's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub median_c: f32,
    /// 1.4826 MAD: the standard deviation, were the readings normal.
    pub spread_c: f32,
    /// The same from the readings at or below the median only (what trust is judged on).
    pub lower_spread_c: f32,
    pub trusted: bool,
}

/// Why a reading was asked to be taken again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemeasureWhy {
    /// Much colder than the children before: the face has not warmed up.
    Cold,
    /// Near the threshold.
    Borderline,
}

/// A screening of one raw reading against the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judged {
    Normal(f32),
    Elevated(f32),
    Remeasure(f32, RemeasureWhy),
}

#[derive(Debug, Clone)]
pub struct PopulationReference {
    cfg: ReferenceConfig,
    /// The readings and whose they were (None: a visitor, or a caller that does not know).
    values: VecDeque<(f32, Option<String>)>,
    last_ms: Option<i64>,
    /// When the last few judged faces arrived and whether each was cold: a group from a cold
    /// bus shows as several cold faces in a row.
    recent: VecDeque<(i64, bool)>,
    /// Consecutive readings refused as outliers on the same side (+ above, − below).
    refused_run: i32,
}

/// This many readings in a row refused on the same side of a trusted median mean the median is
/// what is wrong (it was built from a cold group that arrived first, or the sensor jumped): the
/// reference starts over.
const REFUSED_RUN_RESET: i32 = 5;

/// Readings an untrusted reference needs before it is heard at all (the median of three is a
/// healthy child's reading even if one of the three had a fever).
const DOUBT_MIN_COUNT: usize = 3;

/// Of the last `COLD_GROUP_OF` faces within `COLD_GROUP_MS`, this many cold ones mean a cold
/// group is arriving: a fever among them reads like a healthy warm face (1.5 degC low), so
/// every face of the group not already elevated is asked to come back once warm.
const COLD_GROUP_MIN: usize = 2;
const COLD_GROUP_OF: usize = 5;
const COLD_GROUP_MS: i64 = 10 * 60_000;

fn median(sorted: &[f32]) -> f32 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

impl PopulationReference {
    pub fn new(cfg: ReferenceConfig) -> Self {
        Self { cfg, values: VecDeque::new(), last_ms: None, recent: VecDeque::new(), refused_run: 0 }
    }

    /// Starts a new session if the door was quiet for `session_gap_min` (or time went backwards).
    fn roll_session(&mut self, now_ms: i64) {
        if let Some(last) = self.last_ms {
            if now_ms - last > self.cfg.session_gap_min * 60_000 || now_ms < last {
                self.start_over();
                self.recent.clear();
            }
        }
    }

    /// Empties the reference. The refusal run belongs to the values it was counted against:
    /// kept, it would let a new morning's first fever finish yesterday's run and seed the new
    /// reference with that fever.
    fn start_over(&mut self) {
        self.values.clear();
        self.refused_run = 0;
    }

    /// Before trust only the setup's plausible range: the weather may be far from the prior,
    /// a broken setup may not.
    fn plausible(&self, raw_c: f32) -> bool {
        (raw_c - self.cfg.population_c).abs() <= self.cfg.max_offset_c
    }

    pub fn stats(&self) -> Option<Stats> {
        if self.values.is_empty() {
            return None;
        }
        let mut v: Vec<f32> = self.values.iter().map(|(c, _)| *c).collect();
        v.sort_by(f32::total_cmp);
        let m = median(&v);
        let mut dev: Vec<f32> = v.iter().map(|x| (x - m).abs()).collect();
        dev.sort_by(f32::total_cmp);
        let spread_c = MAD_TO_SIGMA * median(&dev);
        // Trust is judged on the spread below the median. What a door adds above the healthy
        // children is expected and is no sign of a mixed reference: fevers (before trust nothing
        // keeps them out) and the borderline children who are re-measured and so counted twice.
        // Measured on both sides, those alone held a 10 degC morning's reference untrusted for
        // the whole hour (spread 0.6-0.7), and every fever near the threshold stayed in the wide
        // untrusted band at its re-measure too. A mix with cold faces still shows: they lie below.
        let mut below: Vec<f32> = v.iter().filter(|x| **x <= m).map(|x| m - x).collect();
        below.sort_by(f32::total_cmp);
        let lower_spread_c = MAD_TO_SIGMA * median(&below);
        let trusted = v.len() >= self.cfg.min_count
            && lower_spread_c <= self.cfg.max_spread_c
            && (m - self.cfg.population_c).abs() <= self.cfg.max_offset_c;
        Some(Stats { count: v.len(), median_c: m, spread_c, lower_spread_c, trusted })
    }

    /// The trusted reference at `now_ms`, if any (a quiet door ends the session first).
    pub fn trusted_at(&mut self, now_ms: i64) -> Option<Stats> {
        self.roll_session(now_ms);
        self.stats().filter(|s| s.trusted)
    }

    /// Screens a raw (statically corrected) reading; `threshold_c` and `borderline_c` as in
    /// [`super::decision::FeverConfig`]. Reported values are rounded to 0.1 degC before the
    /// comparison, so "37.5" is never called anything but elevated.
    /// `ambient_off_c`: how far the room is from the static model's reference ambient (None:
    /// unknown, taken as 14 degC, a winter entrance against a 24 degC fit).
    pub fn judge(
        &mut self,
        raw_c: f32,
        now_ms: i64,
        threshold_c: f32,
        borderline_c: f32,
        ambient_off_c: Option<f32>,
    ) -> Judged {
        let round = |c: f32| (c * 10.0).round() / 10.0;
        if !self.cfg.enabled {
            let c = round(raw_c);
            return classify(c, threshold_c, borderline_c);
        }
        let cold_group = self.cold_group(now_ms);
        let band = self.cfg.untrusted_band_c + self.cfg.untrusted_band_per_c * ambient_off_c.map_or(14.0, f32::abs);
        let judged = self.judge_alone(raw_c, now_ms, threshold_c, borderline_c, band);
        let cold = matches!(judged, Judged::Remeasure(_, RemeasureWhy::Cold));
        if self.recent.len() >= COLD_GROUP_OF {
            self.recent.pop_front();
        }
        self.recent.push_back((now_ms, cold));
        match judged {
            Judged::Normal(c) | Judged::Remeasure(c, RemeasureWhy::Borderline) if cold_group => {
                Judged::Remeasure(c, RemeasureWhy::Cold)
            }
            j => j,
        }
    }

    /// True while a cold group is arriving (see [`COLD_GROUP_MIN`]).
    pub fn cold_group(&self, now_ms: i64) -> bool {
        self.recent.iter().filter(|(at, cold)| *cold && now_ms - at <= COLD_GROUP_MS).count() >= COLD_GROUP_MIN
    }

    fn judge_alone(&mut self, raw_c: f32, now_ms: i64, threshold_c: f32, borderline_c: f32, band: f32) -> Judged {
        let round = |c: f32| (c * 10.0).round() / 10.0;
        match self.trusted_at(now_ms) {
            Some(s) => {
                let c = round(raw_c - (s.median_c - self.cfg.population_c));
                if raw_c < s.median_c - self.cfg.cold_margin_c {
                    return Judged::Remeasure(c, RemeasureWhy::Cold);
                }
                classify(c, threshold_c, borderline_c)
            }
            None => {
                let c = round(raw_c);
                // Before trust the static model decides, but the children read so far are
                // evidence too: too few to correct with, enough to doubt an alarm or to raise one
                // inside the wide band. They may clear nobody: a miss costs more than a
                // thermometer check.
                let relative = self.relative_before_trust(raw_c).map(round);
                if c >= threshold_c {
                    match relative {
                        // The children before it read as much: a warm room or a sensor reading
                        // high (no blackbody) puts healthy faces at the threshold. Come back.
                        Some(r) if r < threshold_c - borderline_c => Judged::Remeasure(c, RemeasureWhy::Borderline),
                        _ => Judged::Elevated(c),
                    }
                } else if c >= threshold_c - borderline_c - band {
                    match relative {
                        // Inside the band the static model cannot tell; far above the children
                        // before it, as a fever read low in a cold room is, it is elevated.
                        Some(r) if r >= threshold_c => Judged::Elevated(r),
                        _ => Judged::Remeasure(c, RemeasureWhy::Borderline),
                    }
                } else if raw_c < self.cfg.population_c - self.cfg.cold_margin_c - band {
                    Judged::Remeasure(c, RemeasureWhy::Cold)
                } else {
                    Judged::Normal(c)
                }
            }
        }
    }

    /// Before trust: the reading corrected by the median of the readings so far, once there are
    /// [`DOUBT_MIN_COUNT`] of them.
    fn relative_before_trust(&self, raw_c: f32) -> Option<f32> {
        self.stats().filter(|s| s.count >= DOUBT_MIN_COUNT).map(|s| raw_c - (s.median_c - self.cfg.population_c))
    }

    /// Adds a decided raw reading of nobody known (see [`Self::add_from`]).
    pub fn add(&mut self, raw_c: f32, now_ms: i64) -> bool {
        self.add_from(raw_c, now_ms, None)
    }

    /// Adds a decided raw reading unless it is an outlier or a cold face; returns whether it was
    /// taken. `who`: the person read, if known. A person counts once: their newer reading
    /// replaces an older one still in the window, and a newer one refused (a fever) takes the
    /// older one out too. Who is read again is who was re-measured, the borderline children above
    /// the healthy centre: counted twice they pushed the median up and corrected fevers down.
    pub fn add_from(&mut self, raw_c: f32, now_ms: i64, who: Option<&str>) -> bool {
        self.roll_session(now_ms);
        self.last_ms = Some(now_ms);
        if !self.cfg.enabled || !raw_c.is_finite() {
            return false;
        }
        let accepted = match self.stats() {
            Some(s) if s.trusted => {
                let limit = (self.cfg.outlier_mads * s.spread_c).max(0.3);
                let ok = (raw_c - s.median_c).abs() <= limit && raw_c >= s.median_c - self.cfg.cold_margin_c;
                let side = if raw_c > s.median_c { 1 } else { -1 };
                self.refused_run = match (ok, self.refused_run.signum() == side) {
                    (true, _) => 0,
                    (false, true) => self.refused_run + side,
                    (false, false) => side,
                };
                if self.refused_run.abs() >= REFUSED_RUN_RESET {
                    tracing::warn!(
                        median = s.median_c,
                        reading = raw_c,
                        "fever reference refused {REFUSED_RUN_RESET} readings in a row on one side: starting over"
                    );
                    self.start_over();
                    // The reading that ended the run is the first of the new reference only if
                    // it passes the same range check as any reading before trust.
                    self.plausible(raw_c)
                } else {
                    ok
                }
            }
            _ => self.plausible(raw_c),
        };
        if let Some(who) = who {
            self.values.retain(|(_, w)| w.as_deref() != Some(who));
        }
        if accepted {
            if self.values.len() >= self.cfg.window {
                self.values.pop_front();
            }
            self.values.push_back((raw_c, who.map(str::to_string)));
        }
        accepted
    }
}

fn classify(c: f32, threshold_c: f32, borderline_c: f32) -> Judged {
    if c >= threshold_c {
        Judged::Elevated(c)
    } else if c >= threshold_c - borderline_c {
        Judged::Remeasure(c, RemeasureWhy::Borderline)
    } else {
        Judged::Normal(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    /// A morning of `n` healthy children around `centre`, one a minute from `start_ms`.
    fn fill(r: &mut PopulationReference, centre: f32, n: usize, start_ms: i64) -> i64 {
        let offsets = [-0.2, 0.1, 0.0, 0.25, -0.1, 0.15, -0.25, 0.05, -0.05, 0.2];
        let mut t = start_ms;
        for i in 0..n {
            r.add(centre + offsets[i % offsets.len()], t);
            t += MIN;
        }
        t
    }

    #[test]
    fn untrusted_until_min_count_then_corrects_the_offset() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        // A cold entrance: healthy children read 35.9 instead of 36.6.
        let t = fill(&mut r, 35.9, 9, 0);
        assert!(r.trusted_at(t).is_none(), "9 < min_count");
        // Untrusted, in a room 14 degC from the static fit: a 36.6 reading (a healthy child on a
        // warm morning, or a fever read low) is not called normal on a guess.
        assert_eq!(r.judge(36.6, t, 37.5, 0.3, None), Judged::Remeasure(36.6, RemeasureWhy::Borderline));
        let t = fill(&mut r, 35.9, 1, t);
        let s = r.trusted_at(t).expect("trusted at 10");
        assert!((s.median_c - 35.9).abs() < 0.06, "{s:?}");
        // Trusted: the same 37.1 is 37.8 once the cold room's 0.7 is added back: elevated.
        assert_eq!(r.judge(37.1, t, 37.5, 0.3, None), Judged::Elevated(37.8));
        assert_eq!(r.judge(35.9, t, 37.5, 0.3, None), Judged::Normal(36.6));
    }

    #[test]
    fn outliers_stay_out_and_do_not_move_the_median() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 36.6, 20, 0);
        let before = r.stats().expect("stats");
        for (i, hot) in [38.9f32, 39.5, 38.4, 40.1].iter().enumerate() {
            assert!(!r.add(*hot, t + i as i64 * MIN), "{hot} is a fever, not the population");
        }
        assert!(!r.add(35.0, t + 5 * MIN), "a cold face stays out");
        assert_eq!(r.stats().expect("stats"), before);
        assert!(r.add(36.8, t + 6 * MIN));
        // A setup error (a sensor reading 5 degC low) never becomes a reference.
        let mut broken = PopulationReference::new(ReferenceConfig::default());
        for i in 0..20 {
            assert!(!broken.add(31.6, i * MIN));
        }
        assert!(broken.stats().is_none());
    }

    #[test]
    fn a_quiet_door_starts_a_new_session() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 35.9, 15, 0);
        assert!(r.trusted_at(t).is_some());
        assert!(r.trusted_at(t + 119 * MIN).is_some(), "a long lull is the same morning");
        // The next morning, in summer weather: yesterday's reference must not correct it.
        let next = t + 20 * 60 * MIN;
        assert!(r.trusted_at(next).is_none());
        assert!(r.stats().is_none(), "emptied");
        assert_eq!(r.judge(37.5, next, 37.5, 0.3, None), Judged::Elevated(37.5), "absolute threshold meanwhile");
        // Time going backwards (a clock reset) is a new session too.
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 36.6, 15, 10 * MIN);
        assert!(r.trusted_at(t).is_some());
        r.add(36.6, 0);
        assert_eq!(r.stats().map(|s| s.count), Some(1));
    }

    #[test]
    fn follows_a_drifting_sensor() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        // +0.5 degC over an hour, one child a minute.
        let offsets = [-0.2, 0.1, 0.0, 0.25, -0.1, 0.15, -0.25, 0.05, -0.05, 0.2];
        for i in 0..60 {
            r.add(36.6 + 0.5 * i as f32 / 60.0 + offsets[i % 10], i as i64 * MIN);
        }
        let s = r.trusted_at(60 * MIN).expect("trusted");
        // The window holds the last 25 minutes: its median lags the drift by about 12 minutes.
        assert!((s.median_c - (36.6 + 0.5 * 47.0 / 60.0)).abs() < 0.1, "{s:?}");
        // A healthy child now reads 37.1 raw: normal after the drift is taken out, not a fever.
        assert!(matches!(r.judge(37.1, 60 * MIN, 37.5, 0.3, None), Judged::Normal(c) if (36.6..=36.9).contains(&c)));
    }

    #[test]
    fn a_mixed_reference_is_not_trusted_and_a_cold_face_is_remeasured() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        // Half a class from a cold bus (1.5 degC low) among warm arrivals: spread too wide to trust.
        for i in 0..10 {
            let c = if i % 2 == 0 { 36.6 } else { 35.1 };
            r.add(c + 0.02 * (i % 5) as f32, i * MIN);
        }
        let s = r.stats().expect("stats");
        assert!(!s.trusted && s.spread_c > 0.5, "{s:?}");
        // A warm majority is not enough while the cold faces are half of those below its median;
        // once the warm children are about three quarters the median is theirs, and cold faces
        // stay out.
        r.add(36.6, 10 * MIN);
        assert!(r.stats().is_some_and(|s| !s.trusted), "6 warm, 5 cold: still mixed");
        let mut warm = 6;
        while !r.stats().is_some_and(|s| s.trusted) {
            r.add(36.6 + 0.01 * (warm % 3) as f32, (5 + warm) * MIN);
            warm += 1;
            assert!(warm <= 16, "5 cold among {warm} warm");
        }
        let s = r.stats().expect("stats");
        assert!((s.median_c - 36.6).abs() < 0.05, "{s:?}");
        assert!(!r.add(35.1, 30 * MIN));
        // A trusted warm reference: a face 1.5 degC below it is asked to come back, not called normal.
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 36.6, 15, 0);
        assert!(matches!(r.judge(35.1, t, 37.5, 0.3, None), Judged::Remeasure(_, RemeasureWhy::Cold)));
        assert!(!r.cold_group(t), "one cold face is no group");
        assert!(matches!(r.judge(35.0, t + MIN, 37.5, 0.3, None), Judged::Remeasure(_, RemeasureWhy::Cold)));
        // The group: a 38.0 fever arriving 1.5 degC cold reads like a healthy 36.5: asked to come back.
        assert!(r.cold_group(t + 2 * MIN));
        assert!(matches!(r.judge(36.5, t + 2 * MIN, 37.5, 0.3, None), Judged::Remeasure(_, RemeasureWhy::Cold)));
        // Warm faces again: once the cold ones are 10 minutes old the door is back to normal.
        assert_eq!(r.judge(36.5, t + 14 * MIN, 37.5, 0.3, None), Judged::Normal(36.5));
    }

    #[test]
    fn fevers_and_re_measures_above_the_median_do_not_hold_trust_back_but_cold_faces_below_do() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        // A 10 degC entrance: healthy children read about 35.9. Among the morning's first
        // readings, fevers (before trust nothing keeps them out) and borderline children read
        // twice because they were re-measured: all of them above the median.
        let t = fill(&mut r, 35.9, 6, 0);
        for (k, c) in [37.2f32, 37.4, 37.1, 36.5].iter().enumerate() {
            assert!(r.add(*c, t + k as i64 * MIN));
        }
        let t = t + 4 * MIN;
        let s = r.stats().expect("stats");
        assert!(s.spread_c > 0.5, "on both sides it looks mixed: {s:?}");
        assert!(s.trusted && s.lower_spread_c <= 0.5, "below the median it is one population: {s:?}");
        // Trusted, the cold room's offset is added back: a fever read 0.7 low is elevated at
        // once, not re-measured twice in the wide untrusted band.
        assert!(matches!(r.judge(37.2, t, 37.5, 0.3, Some(-14.0)), Judged::Elevated(_)));
        // Faces from the cold among them sit below the median: still not trusted.
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 35.9, 6, 0);
        for (k, c) in [34.5f32, 34.4, 34.6, 34.5].iter().enumerate() {
            assert!(r.add(*c, t + k as i64 * MIN));
        }
        let s = r.stats().expect("stats");
        assert!(!s.trusted && s.lower_spread_c > 0.5, "{s:?}");
    }

    #[test]
    fn a_child_read_again_counts_once() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 36.6, 8, 0);
        // A borderline child, then re-measured five minutes later: one value, the newer one.
        assert!(r.add_from(37.1, t, Some("child-7")));
        assert!(r.add_from(36.9, t + 5 * MIN, Some("child-7")));
        assert_eq!(r.stats().map(|s| s.count), Some(9));
        assert_eq!(r.values.back().map(|(c, _)| *c), Some(36.9));
        // Visitors (nobody known) count each time.
        assert!(r.add_from(36.6, t + 6 * MIN, None));
        assert!(r.add_from(36.6, t + 7 * MIN, None));
        assert_eq!(r.stats().map(|s| s.count), Some(11));
        // Trusted now: the same child read again with a fever is refused and takes the older
        // reading out with it.
        assert!(!r.add_from(38.6, t + 8 * MIN, Some("child-7")));
        assert_eq!(r.stats().map(|s| s.count), Some(10));
        assert!(r.values.iter().all(|(_, w)| w.as_deref() != Some("child-7")));
    }

    #[test]
    fn a_reference_built_from_a_cold_group_that_came_first_starts_over() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        // The bus came first: 12 faces 1.5 degC cold make a tight, trusted, wrong reference.
        let t = fill(&mut r, 35.1, 12, 0);
        assert!(r.trusted_at(t).is_some_and(|s| (s.median_c - 35.1).abs() < 0.06));
        // Warm children are refused as outliers; the fifth in a row resets it.
        for k in 0..4 {
            assert!(!r.add(36.6 + 0.05 * k as f32, t + k * MIN), "warm child {k} refused");
        }
        assert!(r.add(36.7, t + 4 * MIN), "reset, and this one is the first of the new reference");
        assert_eq!(r.stats().map(|s| (s.count, s.trusted)), Some((1, false)));
        // A fever between refusals on the same side counts towards the run (it is also refused)
        // but one accepted reading in between breaks it.
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 36.6, 15, 0);
        for k in 0..8 {
            let c = if k % 3 == 2 { 36.6 } else { 38.5 };
            r.add(c, t + k * MIN);
        }
        assert!(r.stats().is_some_and(|s| s.trusted && s.count == 17), "fevers now and then never reset it");
    }

    #[test]
    fn a_new_session_does_not_inherit_the_refusal_run() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 36.6, 15, 0);
        // Four fevers refused on the high side at the end of the morning.
        for k in 0..4 {
            assert!(!r.add(38.6, t + k * MIN));
        }
        // The next morning: its first fever must not finish yesterday's run and seed the reference.
        let next = t + 20 * 60 * MIN;
        // Exactly min_count readings: none of them was judged against a trusted median, so
        // nothing in between could have broken the old run.
        let t = fill(&mut r, 36.6, 10, next);
        assert!(r.trusted_at(t).is_some());
        assert!(!r.add(38.6, t), "a fever, refused as an outlier, not a restart");
        assert!(r.stats().is_some_and(|s| s.trusted && s.count == 10 && (s.median_c - 36.6).abs() < 0.1));
    }

    #[test]
    fn a_restart_keeps_its_fifth_reading_only_within_the_plausible_range() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        let t = fill(&mut r, 36.6, 15, 0);
        // Five readings in a row far above (a heater behind the door, a failing sensor): the
        // reference starts over, but 39.5 is more than max_offset_c from population_c.
        for k in 0..4 {
            assert!(!r.add(39.5, t + k * MIN));
        }
        assert!(!r.add(39.5, t + 4 * MIN), "reset, but an implausible reading does not seed it");
        assert!(r.stats().is_none(), "emptied, nothing kept");
    }

    #[test]
    fn the_untrusted_band_widens_with_the_rooms_distance_from_the_static_fit() {
        let mut r = PopulationReference::new(ReferenceConfig::default());
        // At the fit's own ambient: only 0.2 wider (37.0 and up); a healthy 36.8 is normal.
        assert_eq!(r.judge(36.8, 0, 37.5, 0.3, Some(0.0)), Judged::Normal(36.8));
        assert_eq!(r.judge(37.0, 0, 37.5, 0.3, Some(0.0)), Judged::Remeasure(37.0, RemeasureWhy::Borderline));
        // 14 degC away (a 10 degC entrance): 1.04 wider, from 36.2.
        assert_eq!(r.judge(36.3, 0, 37.5, 0.3, Some(-14.0)), Judged::Remeasure(36.3, RemeasureWhy::Borderline));
        assert_eq!(r.judge(36.1, 0, 37.5, 0.3, Some(-14.0)), Judged::Normal(36.1));
    }

    #[test]
    fn before_trust_the_children_so_far_may_raise_an_alarm_but_never_clear_one() {
        // A warm room and a sensor reading high without a blackbody: healthy children read 37.6.
        let mut r = PopulationReference::new(ReferenceConfig::default());
        assert_eq!(
            r.judge(37.6, 0, 37.5, 0.3, Some(6.0)),
            Judged::Elevated(37.6),
            "nobody before it: the static model"
        );
        let t = fill(&mut r, 37.6, 3, 0);
        assert!(r.trusted_at(t).is_none());
        // The children before it read as much: asked to come back, not an alarm.
        assert_eq!(r.judge(37.7, t, 37.5, 0.3, Some(6.0)), Judged::Remeasure(37.7, RemeasureWhy::Borderline));
        // A fever stands out from them: still elevated.
        assert_eq!(r.judge(38.6, t, 37.5, 0.3, Some(6.0)), Judged::Elevated(38.6));
        // A 10 degC entrance: healthy children read 35.9, a fever 37.2, inside the wide band.
        let mut r = PopulationReference::new(ReferenceConfig::default());
        assert_eq!(r.judge(37.2, 0, 37.5, 0.3, Some(-14.0)), Judged::Remeasure(37.2, RemeasureWhy::Borderline));
        let t = fill(&mut r, 35.9, 5, 0);
        assert!(r.trusted_at(t).is_none());
        // 1.3 above the children so far: elevated, reported as corrected by them.
        assert_eq!(r.judge(37.2, t, 37.5, 0.3, Some(-14.0)), Judged::Elevated(37.9));
        // Relative to them 36.9 would be normal, but they may not clear it: the band holds.
        assert_eq!(r.judge(36.2, t, 37.5, 0.3, Some(-14.0)), Judged::Remeasure(36.2, RemeasureWhy::Borderline));
    }

    #[test]
    fn disabled_is_the_absolute_threshold() {
        let mut r = PopulationReference::new(ReferenceConfig { enabled: false, ..ReferenceConfig::default() });
        assert!(!r.add(36.6, 0));
        assert_eq!(r.judge(37.3, 0, 37.5, 0.3, None), Judged::Remeasure(37.3, RemeasureWhy::Borderline));
        assert_eq!(r.judge(36.9, 0, 37.5, 0.3, None), Judged::Normal(36.9));
    }
}

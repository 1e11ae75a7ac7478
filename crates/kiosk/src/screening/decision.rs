//! Fever screening: turning thermal readings of a face into a screening decision.
//!
//! A reading is taken per camera frame from the newest thermal frame (see
//! [`crate::screening::fusion`]). The decision needs `readings` consistent measured readings (all
//! within `consistency_c` of each other); their median is the temperature. At or above
//! `threshold_c` it is an elevated skin temperature and raises an alert; within `borderline_c`
//! below the threshold the kiosk asks for a re-measure; below that it is normal. Without enough
//! readings before `decision_timeout_ms`, the face is "not measured", with the reason.
//!
//! This is screening, never a diagnosis: the alert says "elevated skin temperature — confirm
//! with a thermometer".

use dolbom_face::config::in_range;
use serde::{Deserialize, Serialize};

use super::reference::{Judged, PopulationReference, ReferenceConfig};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeverConfig {
    /// Screening is voluntary in Korea since 2023: a site may turn it off.
    pub enabled: bool,
    pub threshold_c: f32,
    pub borderline_c: f32,
    pub readings: usize,
    pub consistency_c: f32,
    pub decision_timeout_ms: i64,
    /// Thermal pixels the measured region must cover; fewer means the face is too far.
    pub min_pixels: usize,
    /// Distance between the eyes in thermal pixels below which a face is too far to measure: each
    /// pixel then mixes skin with hair and background. 2 px is about 1 m on a 55-degree 32x24 array.
    pub min_eye_thermal_px: f64,
    /// Percentile of the region taken as the reading: the warmest skin, not a single hot pixel.
    pub percentile: f32,
    pub site_offset_c: f32,
    /// Degrees added per metre of distance beyond `reference_distance_m` (a far face mixes with
    /// cooler background in each pixel).
    pub distance_coeff_c_per_m: f32,
    pub reference_distance_m: f32,
    /// Distance between the eyes, in camera pixels, of a face 1 m away (depends on the lens).
    pub eye_px_at_1m: f32,
    /// Degrees added per degree of ambient below `reference_ambient_c` (skin cools in a cold room).
    pub ambient_coeff: f32,
    pub reference_ambient_c: f32,
    /// Camera pixel → thermal pixel: [a, b, c, d, e, f] for x' = a x + b y + c, y' = d x + e y + f.
    /// Set by `dolbom calibrate thermal`.
    pub calibration: [f64; 6],
    pub blackbody: Option<Blackbody>,
    /// The population reference at this door (see [`super::reference`]).
    pub reference: ReferenceConfig,
    /// Eye distance in thermal pixels from which the inner eye corners (canthi) are read; closer
    /// than that each canthus pixel mixes with the cooler eye and nose, and the forehead is read.
    pub canthus_min_eye_thermal_px: f64,
    /// Staff ids allowed to silence alerts.
    pub staff: Vec<String>,
    /// Minutes an arrival's `remeasure` stays open for a later reading (at the door or by a staff
    /// thermometer) to settle it; then `event/temperature` says it was not settled.
    pub settle_within_mins: u64,
}

/// A fixed-temperature reference target in the thermal view, for drift correction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blackbody {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
    pub temperature_c: f32,
}

impl Default for FeverConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            threshold_c: 37.5,
            borderline_c: 0.3,
            readings: 3,
            consistency_c: 0.5,
            decision_timeout_ms: 3000,
            min_pixels: 4,
            min_eye_thermal_px: 2.0,
            percentile: 0.9,
            site_offset_c: 0.0,
            distance_coeff_c_per_m: 0.6,
            reference_distance_m: 0.6,
            eye_px_at_1m: 35.0,
            ambient_coeff: 0.1,
            reference_ambient_c: 24.0,
            // 640x480 camera onto a 32x24 array with the same field of view.
            calibration: [0.05, 0.0, 0.0, 0.0, 0.05, 0.0],
            blackbody: None,
            reference: ReferenceConfig::default(),
            canthus_min_eye_thermal_px: 2.5,
            staff: Vec::new(),
            settle_within_mins: 30,
        }
    }
}

impl FeverConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(30.0..=45.0).contains(&self.threshold_c) {
            return Err(("fever.threshold_c", format!("= {}: must be between 30 and 45", self.threshold_c)));
        }
        if !(0.0..=2.0).contains(&self.borderline_c) {
            return Err(("fever.borderline_c", format!("= {}: must be between 0 and 2", self.borderline_c)));
        }
        if !(1..=50).contains(&self.readings) {
            return Err(("fever.readings", format!("= {}: must be between 1 and 50", self.readings)));
        }
        if !(0.05..=5.0).contains(&self.consistency_c) {
            return Err(("fever.consistency_c", format!("= {}: must be between 0.05 and 5", self.consistency_c)));
        }
        in_range("fever.decision_timeout_ms", self.decision_timeout_ms, 100, 60_000)?;
        if !(0.5..=1.0).contains(&self.percentile) {
            return Err(("fever.percentile", format!("= {}: must be between 0.5 and 1", self.percentile)));
        }
        in_range("fever.min_pixels", self.min_pixels, 1, 1024)?;
        in_range("fever.min_eye_thermal_px", self.min_eye_thermal_px, 0.5, 64.0)?;
        // A correction is a few tenths of a degree; several degrees means a wrong sensor or setup.
        in_range("fever.site_offset_c", self.site_offset_c, -3.0, 3.0)?;
        in_range("fever.distance_coeff_c_per_m", self.distance_coeff_c_per_m, 0.0, 5.0)?;
        in_range("fever.reference_distance_m", self.reference_distance_m, 0.1, 5.0)?;
        in_range("fever.eye_px_at_1m", self.eye_px_at_1m, 1.0, 2000.0)?;
        in_range("fever.ambient_coeff", self.ambient_coeff, 0.0, 1.0)?;
        in_range("fever.reference_ambient_c", self.reference_ambient_c, 0.0, 40.0)?;
        let [a, b, _, d, e, _] = self.calibration;
        if !self.calibration.iter().all(|v| v.is_finite() && v.abs() <= 1e4) || (a * e - b * d).abs() < 1e-9 {
            return Err((
                "fever.calibration",
                "must be a finite, invertible affine transform (each value within ±10000)".into(),
            ));
        }
        if let Some(bb) = &self.blackbody {
            // Thermal pixel coordinates (arrays up to 1024 wide) and a reference at skin heat.
            in_range("fever.blackbody.x", bb.x, 0, 1023)?;
            in_range("fever.blackbody.y", bb.y, 0, 1023)?;
            in_range("fever.blackbody.width", bb.width, 1, 64)?;
            in_range("fever.blackbody.height", bb.height, 1, 64)?;
            in_range("fever.blackbody.temperature_c", bb.temperature_c, 20.0, 60.0)?;
        }
        self.reference.validate()?;
        in_range("fever.canthus_min_eye_thermal_px", self.canthus_min_eye_thermal_px, 0.5, 64.0)?;
        // Past half a day the arrival text would wait for a value nobody takes any more.
        in_range("fever.settle_within_mins", self.settle_within_mins, 1, 720)?;
        if self.staff.iter().any(|s| dolbom_contract::validate_id(s).is_err()) {
            return Err(("fever.staff", "ids must be 1 to 64 letters, digits, '-', '_' or '.'".into()));
        }
        Ok(())
    }
}

/// Where on the face a reading was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// The inner eye corners: the screening site of IEC 80601-2-59, closest to core temperature.
    Canthus,
    /// The lower forehead: the fallback when the canthi cover too few pixels, disagree, or read
    /// colder than the forehead (glasses).
    Forehead,
}

/// One attempt to read a face's temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    Measured(f32, Site),
    NotMeasured(NotMeasured),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotMeasured {
    /// The face covers too few thermal pixels.
    TooFar,
    NotFrontal,
    OutOfView,
    /// No thermal frame recent enough.
    NoThermal,
    /// The thermal sensor sends frames no working sensor produces (its reason is in the status).
    SensorFault,
    /// A reading no human skin can have (see `fusion::SKIN_MIN_C`).
    Implausible,
    /// Readings disagreed with each other.
    Inconsistent,
    ScreeningOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Screening {
    Normal,
    /// Just under the threshold: measure again (e.g. after the child has rested from the heat).
    Remeasure,
    /// At or above the threshold: elevated skin temperature, alert.
    Elevated,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Measured { celsius: f32, screening: Screening, site: Site },
    NotMeasured(NotMeasured),
}

/// Decides from a track's readings so far. `None` means "keep measuring".
pub fn decide(readings: &[Reading], timed_out: bool, cfg: &FeverConfig) -> Option<Decision> {
    let measured: Vec<(f32, Site)> = readings
        .iter()
        .filter_map(|r| match r {
            Reading::Measured(c, site) => Some((*c, *site)),
            Reading::NotMeasured(_) => None,
        })
        .collect();
    if measured.len() >= cfg.readings {
        // The newest `readings` readings must agree: a face still walking in reads low.
        let newest = &measured[measured.len() - cfg.readings..];
        let canthus = newest.iter().filter(|(_, s)| *s == Site::Canthus).count();
        // The site most of them were read at (the forehead on a tie: the weaker claim).
        let site = if 2 * canthus > newest.len() { Site::Canthus } else { Site::Forehead };
        let mut last: Vec<f32> = newest.iter().map(|(c, _)| *c).collect();
        last.sort_by(f32::total_cmp);
        if last[last.len() - 1] - last[0] <= cfg.consistency_c {
            // Decide on the value that is reported, so "37.5" is never called "re-measure".
            let celsius = (last[last.len() / 2] * 10.0).round() / 10.0;
            let screening = if celsius >= cfg.threshold_c {
                Screening::Elevated
            } else if celsius >= cfg.threshold_c - cfg.borderline_c {
                Screening::Remeasure
            } else {
                Screening::Normal
            };
            return Some(Decision::Measured { celsius, screening, site });
        }
    }
    if !timed_out {
        return None;
    }
    if measured.len() >= cfg.readings {
        return Some(Decision::NotMeasured(NotMeasured::Inconsistent));
    }
    // The most frequent reason the face could not be read.
    let mut counts: Vec<(NotMeasured, usize)> = Vec::new();
    for r in readings {
        if let Reading::NotMeasured(why) = r {
            match counts.iter_mut().find(|(w, _)| w == why) {
                Some((_, n)) => *n += 1,
                None => counts.push((*why, 1)),
            }
        }
    }
    let why = counts.into_iter().max_by_key(|(_, n)| *n).map_or(NotMeasured::NoThermal, |(w, _)| w);
    Some(Decision::NotMeasured(why))
}

/// A decision judged against the door's population reference (see [`super::reference`]),
/// which then learns from it. Not-measured decisions pass through untouched.
/// `ambient_c`: the room as the sensor reads it (None: unknown); `who`: the person read, so a
/// child read again (re-measured) counts once in the reference (None: a visitor).
pub fn against_reference(
    d: Decision,
    reference: &mut PopulationReference,
    now_ms: i64,
    ambient_c: Option<f32>,
    who: Option<&str>,
    cfg: &FeverConfig,
) -> Decision {
    let Decision::Measured { celsius: raw, site, .. } = d else { return d };
    let ambient_off = ambient_c.map(|a| a - cfg.reference_ambient_c);
    let judged = reference.judge(raw, now_ms, cfg.threshold_c, cfg.borderline_c, ambient_off);
    let (celsius, screening) = match judged {
        Judged::Normal(c) => (c, Screening::Normal),
        Judged::Elevated(c) => (c, Screening::Elevated),
        Judged::Remeasure(c, _) => (c, Screening::Remeasure),
    };
    // A face that has not warmed up would drag the reference down: it stays out.
    if !matches!(judged, Judged::Remeasure(_, super::reference::RemeasureWhy::Cold)) {
        reference.add_from(raw, now_ms, who);
    }
    Decision::Measured { celsius, screening, site }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Reading::NotMeasured as N;
    #[allow(non_snake_case)]
    fn M(c: f32) -> Reading {
        Reading::Measured(c, Site::Canthus)
    }

    fn cfg() -> FeverConfig {
        FeverConfig { enabled: true, ..FeverConfig::default() }
    }

    #[test]
    fn needs_consistent_readings() {
        let c = cfg();
        assert_eq!(decide(&[M(38.2), M(38.1)], false, &c), None);
        assert_eq!(
            decide(&[M(36.0), M(38.2), M(38.1), M(38.3)], false, &c),
            Some(Decision::Measured { celsius: 38.2, screening: Screening::Elevated, site: Site::Canthus })
        );
        assert_eq!(decide(&[M(36.0), M(37.0), M(38.0)], false, &c), None, "spread too wide");
        assert_eq!(
            decide(&[M(36.0), M(37.0), M(38.0)], true, &c),
            Some(Decision::NotMeasured(NotMeasured::Inconsistent))
        );
    }

    #[test]
    fn normal_borderline_and_elevated() {
        let c = cfg();
        let d = |t: f32| decide(&[M(t), M(t), M(t)], false, &c);
        assert_eq!(
            d(36.5),
            Some(Decision::Measured { celsius: 36.5, screening: Screening::Normal, site: Site::Canthus })
        );
        assert_eq!(
            d(37.3),
            Some(Decision::Measured { celsius: 37.3, screening: Screening::Remeasure, site: Site::Canthus })
        );
        assert_eq!(
            d(37.5),
            Some(Decision::Measured { celsius: 37.5, screening: Screening::Elevated, site: Site::Canthus })
        );
    }

    #[test]
    fn not_measured_says_why() {
        let c = cfg();
        let r = [N(NotMeasured::TooFar), N(NotMeasured::TooFar), N(NotMeasured::NotFrontal), M(36.6)];
        assert_eq!(decide(&r, false, &c), None);
        assert_eq!(decide(&r, true, &c), Some(Decision::NotMeasured(NotMeasured::TooFar)));
        assert_eq!(decide(&[], true, &c), Some(Decision::NotMeasured(NotMeasured::NoThermal)));
    }
}

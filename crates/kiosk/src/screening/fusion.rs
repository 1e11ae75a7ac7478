//! Reading a face's temperature: the face from the camera mapped into the thermal frame through
//! the calibrated affine transform; the inner eye corners (canthi, the screening site of IEC
//! 80601-2-59) when the face is close enough for them to fill a pixel, else the region of the
//! eyes and lower forehead (the warmest, least-covered skin) at a high percentile of its pixels
//! (robust to one hot pixel); each reading says which ([`Site`]). Then corrections for distance, ambient temperature, a blackbody reference and the site. A result
//! no human skin can have is not a reading at all (see [`SKIN_MIN_C`]).

use crate::screening::decision::{Blackbody, FeverConfig, NotMeasured, Reading, Site};
use crate::sources::thermal::ThermalFrame;
use dolbom_face::Detection;

/// Corrected readings outside the contract's skin range are not a person's skin, whatever the
/// sensor says: a hot drink held up, a heater behind the child, a mis-calibrated or failing
/// sensor. Such a reading is "not measured" (`implausible`), never a fever and never normal.
pub const SKIN_MIN_C: f32 = *dolbom_contract::SKIN_TEMPERATURE_C.start();
pub const SKIN_MAX_C: f32 = *dolbom_contract::SKIN_TEMPERATURE_C.end();

pub fn to_thermal(cal: &[f64; 6], p: [f32; 2]) -> (f64, f64) {
    let (x, y) = (f64::from(p[0]), f64::from(p[1]));
    (cal[0] * x + cal[1] * y + cal[2], cal[3] * x + cal[4] * y + cal[5])
}

/// The eye-and-forehead region in thermal pixel coordinates: (x0, y0, x1, y1), half-open.
pub fn region(face: &Detection, cal: &[f64; 6]) -> (f64, f64, f64, f64) {
    let [re, le, ..] = face.landmarks;
    let (rx, ry) = to_thermal(cal, re);
    let (lx, ly) = to_thermal(cal, le);
    let eye = ((lx - rx).powi(2) + (ly - ry).powi(2)).sqrt();
    let (cx, cy) = ((rx + lx) / 2.0, (ry + ly) / 2.0 - 0.25 * eye);
    (cx - 0.7 * eye, cy - 0.5 * eye, cx + 0.7 * eye, cy + 0.5 * eye)
}

pub fn measure(frame: &ThermalFrame, face: &Detection, cfg: &FeverConfig, max_yaw: f32) -> Reading {
    if face.yaw_ratio() > max_yaw {
        return Reading::NotMeasured(NotMeasured::NotFrontal);
    }
    let (x0, y0, x1, y1) = region(face, &cfg.calibration);
    if (x1 - x0) / 1.4 < cfg.min_eye_thermal_px {
        return Reading::NotMeasured(NotMeasured::TooFar);
    }
    if x1 <= 0.0 || y1 <= 0.0 || x0 >= frame.width as f64 || y0 >= frame.height as f64 {
        return Reading::NotMeasured(NotMeasured::OutOfView);
    }
    // Pixels whose centres fall inside the region.
    let mut values = Vec::new();
    let (ys, ye) = ((y0 - 0.5).ceil().max(0.0) as usize, ((y1 - 0.5).ceil().max(0.0) as usize).min(frame.height));
    let (xs, xe) = ((x0 - 0.5).ceil().max(0.0) as usize, ((x1 - 0.5).ceil().max(0.0) as usize).min(frame.width));
    for y in ys..ye {
        for x in xs..xe {
            if let Some(v) = frame.at(x, y).filter(|v| v.is_finite()) {
                values.push(v);
            }
        }
    }
    if values.len() < cfg.min_pixels {
        return Reading::NotMeasured(NotMeasured::TooFar);
    }
    values.sort_by(f32::total_cmp);
    let forehead = values[((values.len() - 1) as f32 * cfg.percentile).round() as usize];
    let (raw, site) = match canthus(frame, face, cfg) {
        Some(c) => (c, Site::Canthus),
        None => (forehead, Site::Forehead),
    };

    let eye_px = {
        let [re, le, ..] = face.landmarks;
        ((le[0] - re[0]).powi(2) + (le[1] - re[1]).powi(2)).sqrt().max(1.0)
    };
    let distance_m = cfg.eye_px_at_1m / eye_px;
    let mut celsius = raw + cfg.distance_coeff_c_per_m * (distance_m - cfg.reference_distance_m).max(0.0);
    if let Some(ambient) = frame.ambient_c {
        celsius += cfg.ambient_coeff * (cfg.reference_ambient_c - ambient);
    }
    if let Some(bb) = &cfg.blackbody {
        if let Some(seen) = blackbody_reading(frame, bb) {
            celsius += bb.temperature_c - seen;
        }
    }
    let celsius = celsius + cfg.site_offset_c;
    if !(SKIN_MIN_C..=SKIN_MAX_C).contains(&celsius) {
        tracing::debug!(celsius, "reading is no human skin temperature; not measured");
        return Reading::NotMeasured(NotMeasured::Implausible);
    }
    Reading::Measured(celsius, site)
}

/// The inner eye corners, where screening thermographs measure: the pixel under each canthus
/// (a quarter of the eye distance in from each eye), the warmer of the two. `None` (read the
/// forehead instead) when the face is too small for a canthus pixel to be mostly skin, or the
/// two corners disagree by more than `consistency_c` (a hot pixel, a hand, glasses' rim).
pub fn canthus(frame: &ThermalFrame, face: &Detection, cfg: &FeverConfig) -> Option<f32> {
    let [re, le, ..] = face.landmarks;
    let (rx, ry) = to_thermal(&cfg.calibration, re);
    let (lx, ly) = to_thermal(&cfg.calibration, le);
    let eye = ((lx - rx).powi(2) + (ly - ry).powi(2)).sqrt();
    if eye < cfg.canthus_min_eye_thermal_px {
        return None;
    }
    let at = |x: f64, y: f64| -> Option<f32> {
        if x < 0.0 || y < 0.0 {
            return None;
        }
        frame.at(x.floor() as usize, y.floor() as usize).filter(|v| v.is_finite())
    };
    let right = at(rx + 0.25 * (lx - rx), ry + 0.25 * (ly - ry))?;
    let left = at(lx - 0.25 * (lx - rx), ly - 0.25 * (ly - ry))?;
    ((right - left).abs() <= cfg.consistency_c).then_some(right.max(left))
}

/// The blackbody's temperature as the sensor sees it, when it is there: a region that is not
/// uniform (someone in front of it) or far from its set temperature (switched off, not yet warm,
/// moved) is no reference, and the reading goes uncorrected rather than mis-corrected.
pub fn blackbody_reading(frame: &ThermalFrame, bb: &Blackbody) -> Option<f32> {
    let mut v: Vec<f32> = (bb.y..(bb.y + bb.height).min(frame.height))
        .flat_map(|y| (bb.x..(bb.x + bb.width).min(frame.width)).filter_map(move |x| frame.at(x, y)))
        .filter(|v| v.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let median = v[v.len() / 2];
    // The MLX90640's absolute accuracy is about ±1 degC (±3 at worst corners): a larger offset
    // is not drift, and a spread over 1 degC is not one uniform surface.
    let present =
        v[v.len() - 1] - v[0] <= BLACKBODY_MAX_SPREAD_C && (median - bb.temperature_c).abs() <= BLACKBODY_MAX_OFFSET_C;
    present.then_some(median)
}

pub const BLACKBODY_MAX_SPREAD_C: f32 = 1.0;
pub const BLACKBODY_MAX_OFFSET_C: f32 = 3.0;

/// Least-squares affine transform from camera to thermal pixels, from point pairs.
pub fn fit_affine(pairs: &[([f64; 2], [f64; 2])]) -> Result<[f64; 6], String> {
    if pairs.len() < 3 {
        return Err(format!("need at least 3 point pairs, got {}", pairs.len()));
    }
    // Normal equations for [a b c] (x') and [d e f] (y') share one 3x3 matrix.
    let mut m = [[0.0f64; 3]; 3];
    let (mut vx, mut vy) = ([0.0f64; 3], [0.0f64; 3]);
    for ([x, y], [u, v]) in pairs {
        let row = [*x, *y, 1.0];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += row[i] * row[j];
            }
            vx[i] += row[i] * u;
            vy[i] += row[i] * v;
        }
    }
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&m);
    if d.abs() < 1e-9 {
        return Err("the camera points are all on one line; use points spread over the view".into());
    }
    // Cramer's rule.
    let solve = |v: [f64; 3]| {
        let mut out = [0.0; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let mut mk = m;
            for r in 0..3 {
                mk[r][k] = v[r];
            }
            *o = det(&mk) / d;
        }
        out
    };
    let (a, b) = (solve(vx), solve(vy));
    Ok([a[0], a[1], a[2], b[0], b[1], b[2]])
}

/// Root-mean-square distance, in thermal pixels, between mapped and measured points.
pub fn rms_error(m: &[f64; 6], pairs: &[([f64; 2], [f64; 2])]) -> f64 {
    let sum: f64 = pairs
        .iter()
        .map(|([x, y], [u, v])| {
            let (pu, pv) = to_thermal(m, [*x as f32, *y as f32]);
            (pu - u).powi(2) + (pv - v).powi(2)
        })
        .sum();
    (sum / pairs.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face_at(cx: f32, cy: f32, eye: f32) -> Detection {
        Detection {
            bbox: [cx - eye, cy - eye, cx + eye, cy + 1.5 * eye],
            score: 0.95,
            landmarks: [
                [cx - eye / 2.0, cy],
                [cx + eye / 2.0, cy],
                [cx, cy + eye * 0.4],
                [cx - eye * 0.4, cy + eye * 0.8],
                [cx + eye * 0.4, cy + eye * 0.8],
            ],
        }
    }

    fn frame_with_face(face_c: f32, hot_pixel: bool) -> ThermalFrame {
        let mut pixels = vec![24.0; 32 * 24];
        for y in 8..16 {
            for x in 12..20 {
                pixels[y * 32 + x] = face_c;
            }
        }
        if hot_pixel {
            pixels[10 * 32 + 15] = 80.0;
        }
        ThermalFrame { width: 32, height: 24, pixels, ambient_c: Some(24.0), mono_ms: 0 }
    }

    fn cfg() -> FeverConfig {
        FeverConfig { enabled: true, distance_coeff_c_per_m: 0.0, ambient_coeff: 0.0, ..FeverConfig::default() }
    }

    #[test]
    fn close_face_is_measured_and_one_hot_pixel_does_not_fool_it() {
        // A face centred at camera (320, 240) with eyes 80 px apart: thermal (16, 12), 4 px apart.
        let f = face_at(320.0, 240.0, 80.0);
        let c = cfg();
        assert_eq!(measure(&frame_with_face(36.6, false), &f, &c, 0.35), Reading::Measured(36.6, Site::Canthus));
        assert_eq!(measure(&frame_with_face(36.6, true), &f, &c, 0.35), Reading::Measured(36.6, Site::Canthus));
    }

    #[test]
    fn canthus_first_forehead_when_the_corners_are_too_small_or_disagree() {
        let c = cfg();
        // Eyes 4 thermal px apart: the canthi are read.
        let near = face_at(320.0, 240.0, 80.0);
        let mut frame = frame_with_face(36.0, false);
        frame.pixels[12 * 32 + 15] = 36.8; // right canthus warmer than the rest of the face
        frame.pixels[12 * 32 + 17] = 36.7;
        assert_eq!(measure(&frame, &near, &c, 0.35), Reading::Measured(36.8, Site::Canthus));
        // One corner hot beyond consistency (a hot pixel): the forehead region decides instead.
        frame.pixels[12 * 32 + 15] = 39.0;
        assert!(matches!(measure(&frame, &near, &c, 0.35), Reading::Measured(_, Site::Forehead)));
        // Eyes 2.2 px apart (below canthus_min_eye_thermal_px, above min_eye_thermal_px): forehead.
        let small = face_at(320.0, 240.0, 44.0);
        assert_eq!(measure(&frame_with_face(36.6, false), &small, &c, 0.35), Reading::Measured(36.6, Site::Forehead));
    }

    #[test]
    fn an_absent_or_blocked_blackbody_corrects_nothing() {
        let f = face_at(320.0, 240.0, 80.0);
        let mut c = cfg();
        c.blackbody =
            Some(crate::screening::decision::Blackbody { x: 0, y: 0, width: 2, height: 2, temperature_c: 35.0 });
        // Switched off: the region reads the wall (24 degC), 11 degC from its set point.
        assert_eq!(measure(&frame_with_face(36.6, false), &f, &c, 0.35), Reading::Measured(36.6, Site::Canthus));
        // Half covered by a hand: not uniform.
        let mut frame = frame_with_face(36.6, false);
        frame.pixels[0] = 34.6;
        frame.pixels[1] = 34.6;
        frame.pixels[32] = 31.0;
        frame.pixels[33] = 31.0;
        assert_eq!(measure(&frame, &f, &c, 0.35), Reading::Measured(36.6, Site::Canthus));
        // Present and reading 0.4 low: every face reads 0.4 higher.
        frame.pixels[32] = 34.6;
        frame.pixels[33] = 34.6;
        assert_eq!(measure(&frame, &f, &c, 0.35), Reading::Measured(37.0, Site::Canthus));
    }

    #[test]
    fn far_face_is_not_measured() {
        let f = face_at(320.0, 240.0, 20.0); // eyes 1 thermal pixel apart
        assert_eq!(measure(&frame_with_face(36.6, false), &f, &cfg(), 0.35), Reading::NotMeasured(NotMeasured::TooFar));
    }

    #[test]
    fn affine_fit_recovers_a_known_transform() {
        let truth = [0.05, 0.002, -1.0, -0.001, 0.051, 0.5];
        let pairs: Vec<([f64; 2], [f64; 2])> = [[10.0, 20.0], [600.0, 40.0], [320.0, 460.0], [100.0, 300.0]]
            .iter()
            .map(|p| {
                let (u, v) = to_thermal(&truth, [p[0] as f32, p[1] as f32]);
                (*p, [u, v])
            })
            .collect();
        let fit = fit_affine(&pairs).expect("fit");
        for (a, b) in fit.iter().zip(truth) {
            assert!((a - b).abs() < 1e-4, "{fit:?}");
        }
        assert!(rms_error(&fit, &pairs) < 1e-3);
        assert!(fit_affine(&pairs[..2]).is_err());
        let line: Vec<_> = (0..4).map(|i| ([i as f64, i as f64], [0.0, 0.0])).collect();
        assert!(fit_affine(&line).is_err());
    }

    #[test]
    fn readings_no_skin_can_have_are_not_measured() {
        let f = face_at(320.0, 240.0, 80.0);
        let c = cfg();
        for face_c in [80.1, 60.0, 45.1, 24.9, 10.0, -20.0] {
            assert_eq!(
                measure(&frame_with_face(face_c, false), &f, &c, 0.35),
                Reading::NotMeasured(NotMeasured::Implausible),
                "{face_c} degC"
            );
        }
        for face_c in [25.0, 33.0, 36.6, 41.0, 45.0] {
            assert_eq!(
                measure(&frame_with_face(face_c, false), &f, &c, 0.35),
                Reading::Measured(face_c, Site::Canthus)
            );
        }
        // A plausible face pushed out of range by the corrections (a wild site offset).
        let mut wild = cfg();
        wild.site_offset_c = 10.0;
        assert_eq!(
            measure(&frame_with_face(36.6, false), &f, &wild, 0.35),
            Reading::NotMeasured(NotMeasured::Implausible)
        );
    }

    #[test]
    fn corrections_add_up() {
        let f = face_at(320.0, 240.0, 80.0);
        let mut c = cfg();
        c.site_offset_c = 0.5;
        c.blackbody =
            Some(crate::screening::decision::Blackbody { x: 0, y: 0, width: 2, height: 2, temperature_c: 25.0 });
        // The blackbody reads 24.0 but is 25.0: the sensor reads 1.0 low.
        assert_eq!(measure(&frame_with_face(36.0, false), &f, &c, 0.35), Reading::Measured(37.5, Site::Canthus));
    }
}

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

/// `blackbody_c`: the blackbody as this frame sees it, from [`BlackbodyWatch::update`] (None: not
/// present, no correction).
pub fn measure(
    frame: &ThermalFrame,
    face: &Detection,
    cfg: &FeverConfig,
    max_yaw: f32,
    blackbody_c: Option<f32>,
) -> Reading {
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
        // The canthus is the warmest skin of a face; reading colder than the forehead it is
        // not skin but something in front of it (glasses: both corners cold and agreeing), and
        // trusting it would call a feverish child "remeasure" forever.
        Some(c) if c >= forehead - CANTHUS_BELOW_FOREHEAD_MAX_C => (c, Site::Canthus),
        _ => (forehead, Site::Forehead),
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
    if let (Some(bb), Some(seen)) = (&cfg.blackbody, blackbody_c) {
        celsius += bb.temperature_c - seen;
    }
    let celsius = celsius + cfg.site_offset_c;
    if !(SKIN_MIN_C..=SKIN_MAX_C).contains(&celsius) {
        tracing::debug!(celsius, "reading is no human skin temperature; not measured");
        return Reading::NotMeasured(NotMeasured::Implausible);
    }
    Reading::Measured(celsius, site)
}

/// How far the canthus may read below the forehead's percentile before it is taken for
/// something covering the eyes: pixel noise (0.1 degC) and the canthi sitting in a slightly
/// cooler pixel than the forehead's warmest stay well within it.
pub const CANTHUS_BELOW_FOREHEAD_MAX_C: f32 = 0.5;

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

/// The blackbody's temperature as the sensor sees it in one frame, when that frame alone could
/// be it: a region that is not uniform (someone half in front of it) or far from its set
/// temperature (switched off, not yet warm, moved) is no reference. One frame is not enough:
/// a forehead covering a 35 degC blackbody is uniform and near it too; [`BlackbodyWatch`]
/// decides presence over frames.
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
    // A spread over 1 degC is not one uniform surface. The MLX90640's absolute accuracy is about
    // ±1 degC in the centre: an offset beyond 1.5 is not the sensor's drift but something else
    // at a similar temperature, and a correction that large would move every reading with it.
    let present =
        v[v.len() - 1] - v[0] <= BLACKBODY_MAX_SPREAD_C && (median - bb.temperature_c).abs() <= BLACKBODY_MAX_OFFSET_C;
    present.then_some(median)
}

pub const BLACKBODY_MAX_SPREAD_C: f32 = 1.0;
pub const BLACKBODY_MAX_OFFSET_C: f32 = 1.5;
/// Frames in a row the blackbody must read alike before it corrects anything.
pub const BLACKBODY_STABLE_FRAMES: usize = 8;
/// How far a frame's blackbody reading may be from its running value and still be the same
/// surface: the median of a few pixels with 0.1 degC noise each moves a few hundredths, a
/// drifting sensor a few tenths an hour; a face's skin is rarely this close to a set point.
pub const BLACKBODY_STABLE_C: f32 = 0.3;

/// Whether the blackbody is there, decided over frames. It is present when its region read
/// uniform and near its set point in the last [`BLACKBODY_STABLE_FRAMES`] usable frames, each
/// within [`BLACKBODY_STABLE_C`] of their running value (the median of those frames), and this
/// frame no face's region overlaps its box. The correction is the running value, so a single
/// odd frame moves nothing. A reading that breaks the run starts a new one: a sensor that
/// jumps is followed after a few frames; a child's forehead that stays in front of it as long is
/// caught by the face-overlap rule when the face is detected.
#[derive(Debug, Clone, Default)]
pub struct BlackbodyWatch {
    run: std::collections::VecDeque<f32>,
    last_frame_ms: Option<i64>,
    current: Option<f32>,
}

impl BlackbodyWatch {
    /// The blackbody as the sensor sees it in `frame` (None: not present, correct nothing).
    /// Call once per frame with every face detected in it; later calls for the same frame
    /// return the same answer.
    pub fn update(&mut self, frame: &ThermalFrame, faces: &[Detection], cfg: &FeverConfig) -> Option<f32> {
        let bb = cfg.blackbody.as_ref()?;
        if self.last_frame_ms == Some(frame.mono_ms) {
            return self.current;
        }
        self.last_frame_ms = Some(frame.mono_ms);
        self.current = None;
        if faces.iter().any(|f| overlaps(f, &cfg.calibration, bb)) {
            // Whatever it reads now may be skin; the run so far stays for the next frame.
            return None;
        }
        let Some(seen) = blackbody_reading(frame, bb) else {
            self.run.clear();
            return None;
        };
        if self.running().is_some_and(|r| (seen - r).abs() > BLACKBODY_STABLE_C) {
            self.run.clear();
        }
        if self.run.len() >= BLACKBODY_STABLE_FRAMES {
            self.run.pop_front();
        }
        self.run.push_back(seen);
        self.current = if self.run.len() >= BLACKBODY_STABLE_FRAMES { self.running() } else { None };
        self.current
    }

    fn running(&self) -> Option<f32> {
        if self.run.is_empty() {
            return None;
        }
        let mut v: Vec<f32> = self.run.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        Some(v[v.len() / 2])
    }
}

/// Whether a face's box, mapped into the thermal frame, touches the blackbody's box.
fn overlaps(face: &Detection, cal: &[f64; 6], bb: &Blackbody) -> bool {
    let [x0, y0, x1, y1] = face.bbox;
    let corners = [[x0, y0], [x1, y0], [x0, y1], [x1, y1]].map(|p| to_thermal(cal, p));
    let (fx0, fx1) = corners.iter().fold((f64::MAX, f64::MIN), |(a, b), c| (a.min(c.0), b.max(c.0)));
    let (fy0, fy1) = corners.iter().fold((f64::MAX, f64::MIN), |(a, b), c| (a.min(c.1), b.max(c.1)));
    let (bx0, by0) = (bb.x as f64, bb.y as f64);
    let (bx1, by1) = (bx0 + bb.width as f64, by0 + bb.height as f64);
    fx0 < bx1 && bx0 < fx1 && fy0 < by1 && by0 < fy1
}

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
        assert_eq!(measure(&frame_with_face(36.6, false), &f, &c, 0.35, None), Reading::Measured(36.6, Site::Canthus));
        assert_eq!(measure(&frame_with_face(36.6, true), &f, &c, 0.35, None), Reading::Measured(36.6, Site::Canthus));
    }

    #[test]
    fn canthus_first_forehead_when_the_corners_are_too_small_or_disagree() {
        let c = cfg();
        // Eyes 4 thermal px apart: the canthi are read.
        let near = face_at(320.0, 240.0, 80.0);
        let mut frame = frame_with_face(36.0, false);
        frame.pixels[12 * 32 + 15] = 36.8; // right canthus warmer than the rest of the face
        frame.pixels[12 * 32 + 17] = 36.7;
        assert_eq!(measure(&frame, &near, &c, 0.35, None), Reading::Measured(36.8, Site::Canthus));
        // One corner hot beyond consistency (a hot pixel): the forehead region decides instead.
        frame.pixels[12 * 32 + 15] = 39.0;
        assert!(matches!(measure(&frame, &near, &c, 0.35, None), Reading::Measured(_, Site::Forehead)));
        // Eyes 2.2 px apart (below canthus_min_eye_thermal_px, above min_eye_thermal_px): forehead.
        let small = face_at(320.0, 240.0, 44.0);
        assert_eq!(
            measure(&frame_with_face(36.6, false), &small, &c, 0.35, None),
            Reading::Measured(36.6, Site::Forehead)
        );
    }

    #[test]
    fn glasses_colder_than_the_forehead_fall_back_to_the_forehead() {
        let c = cfg();
        let near = face_at(320.0, 240.0, 80.0);
        // A feverish child with glasses: both canthus pixels cold (lenses) and agreeing.
        let mut frame = frame_with_face(38.4, false);
        frame.pixels[12 * 32 + 15] = 33.0;
        frame.pixels[12 * 32 + 17] = 33.1;
        assert_eq!(measure(&frame, &near, &c, 0.35, None), Reading::Measured(38.4, Site::Forehead));
        // Within 0.5 below the forehead the canthus still decides (noise, a cooler pixel).
        frame.pixels[12 * 32 + 15] = 38.0;
        frame.pixels[12 * 32 + 17] = 38.0;
        assert_eq!(measure(&frame, &near, &c, 0.35, None), Reading::Measured(38.0, Site::Canthus));
    }

    fn with_blackbody(mut c: FeverConfig, temperature_c: f32) -> FeverConfig {
        c.blackbody = Some(crate::screening::decision::Blackbody { x: 0, y: 0, width: 2, height: 2, temperature_c });
        c
    }

    /// Feeds the watch `n` frames like `frame`, numbered from `from_ms`; returns its last answer.
    fn watch_frames(
        w: &mut BlackbodyWatch,
        frame: &ThermalFrame,
        faces: &[Detection],
        c: &FeverConfig,
        from_ms: i64,
        n: usize,
    ) -> Option<f32> {
        let mut out = None;
        for k in 0..n {
            let f = ThermalFrame { mono_ms: from_ms + k as i64, ..frame.clone() };
            out = w.update(&f, faces, c);
        }
        out
    }

    fn set_blackbody(frame: &mut ThermalFrame, v: [f32; 4]) {
        for (i, at) in [0, 1, 32, 33].into_iter().enumerate() {
            frame.pixels[at] = v[i];
        }
    }

    #[test]
    fn an_absent_or_blocked_blackbody_corrects_nothing() {
        let f = face_at(320.0, 240.0, 80.0);
        let c = with_blackbody(cfg(), 35.0);
        let mut w = BlackbodyWatch::default();
        // Switched off: the region reads the wall (24 degC), 11 degC from its set point.
        assert_eq!(watch_frames(&mut w, &frame_with_face(36.6, false), &[], &c, 0, 20), None);
        // Half covered by a hand: not uniform.
        let mut frame = frame_with_face(36.6, false);
        set_blackbody(&mut frame, [34.6, 34.6, 31.0, 31.0]);
        assert_eq!(watch_frames(&mut w, &frame, &[], &c, 100, 20), None);
        // Present and reading 0.4 low, but only from the eighth steady frame on.
        set_blackbody(&mut frame, [34.6; 4]);
        assert_eq!(watch_frames(&mut w, &frame, &[], &c, 200, BLACKBODY_STABLE_FRAMES - 1), None);
        let seen = watch_frames(&mut w, &frame, &[], &c, 300, 1);
        assert_eq!(seen, Some(34.6));
        // Every face then reads 0.4 higher.
        assert_eq!(measure(&frame, &f, &c, 0.35, seen), Reading::Measured(37.0, Site::Canthus));
        // Asked again for the same frame (a second face in it): the same answer.
        assert_eq!(w.update(&ThermalFrame { mono_ms: 300, ..frame.clone() }, &[], &c), Some(34.6));
        // Far from the set point (1.5 degC is the MLX90640's accuracy and then some): no reference.
        set_blackbody(&mut frame, [33.3; 4]);
        assert_eq!(watch_frames(&mut w, &frame, &[], &c, 400, 20), None);
    }

    #[test]
    fn a_forehead_in_front_of_the_blackbody_is_not_the_blackbody() {
        let c = with_blackbody(cfg(), 35.0);
        let mut w = BlackbodyWatch::default();
        let mut frame = frame_with_face(36.6, false);
        set_blackbody(&mut frame, [34.9; 4]);
        assert_eq!(watch_frames(&mut w, &frame, &[], &c, 0, BLACKBODY_STABLE_FRAMES), Some(34.9));
        // A child leans in: a uniform 36.3 forehead fills the box, within 1.5 of the set point.
        // One frame of it is off the running value: no correction (it would be -1.3 on everyone).
        set_blackbody(&mut frame, [36.3; 4]);
        assert_eq!(watch_frames(&mut w, &frame, &[], &c, 100, 1), None);
        // If it stays, it takes the full run of steady frames to count, as a new blackbody would...
        assert_eq!(watch_frames(&mut w, &frame, &[], &c, 200, BLACKBODY_STABLE_FRAMES - 2), None);
        // ...and a detected face over the box never counts, however long it stays.
        let over = face_at(20.0, 20.0, 40.0); // thermal (1, 1): right over the box
        assert!(overlaps(&over, &c.calibration, c.blackbody.as_ref().expect("set")));
        let mut w = BlackbodyWatch::default();
        assert_eq!(watch_frames(&mut w, &frame, std::slice::from_ref(&over), &c, 300, 40), None);
        // A face elsewhere in the frame does not disqualify it.
        let elsewhere = face_at(320.0, 240.0, 80.0);
        assert!(!overlaps(&elsewhere, &c.calibration, c.blackbody.as_ref().expect("set")));
        set_blackbody(&mut frame, [34.9; 4]);
        assert_eq!(watch_frames(&mut w, &frame, &[elsewhere], &c, 400, BLACKBODY_STABLE_FRAMES), Some(34.9));
        // A frame with a face over it corrects nothing but does not break the run.
        assert_eq!(watch_frames(&mut w, &frame, &[over], &c, 500, 1), None);
        assert_eq!(watch_frames(&mut w, &frame, &[], &c, 600, 1), Some(34.9));
    }

    #[test]
    fn far_face_is_not_measured() {
        let f = face_at(320.0, 240.0, 20.0); // eyes 1 thermal pixel apart
        assert_eq!(
            measure(&frame_with_face(36.6, false), &f, &cfg(), 0.35, None),
            Reading::NotMeasured(NotMeasured::TooFar)
        );
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
                measure(&frame_with_face(face_c, false), &f, &c, 0.35, None),
                Reading::NotMeasured(NotMeasured::Implausible),
                "{face_c} degC"
            );
        }
        for face_c in [25.0, 33.0, 36.6, 41.0, 45.0] {
            assert_eq!(
                measure(&frame_with_face(face_c, false), &f, &c, 0.35, None),
                Reading::Measured(face_c, Site::Canthus)
            );
        }
        // A plausible face pushed out of range by the corrections (a wild site offset).
        let mut wild = cfg();
        wild.site_offset_c = 10.0;
        assert_eq!(
            measure(&frame_with_face(36.6, false), &f, &wild, 0.35, None),
            Reading::NotMeasured(NotMeasured::Implausible)
        );
    }

    #[test]
    fn corrections_add_up() {
        let f = face_at(320.0, 240.0, 80.0);
        let mut c = with_blackbody(cfg(), 25.0);
        c.site_offset_c = 0.5;
        // The blackbody reads 24.0 but is 25.0: the sensor reads 1.0 low.
        let frame = frame_with_face(36.0, false);
        let seen = watch_frames(&mut BlackbodyWatch::default(), &frame, &[], &c, 0, BLACKBODY_STABLE_FRAMES);
        assert_eq!(seen, Some(24.0));
        assert_eq!(measure(&frame, &f, &c, 0.35, seen), Reading::Measured(37.5, Site::Canthus));
    }
}

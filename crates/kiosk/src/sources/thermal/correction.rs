//! The sensor's gain and offset, fitted from blackbody readings (`dolbom calibrate thermal
//! --blackbody SET_C=READ_C ...`) and applied to every pixel of every frame (`thermal.gain`,
//! `thermal.offset_c`): `corrected = gain × read + offset_c`. The blackbody in view
//! (`fever.blackbody`) then only has to follow drift, not a wrong slope.

/// Readings at one set point that differ by more than this are no steady blackbody.
const SAME_POINT_SPREAD_C: f32 = 0.5;
/// Set points closer than this cannot tell a gain from noise.
const MIN_SPAN_C: f32 = 2.0;
/// A fit that leaves more than this is not a linear sensor (or not one blackbody).
const MAX_RMS_C: f32 = 0.3;
/// Gains a healthy thermopile array needs; beyond, a wrong emissivity or a broken sensor.
pub const GAIN: std::ops::RangeInclusive<f32> = 0.8..=1.2;
/// Offsets a healthy array needs, in °C.
pub const OFFSET_C: std::ops::RangeInclusive<f32> = -5.0..=5.0;

/// A fitted correction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correction {
    pub gain: f32,
    pub offset_c: f32,
    /// Root-mean-square of what the fit leaves, °C.
    pub rms_c: f32,
    /// Distinct set points (a gain needs two).
    pub set_points: usize,
}

/// Parses `SET_C=READ_C` (the blackbody's set temperature and what the array read of it).
pub fn parse_reading(s: &str) -> Result<(f32, f32), String> {
    let bad =
        || format!("`{s}` is not SET_C=READ_C, e.g. 35.0=34.6 / `{s}`: SET_C=READ_C 형식이 아닙니다 (예: 35.0=34.6)");
    let (a, b) = s.split_once('=').ok_or_else(bad)?;
    let set: f32 = a.trim().parse().map_err(|_| bad())?;
    let read: f32 = b.trim().parse().map_err(|_| bad())?;
    if !set.is_finite() || !(20.0..=60.0).contains(&set) {
        return Err(format!(
            "`{s}`: set point {set} °C must be 20-60 °C (a blackbody near skin heat) / 설정 온도는 20~60℃여야 합니다"
        ));
    }
    if !read.is_finite() || !(0.0..=100.0).contains(&read) {
        return Err(format!("`{s}`: reading {read} °C must be 0-100 °C / 측정값은 0~100℃여야 합니다"));
    }
    Ok((set, read))
}

/// Fits `set = gain × read + offset` by least squares. Refuses (in Korean and English) one
/// reading, readings of one set point that disagree, a gain or offset no healthy sensor needs,
/// and a fit that leaves more than 0.3 °C. Readings of a single set point give an offset only.
pub fn fit(readings: &[(f32, f32)]) -> Result<Correction, String> {
    if readings.len() < 2 {
        return Err(format!(
            "{} blackbody reading(s): at least two are needed, best at two set points 2 °C or more apart \
             / 흑체 측정값이 {}개입니다: 두 개 이상 필요합니다 (설정 온도 2℃ 이상 차이 나는 두 지점 권장)",
            readings.len(),
            readings.len()
        ));
    }
    // Readings of one set point must agree: else the blackbody was not steady or not in view.
    let mut points: Vec<f32> = Vec::new();
    for &(set, _) in readings {
        if !points.iter().any(|p| (p - set).abs() < 0.05) {
            points.push(set);
        }
    }
    for p in &points {
        let reads: Vec<f32> = readings.iter().filter(|(s, _)| (s - p).abs() < 0.05).map(|(_, r)| *r).collect();
        let lo = reads.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = reads.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if hi - lo > SAME_POINT_SPREAD_C {
            return Err(format!(
                "readings of the {p} °C set point differ by {:.2} °C (more than {SAME_POINT_SPREAD_C}): the blackbody \
                 was not steady or not filling its region; measure again / 설정 온도 {p}℃의 측정값이 {:.2}℃ 차이 납니다: \
                 흑체가 안정되지 않았습니다. 다시 측정해 주세요",
                hi - lo,
                hi - lo
            ));
        }
    }
    let n = readings.len() as f64;
    let (mut sx, mut sy) = (0.0f64, 0.0f64);
    for &(set, read) in readings {
        sx += f64::from(read);
        sy += f64::from(set);
    }
    let (mx, my) = (sx / n, sy / n);
    let span =
        points.iter().copied().fold(f32::NEG_INFINITY, f32::max) - points.iter().copied().fold(f32::INFINITY, f32::min);
    let (gain, offset) = if span >= MIN_SPAN_C {
        let (mut sxx, mut sxy) = (0.0f64, 0.0f64);
        for &(set, read) in readings {
            let dx = f64::from(read) - mx;
            sxx += dx * dx;
            sxy += dx * (f64::from(set) - my);
        }
        if sxx < 1e-6 {
            return Err("the readings do not change with the set point: is the sensor looking at the blackbody? \
                        / 설정 온도가 바뀌어도 측정값이 같습니다: 센서가 흑체를 보고 있는지 확인해 주세요"
                .into());
        }
        let gain = sxy / sxx;
        (gain, my - gain * mx)
    } else if points.len() > 1 {
        return Err(format!(
            "set points only {span:.1} °C apart: a gain needs two at least {MIN_SPAN_C} °C apart (or use one set point \
             for an offset only) / 설정 온도 차이가 {span:.1}℃뿐입니다: 2℃ 이상 떨어진 두 지점이 필요합니다"
        ));
    } else {
        (1.0, my - mx)
    };
    let (gain, offset_c) = (gain as f32, offset as f32);
    if !GAIN.contains(&gain) {
        return Err(format!(
            "fitted gain {gain:.3} is outside {:.1}-{:.1}: check the blackbody's emissivity and the readings \
             / 이득 {gain:.3}이 {:.1}~{:.1} 범위 밖입니다: 흑체와 측정값을 확인해 주세요",
            GAIN.start(),
            GAIN.end(),
            GAIN.start(),
            GAIN.end()
        ));
    }
    if !OFFSET_C.contains(&offset_c) {
        return Err(format!(
            "fitted offset {offset_c:.2} °C is outside ±5 °C: a wrong sensor or set point / 보정값 {offset_c:.2}℃가 ±5℃ 범위 밖입니다"
        ));
    }
    let sq: f64 = readings
        .iter()
        .map(|&(set, read)| {
            let e = f64::from(set) - (f64::from(gain) * f64::from(read) + f64::from(offset_c));
            e * e
        })
        .sum();
    let rms_c = (sq / n).sqrt() as f32;
    if rms_c > MAX_RMS_C {
        return Err(format!(
            "the readings do not fit one line (RMS {rms_c:.2} °C, more than {MAX_RMS_C}): measure again with a steady \
             blackbody / 측정값이 한 직선에 맞지 않습니다 (RMS {rms_c:.2}℃): 흑체가 안정된 뒤 다시 측정해 주세요"
        ));
    }
    Ok(Correction { gain, offset_c, rms_c, set_points: points.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensor_reading_low_and_flat_is_corrected() {
        // True = 1.05 x read - 1.0: reads 0.6 low at 30 degC, 0.85 low at 35.
        let r: Vec<(f32, f32)> = [30.0f32, 35.0, 40.0].iter().map(|&s| (s, (s + 1.0) / 1.05)).collect();
        let c = fit(&r).expect("fit");
        assert!((c.gain - 1.05).abs() < 1e-3 && (c.offset_c + 1.0).abs() < 0.02, "{c:?}");
        assert_eq!(c.set_points, 3);
        let one = fit(&[(35.0, 34.5), (35.0, 34.7)]).expect("offset only");
        assert_eq!(one.gain, 1.0);
        assert!((one.offset_c - 0.4).abs() < 1e-4);
    }

    #[test]
    fn too_few_or_inconsistent_readings_are_refused_in_both_languages() {
        for (r, why) in [
            (vec![(35.0, 34.5)], "at least two"),
            (vec![(35.0, 34.0), (35.0, 35.0)], "differ by"),
            (vec![(35.0, 34.5), (36.0, 35.6)], "apart"),
            (vec![(30.0, 30.0), (40.0, 30.5)], "gain"),
            (vec![(30.0, 30.0), (35.0, 36.0), (40.0, 39.0)], "one line"),
        ] {
            let e = fit(&r).expect_err(why);
            assert!(e.contains(why), "{why}: {e}");
            assert!(e.chars().any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c)), "Korean too: {e}");
        }
        assert!(parse_reading("35=x").is_err());
        assert!(parse_reading("90=35").unwrap_err().contains("20-60"));
        assert_eq!(parse_reading(" 35.0 = 34.6 ").ok(), Some((35.0, 34.6)));
    }
}

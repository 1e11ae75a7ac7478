//! Is a decoded air reading physically possible? A frame can pass its checksum and still be
//! nonsense (a failing laser, a sensor answering with its error value, a bridge that mangles
//! bytes consistently). Such a reading must never be published as air quality: the stage reports
//! the sensor faulty with the reason.
//!
//! Bounds: PMS5003 effective range 0–500 µg/m³ (PM2.5 standard), maximum range at least
//! 1000 µg/m³ (datasheet), so anything above [`PM_MAX_UG_M3`] is refused. Mass and counts are
//! cumulative by definition (PM1 ⊂ PM2.5 ⊂ PM10; "particles above X µm"), so their order is
//! checked; a small tolerance covers rounding of the mass values. MH-Z19B range 0–5000 ppm by
//! default (datasheet), and no air a person breathes is below [`CO2_MIN_PPM`] (outdoor air is
//! about 420 ppm, and the sensor's self-calibration takes 400 ppm as its floor). Warming
//! readings pass: they are marked, not measured.

use super::{Co2Reading, PmReading};

/// The highest PM value the sensor can report (maximum range, datasheet).
pub const PM_MAX_UG_M3: u16 = 1000;
/// PM1 may exceed PM2.5 (or PM2.5 PM10) by this much plus [`PM_ORDER_TOLERANCE_FRAC`] of the
/// larger fraction before it counts as impossible: the sensor rounds each value separately.
pub const PM_ORDER_TOLERANCE_UG_M3: u16 = 5;
pub const PM_ORDER_TOLERANCE_FRAC: f32 = 0.1;
/// Formaldehyde above this is refused: twenty times the WHO indoor guideline (0.1 mg/m³), far
/// past anything a room is used at. The PMS5003ST's own range could not be confirmed.
pub const HCHO_MAX_UG_M3: u16 = 2000;
/// Temperatures a kiosk's entrance can have; outside them the reading is a fault.
pub const TEMPERATURE_MIN_C: f32 = -20.0;
pub const TEMPERATURE_MAX_C: f32 = 60.0;
/// The MH-Z19B's default detection range.
pub const CO2_RANGE_PPM: u16 = 5000;
/// Below this no breathable air is: outdoor air is about 420 ppm.
pub const CO2_MIN_PPM: u16 = 300;

/// `Ok` when the reading may be published; otherwise why the sensor is faulty.
pub fn check_pm(r: &PmReading) -> Result<(), String> {
    let masses = [
        ("PM1.0 (CF=1)", r.pm1_cf1),
        ("PM2.5 (CF=1)", r.pm25_cf1),
        ("PM10 (CF=1)", r.pm10_cf1),
        ("PM1.0", r.pm1),
        ("PM2.5", r.pm25),
        ("PM10", r.pm10),
    ];
    if let Some((name, v)) = masses.iter().find(|(_, v)| *v > PM_MAX_UG_M3) {
        return Err(format!(
            "{name} reads {v} µg/m³, above the sensor's {PM_MAX_UG_M3} µg/m³ maximum range / 미세먼지 값이 측정 범위 밖"
        ));
    }
    for w in [[masses[0], masses[1]], [masses[1], masses[2]], [masses[3], masses[4]], [masses[4], masses[5]]] {
        let [(small_name, small), (large_name, large)] = w;
        let allowed = u32::from(large)
            + u32::from(PM_ORDER_TOLERANCE_UG_M3)
            + (f32::from(large) * PM_ORDER_TOLERANCE_FRAC) as u32;
        if u32::from(small) > allowed {
            return Err(format!(
                "{small_name} reads {small} µg/m³ but {large_name} only {large}: the smaller fraction cannot exceed the larger / 미세먼지 값이 서로 맞지 않음"
            ));
        }
    }
    if let Some(i) = (1..6).find(|&i| r.counts[i] > r.counts[i - 1]) {
        return Err(format!(
            "{} particles/0.1 L above {} µm but only {} above {} µm: counts must not grow with size / 입자 수가 맞지 않음",
            r.counts[i],
            super::COUNT_SIZES_UM[i],
            r.counts[i - 1],
            super::COUNT_SIZES_UM[i - 1]
        ));
    }
    if r.pm10 > 0 && r.counts[0] == 0 {
        return Err(format!(
            "PM10 reads {} µg/m³ with no particles counted: mass without particles / 입자 없이 질량만 있음",
            r.pm10
        ));
    }
    if let Some(h) = r.hcho_ug_m3.filter(|h| *h > HCHO_MAX_UG_M3) {
        return Err(format!("formaldehyde reads {h} µg/m³, above {HCHO_MAX_UG_M3} µg/m³ / 폼알데하이드 값이 범위 밖"));
    }
    if let Some(t) = r.temperature_c.filter(|t| !(TEMPERATURE_MIN_C..=TEMPERATURE_MAX_C).contains(t)) {
        return Err(format!(
            "temperature {t} degC outside {TEMPERATURE_MIN_C}..{TEMPERATURE_MAX_C} degC / 온도 값이 범위 밖"
        ));
    }
    if let Some(h) = r.humidity_pct.filter(|h| !(0.0..=100.0).contains(h)) {
        return Err(format!("relative humidity {h} % outside 0..100 % / 습도 값이 범위 밖"));
    }
    Ok(())
}

/// `Ok` when the reading may be published; `range_ppm` is the sensor's configured range
/// ([`CO2_RANGE_PPM`] by default).
pub fn check_co2(r: &Co2Reading, range_ppm: u16) -> Result<(), String> {
    if r.warming {
        return Ok(());
    }
    if r.ppm > range_ppm {
        return Err(format!(
            "CO2 reads {} ppm, above the sensor's {range_ppm} ppm range / 이산화탄소 값이 측정 범위 밖",
            r.ppm
        ));
    }
    if r.ppm < CO2_MIN_PPM {
        return Err(format!(
            "CO2 reads {} ppm, below any breathable air (~420 ppm outdoors): sensor fault or lost calibration / 이산화탄소 값이 너무 낮음",
            r.ppm
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_reading() -> PmReading {
        PmReading {
            pm1_cf1: 8,
            pm25_cf1: 12,
            pm10_cf1: 15,
            pm1: 8,
            pm25: 12,
            pm10: 15,
            counts: [1500, 420, 80, 10, 2, 0],
            ..PmReading::default()
        }
    }

    #[test]
    fn impossible_pm_readings_are_refused_with_a_reason() {
        assert_eq!(check_pm(&ok_reading()), Ok(()));
        let warming = PmReading { warming: true, ..PmReading::default() };
        assert_eq!(check_pm(&warming), Ok(()), "warming is marked, not faulty");
        let cases: Vec<(PmReading, &str)> = vec![
            (PmReading { pm25: 1001, pm10: 1001, ..ok_reading() }, "maximum range"),
            (PmReading { pm10_cf1: 65535, ..ok_reading() }, "maximum range"),
            (PmReading { pm25: 60, pm10: 20, ..ok_reading() }, "cannot exceed"),
            (PmReading { pm1_cf1: 40, ..ok_reading() }, "cannot exceed"),
            (PmReading { counts: [100, 420, 80, 10, 2, 0], ..ok_reading() }, "must not grow"),
            (PmReading { counts: [0; 6], ..ok_reading() }, "without particles"),
            (PmReading { hcho_ug_m3: Some(60000), ..ok_reading() }, "formaldehyde"),
            (PmReading { temperature_c: Some(-40.0), ..ok_reading() }, "temperature"),
            (PmReading { temperature_c: Some(f32::NAN), ..ok_reading() }, "temperature"),
            (PmReading { humidity_pct: Some(100.5), ..ok_reading() }, "humidity"),
        ];
        for (r, reason) in cases {
            let err = check_pm(&r).expect_err(reason);
            assert!(err.contains(reason), "{err:?} should mention {reason:?}");
        }
        // Rounding: PM2.5 one above PM10 is within tolerance.
        assert_eq!(check_pm(&PmReading { pm25: 16, ..ok_reading() }), Ok(()));
    }

    #[test]
    fn co2_outside_the_range_or_below_outdoor_air_is_refused() {
        for ppm in [400, 1200, 5000] {
            assert_eq!(check_co2(&Co2Reading { ppm, warming: false }, CO2_RANGE_PPM), Ok(()));
        }
        assert!(check_co2(&Co2Reading { ppm: 5001, warming: false }, CO2_RANGE_PPM).is_err());
        assert!(check_co2(&Co2Reading { ppm: 2500, warming: false }, 2000).is_err());
        assert!(check_co2(&Co2Reading { ppm: 0, warming: false }, CO2_RANGE_PPM).is_err());
        assert_eq!(check_co2(&Co2Reading { ppm: 0, warming: true }, CO2_RANGE_PPM), Ok(()));
    }
}

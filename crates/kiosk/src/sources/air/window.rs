//! Means over a window of readings, what the stage publishes (a particle sensor sends about one
//! frame a second; a minute's mean is steadier and what air-quality indices are defined over).
//! Warming readings are left out and counted, so a window that is all warm-up says so instead of
//! reporting clean air.

use super::humidity::pm_humidity_correction_with;
use super::{Co2Reading, PmReading};

/// The mean of the measured (not warming) particle readings of a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PmMean {
    /// Readings averaged.
    pub n: usize,
    /// Warming readings left out.
    pub warming: usize,
    pub pm1: f32,
    pub pm25: f32,
    pub pm10: f32,
    pub hcho_ug_m3: Option<f32>,
    pub temperature_c: Option<f32>,
    pub humidity_pct: Option<f32>,
}

fn mean(values: impl Iterator<Item = f32>) -> Option<f32> {
    let (sum, n) = values.fold((0.0f64, 0usize), |(s, n), v| (s + f64::from(v), n + 1));
    (n > 0).then(|| (sum / n as f64) as f32)
}

impl PmMean {
    /// `None` when the window has no measured reading (empty, or all warming).
    pub fn of(readings: &[PmReading]) -> Option<PmMean> {
        let measured: Vec<&PmReading> = readings.iter().filter(|r| !r.warming).collect();
        let m = |f: fn(&PmReading) -> u16| mean(measured.iter().map(|r| f32::from(f(r))));
        Some(PmMean {
            n: measured.len(),
            warming: readings.len() - measured.len(),
            pm1: m(|r| r.pm1)?,
            pm25: m(|r| r.pm25)?,
            pm10: m(|r| r.pm10)?,
            hcho_ug_m3: mean(measured.iter().filter_map(|r| r.hcho_ug_m3).map(f32::from)),
            temperature_c: mean(measured.iter().filter_map(|r| r.temperature_c)),
            humidity_pct: mean(measured.iter().filter_map(|r| r.humidity_pct)),
        })
    }

    /// PM1, PM2.5 and PM10 corrected for humidity (see [`super::humidity`]), with `rh_pct` from
    /// another sensor or, when `None`, the window's own humidity; unchanged when neither exists.
    pub fn humidity_corrected(&self, rh_pct: Option<f32>, kappa: f32, density: f32) -> [f32; 3] {
        let pms = [self.pm1, self.pm25, self.pm10];
        match rh_pct.or(self.humidity_pct) {
            Some(rh) => pms.map(|pm| pm_humidity_correction_with(pm, rh, kappa, density)),
            None => pms,
        }
    }
}

/// The mean CO2 of the measured readings of a window, and how many were warming.
pub fn co2_mean(readings: &[Co2Reading]) -> (Option<f32>, usize) {
    let warming = readings.iter().filter(|r| r.warming).count();
    (mean(readings.iter().filter(|r| !r.warming).map(|r| f32::from(r.ppm))), warming)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warming_readings_are_left_out_and_counted() {
        let r = |pm25: u16, rh: Option<f32>| PmReading {
            pm1: pm25 / 2,
            pm25,
            pm10: pm25 + 2,
            humidity_pct: rh,
            counts: [900, 300, 50, 5, 1, 0],
            ..PmReading::default()
        };
        let warm = PmReading { warming: true, ..PmReading::default() };
        let m = PmMean::of(&[warm, r(10, Some(80.0)), r(20, Some(90.0)), warm]).expect("measured readings");
        assert_eq!((m.n, m.warming), (2, 2));
        assert_eq!((m.pm1, m.pm25, m.pm10), (7.5, 15.0, 17.0));
        assert_eq!(m.humidity_pct, Some(85.0));
        assert_eq!(m.hcho_ug_m3, None);
        let [_, dry25, _] = m.humidity_corrected(None, 0.3, 1.65);
        assert!(dry25 < 15.0 / 2.0, "at 85 % RH the correction more than halves PM2.5: {dry25}");
        assert_eq!(m.humidity_corrected(Some(0.0), 0.3, 1.65), [7.5, 15.0, 17.0]);
        assert_eq!(PmMean::of(&[warm, warm]), None, "all warm-up is no measurement");
        let (co2, warming) =
            co2_mean(&[Co2Reading { ppm: 555, warming: true }, Co2Reading { ppm: 800, warming: false }]);
        assert_eq!((co2, warming), (Some(800.0), 1));
    }
}

//! Optical particle sensors count and size particles as they are, water included: in humid air
//! hygroscopic particles take up water and grow, so a PMS5003 reads high (strongly above about
//! 70–75 % RH, Jayaratne et al. 2018, AMT 11, 4883). Reference monitors dry the air first.
//!
//! The correction is the κ-Köhler mass growth factor used by Crilley et al. 2018 (AMT 11, 709,
//! "Evaluation of a low-cost optical particle counter (Alphasense OPC-N2) for ambient air
//! monitoring") and developed further by Di Antonio et al. 2018 (Sensors 18, 2790):
//!
//! ```text
//! C(RH) = 1 + (κ / ρ) / (1 / a_w − 1),   a_w = RH / 100,   PM_dry = PM / C
//! ```
//!
//! It follows from κ-Köhler theory without the curvature term (Petters & Kreidenweis 2007,
//! ACP 7, 1961): the water taken up per volume of dry particle is κ·a_w/(1−a_w); divided by the
//! dry particle's density relative to water (ρ, 1.65 in Crilley et al.) it is the added mass.
//! The κ-Köhler relation was checked against public code; the exact form and constants of the
//! two papers are as recalled, not re-read (the papers were not reachable here). κ depends on
//! the aerosol (roughly 0.1 for organic-rich, 0.6 for ammonium sulfate) and is best fitted per
//! site; [`DEFAULT_KAPPA`] is a middle value, a tunable, not a measurement.

/// Hygroscopicity used when none is configured.
pub const DEFAULT_KAPPA: f32 = 0.3;
/// Dry particle density relative to water (Crilley et al. 2018).
pub const DEFAULT_DENSITY: f32 = 1.65;
/// Growth diverges towards saturation; above this (fog, condensation) the correction is held
/// at its value here rather than dividing by nearly nothing.
pub const MAX_RH_PCT: f32 = 95.0;

/// The mass growth factor C(RH) (at least 1). Humidity is clamped to 0..=[`MAX_RH_PCT`].
pub fn growth_factor(rh_pct: f32, kappa: f32, density: f32) -> f32 {
    if !rh_pct.is_finite() || !kappa.is_finite() || !density.is_finite() || kappa <= 0.0 || density <= 0.0 {
        return 1.0;
    }
    let aw = rh_pct.clamp(0.0, MAX_RH_PCT) / 100.0;
    1.0 + (kappa / density) * aw / (1.0 - aw)
}

/// `pm` (µg/m³, as read at `rh_pct` % relative humidity) corrected to dry particles with the
/// default κ and density.
pub fn pm_humidity_correction(pm: f32, rh_pct: f32) -> f32 {
    pm_humidity_correction_with(pm, rh_pct, DEFAULT_KAPPA, DEFAULT_DENSITY)
}

pub fn pm_humidity_correction_with(pm: f32, rh_pct: f32, kappa: f32, density: f32) -> f32 {
    pm / growth_factor(rh_pct, kappa, density)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_small_when_dry_large_when_humid_and_bounded() {
        assert_eq!(growth_factor(0.0, DEFAULT_KAPPA, DEFAULT_DENSITY), 1.0);
        // a_w = 0.5: 1 + (0.3 / 1.65) * 1 = 1.1818...
        assert!((growth_factor(50.0, 0.3, 1.65) - 1.181_818).abs() < 1e-4);
        // a_w = 0.9: 1 + (0.3 / 1.65) * 9 = 2.6363...
        assert!((growth_factor(90.0, 0.3, 1.65) - 2.636_364).abs() < 1e-4);
        let at_cap = growth_factor(MAX_RH_PCT, 0.3, 1.65);
        assert_eq!(growth_factor(100.0, 0.3, 1.65), at_cap);
        assert!(at_cap.is_finite() && at_cap > 4.0);
        let mut last = 0.0;
        for rh in 0..=100 {
            let c = growth_factor(rh as f32, 0.3, 1.65);
            assert!(c >= last, "monotone in RH");
            last = c;
        }
        assert_eq!(pm_humidity_correction(30.0, f32::NAN), 30.0, "no humidity, no correction");
        assert!((pm_humidity_correction(26.36364, 90.0) - 10.0).abs() < 1e-3);
    }
}

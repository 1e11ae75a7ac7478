//! `dolbom calibrate thermal`: the camera-to-thermal transform from point pairs.

use std::process::ExitCode;

use anyhow::Result;

/// Camera pixel coordinates a point may have: image sizes up to 16K.
const CAMERA_MAX_PX: f64 = 16_384.0;
/// Thermal pixel coordinates: arrays up to 1024 wide (the MLX90640 is 32x24).
const THERMAL_MAX_PX: f64 = 1_024.0;

pub fn thermal(pairs: Vec<String>) -> Result<ExitCode> {
    let pairs = pairs.iter().map(|p| parse_pair(p)).collect::<Result<Vec<_>>>()?;
    let m = dolbom_kiosk::screening::fusion::fit_affine(&pairs).map_err(anyhow::Error::msg)?;
    // Points that are finite and in range can still fit a degenerate transform (rounding).
    let [a, b, _, d, e, _] = m;
    anyhow::ensure!(
        m.iter().all(|v| v.is_finite()) && (a * e - b * d).abs() >= 1e-9,
        "these points do not give an invertible transform; use points spread over the view"
    );
    let residual = dolbom_kiosk::screening::fusion::rms_error(&m, &pairs);
    outln!("# fitted from {} point pairs; RMS error {residual:.2} thermal pixels", pairs.len())?;
    outln!("calibration = [{:.6}, {:.6}, {:.4}, {:.6}, {:.6}, {:.4}]", m[0], m[1], m[2], m[3], m[4], m[5])?;
    Ok(ExitCode::SUCCESS)
}

fn parse_pair(s: &str) -> Result<([f64; 2], [f64; 2])> {
    let bad = || anyhow::anyhow!("`{s}` is not CAMERA_X,CAMERA_Y=THERMAL_X,THERMAL_Y");
    let (a, b) = s.split_once('=').ok_or_else(bad)?;
    let xy = |t: &str, what: &str, max: f64| -> Result<[f64; 2]> {
        let (x, y) = t.split_once(',').ok_or_else(bad)?;
        let coord = |v: &str| -> Result<f64> {
            let v: f64 = v.trim().parse().map_err(|_| bad())?;
            // `NaN` and `inf` parse as numbers; no point is there.
            anyhow::ensure!(
                v.is_finite() && (0.0..=max).contains(&v),
                "`{s}`: {what} coordinate {v} must be a number from 0 to {max} pixels"
            );
            Ok(v)
        };
        Ok([coord(x)?, coord(y)?])
    };
    Ok((xy(a, "camera", CAMERA_MAX_PX)?, xy(b, "thermal", THERMAL_MAX_PX)?))
}

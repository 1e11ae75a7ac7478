//! `dolbom calibrate thermal`: the camera-to-thermal transform from point pairs.

use std::process::ExitCode;

use anyhow::Result;

pub fn thermal(pairs: Vec<String>) -> Result<ExitCode> {
    let pairs = pairs.iter().map(|p| parse_pair(p)).collect::<Result<Vec<_>>>()?;
    let m = dolbom_kiosk::screening::fusion::fit_affine(&pairs).map_err(anyhow::Error::msg)?;
    let residual = dolbom_kiosk::screening::fusion::rms_error(&m, &pairs);
    outln!("# fitted from {} point pairs; RMS error {residual:.2} thermal pixels", pairs.len())?;
    outln!("calibration = [{:.6}, {:.6}, {:.4}, {:.6}, {:.6}, {:.4}]", m[0], m[1], m[2], m[3], m[4], m[5])?;
    Ok(ExitCode::SUCCESS)
}

fn parse_pair(s: &str) -> Result<([f64; 2], [f64; 2])> {
    let bad = || anyhow::anyhow!("`{s}` is not CAMERA_X,CAMERA_Y=THERMAL_X,THERMAL_Y");
    let (a, b) = s.split_once('=').ok_or_else(bad)?;
    let xy = |t: &str| -> Result<[f64; 2]> {
        let (x, y) = t.split_once(',').ok_or_else(bad)?;
        Ok([x.trim().parse().map_err(|_| bad())?, y.trim().parse().map_err(|_| bad())?])
    };
    Ok((xy(a)?, xy(b)?))
}

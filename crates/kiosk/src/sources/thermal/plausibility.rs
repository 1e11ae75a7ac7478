//! Is a decoded thermal frame physically possible? A frame can pass every checksum and still be
//! nonsense: a dead sensor reads -327.68 degC everywhere (the most negative 16-bit value in
//! 0.01 degC), a hung module repeats its last frame forever, a bridge prints `nan`. Such a frame
//! must never become a temperature: the sensor is reported faulty with the reason and screening
//! says "not measured".
//!
//! Bounds are the MLX90640 datasheet's (object -40..300 degC, operating/die -40..85 degC); the
//! CSV line protocol's small arrays (e.g. AMG8833, 0..80 degC) lie inside them, so one check
//! serves both decoders.

use super::ThermalFrame;

/// Object (pixel) temperatures the sensor is specified for, in degC.
pub const PIXEL_MIN_C: f32 = -40.0;
pub const PIXEL_MAX_C: f32 = 300.0;
/// The sensor's own (die) temperature range in operation, in degC.
pub const AMBIENT_MIN_C: f32 = -40.0;
pub const AMBIENT_MAX_C: f32 = 85.0;

/// Frames identical to the previous one, in a row, after which the sensor counts as frozen
/// (`thermal.frozen_frames`): one second at the module's usual 8 Hz. Sensor noise (0.1 K RMS
/// on the MLX90640, in 0.01 degC steps) makes two real frames differ in some pixel; a frozen
/// frame that still shows the empty doorway reads a face at wall temperature, which the skin
/// range of `screening::fusion` refuses meanwhile.
pub const DEFAULT_FROZEN_FRAMES: u32 = 8;

/// Checks each frame alone (range, finiteness, a flat image) and the stream (a frozen one).
#[derive(Debug)]
pub struct Plausibility {
    frozen_after: u32,
    previous: Option<Vec<u32>>,
    repeats: u32,
}

impl Plausibility {
    /// `frozen_after`: this many identical frames in a row mean a frozen sensor (at least 2).
    pub fn new(frozen_after: u32) -> Self {
        Self { frozen_after: frozen_after.max(2), previous: None, repeats: 0 }
    }

    /// `Ok` when the frame may be measured from; otherwise why the sensor is faulty.
    pub fn check(&mut self, frame: &ThermalFrame) -> Result<(), String> {
        // Compare bit patterns: cheap, and NaN equals itself here.
        let bits: Vec<u32> = frame.pixels.iter().map(|p| p.to_bits()).collect();
        if self.previous.as_ref() == Some(&bits) {
            self.repeats = self.repeats.saturating_add(1);
        } else {
            self.repeats = 1;
            self.previous = Some(bits);
        }
        check_frame(frame)?;
        if self.repeats >= self.frozen_after {
            return Err(format!(
                "the same frame {} times in a row: the sensor is frozen / 센서가 멈춤 (같은 화면 반복)",
                self.repeats
            ));
        }
        Ok(())
    }
}

/// The checks that need no history: every value finite and in the sensor's range, and not every
/// pixel the same (a real scene, even an empty wall, has noise).
pub fn check_frame(frame: &ThermalFrame) -> Result<(), String> {
    if frame.pixels.is_empty() || frame.pixels.len() != frame.width * frame.height {
        return Err(format!("frame has {} pixels for {}x{}", frame.pixels.len(), frame.width, frame.height));
    }
    if let Some(a) = frame.ambient_c {
        if !(AMBIENT_MIN_C..=AMBIENT_MAX_C).contains(&a) {
            return Err(format!(
                "sensor (die) temperature {a} degC outside {AMBIENT_MIN_C}..{AMBIENT_MAX_C} degC / 센서 온도 범위 밖"
            ));
        }
    }
    if let Some((i, p)) = frame.pixels.iter().enumerate().find(|(_, p)| !(PIXEL_MIN_C..=PIXEL_MAX_C).contains(*p)) {
        return Err(format!(
            "pixel {i} reads {p} degC, outside the sensor's {PIXEL_MIN_C}..{PIXEL_MAX_C} degC / 픽셀 값이 측정 범위 밖"
        ));
    }
    let first = frame.pixels[0];
    if frame.pixels.len() > 1 && frame.pixels.iter().all(|p| *p == first) {
        return Err(format!("every pixel reads {first} degC: not a real scene / 모든 픽셀 값이 같음"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pixels: Vec<f32>, ambient: Option<f32>) -> ThermalFrame {
        ThermalFrame { width: pixels.len(), height: 1, pixels, ambient_c: ambient, mono_ms: 0 }
    }

    fn scene(offset: f32) -> Vec<f32> {
        (0..64).map(|i| 22.0 + offset + (i % 7) as f32 * 0.25).collect()
    }

    #[test]
    fn out_of_range_non_finite_and_flat_frames_are_faulty() {
        let mut bad: Vec<(&str, ThermalFrame)> = Vec::new();
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -327.68, -40.01, 300.01, 327.67, 1e30] {
            let mut px = scene(0.0);
            px[5] = v;
            bad.push(("one bad pixel", frame(px, Some(24.0))));
        }
        for v in [80.0, 36.6, -327.68, 0.0, 300.0] {
            bad.push(("flat", frame(vec![v; 64], Some(24.0))));
        }
        for a in [f32::NAN, -327.68, 85.01, -40.5, 1e9] {
            bad.push(("ambient", frame(scene(0.0), Some(a))));
        }
        bad.push(("empty", frame(Vec::new(), Some(24.0))));
        for (what, f) in &bad {
            assert!(check_frame(f).is_err(), "{what}: {:?}", f.pixels.get(5));
            assert!(Plausibility::new(16).check(f).is_err(), "{what}");
        }
        for ok in [scene(0.0), scene(-60.0), scene(270.0)] {
            assert_eq!(check_frame(&frame(ok, None)), Ok(()));
        }
    }

    #[test]
    fn a_repeated_frame_is_frozen_and_a_new_one_recovers() {
        let mut p = Plausibility::new(4);
        let f = frame(scene(0.0), Some(24.0));
        for _ in 0..3 {
            assert_eq!(p.check(&f), Ok(()));
        }
        let err = p.check(&f).expect_err("the fourth identical frame");
        assert!(err.contains("frozen"), "{err}");
        assert!(p.check(&f).is_err(), "still frozen");
        assert_eq!(p.check(&frame(scene(0.5), Some(24.0))), Ok(()), "a changed frame is fine again");
        // Alternating frames are not frozen.
        for i in 0..20 {
            assert_eq!(p.check(&frame(scene((i % 2) as f32), Some(24.0))), Ok(()));
        }
    }
}

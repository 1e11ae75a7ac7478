//! The aligner stage: warps a detected face onto the landmark template its embedder expects.

use opencv::core::{Mat, Scalar, Size, BORDER_CONSTANT};
use opencv::imgproc;

use super::{Detection, FaceError};

pub trait Aligner: Send {
    /// Returns the aligned face crop (8-bit BGR) at the embedder's input size.
    fn align(&self, image: &Mat, face: &Detection) -> Result<Mat, FaceError>;
}

/// The five-point template of ArcFace-style recognisers (InsightFace, SFace), in a 112x112 crop.
pub const ARCFACE_112: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// Least-squares similarity transform (rotation, uniform scale, translation) from five landmarks
/// onto a template.
pub struct FivePointAligner {
    template: [[f32; 2]; 5],
    size: i32,
}

impl FivePointAligner {
    pub fn arcface_112() -> Self {
        Self { template: ARCFACE_112, size: 112 }
    }

    pub fn new(template: [[f32; 2]; 5], size: i32) -> Self {
        Self { template, size }
    }
}

impl Aligner for FivePointAligner {
    fn align(&self, image: &Mat, face: &Detection) -> Result<Mat, FaceError> {
        let m = similarity_transform(&face.landmarks, &self.template);
        let m = Mat::from_slice_2d(&[[m[0], m[1], m[2]], [m[3], m[4], m[5]]])?;
        let mut out = Mat::default();
        imgproc::warp_affine(
            image,
            &mut out,
            &m,
            Size::new(self.size, self.size),
            imgproc::INTER_LINEAR,
            BORDER_CONSTANT,
            Scalar::default(),
        )?;
        Ok(out)
    }
}

/// The 2x3 matrix [a, -b, tx; b, a, ty] minimising the squared distance between the mapped `src`
/// points and `dst`. In two dimensions Umeyama's method (without reflection), which OpenCV's
/// FaceRecognizerSF uses, reduces to this closed form.
pub fn similarity_transform(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> [f64; 6] {
    let n = src.len() as f64;
    let mean = |pts: &[[f32; 2]; 5]| {
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(x, y), p| (x + f64::from(p[0]), y + f64::from(p[1])));
        (sx / n, sy / n)
    };
    let (smx, smy) = mean(src);
    let (dmx, dmy) = mean(dst);
    let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (x, y) = (f64::from(s[0]) - smx, f64::from(s[1]) - smy);
        let (u, v) = (f64::from(d[0]) - dmx, f64::from(d[1]) - dmy);
        dot += x * u + y * v;
        cross += x * v - y * u;
        var += x * x + y * y;
    }
    if var <= f64::EPSILON {
        // All landmarks on one point: no rotation or scale can be recovered; translate only.
        return [1.0, 0.0, dmx - smx, 0.0, 1.0, dmy - smy];
    }
    let (a, b) = (dot / var, cross / var);
    [a, -b, dmx - (a * smx - b * smy), b, a, dmy - (b * smx + a * smy)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &[f64; 6], p: [f32; 2]) -> (f64, f64) {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    #[test]
    fn recovers_a_known_similarity() {
        // Rotate the template by 20 degrees, scale by 2.5 and shift: the fit must undo exactly that.
        let (c, s, k) = (20f64.to_radians().cos(), 20f64.to_radians().sin(), 2.5);
        let src: [[f32; 2]; 5] = ARCFACE_112.map(|[x, y]| {
            [
                (k * (c * f64::from(x) - s * f64::from(y)) + 300.0) as f32,
                (k * (s * f64::from(x) + c * f64::from(y)) + 40.0) as f32,
            ]
        });
        let m = similarity_transform(&src, &ARCFACE_112);
        for (p, q) in src.iter().zip(ARCFACE_112.iter()) {
            let (x, y) = apply(&m, *p);
            assert!((x - f64::from(q[0])).abs() < 1e-3 && (y - f64::from(q[1])).abs() < 1e-3, "{x},{y} vs {q:?}");
        }
    }

    #[test]
    fn degenerate_landmarks_do_not_produce_nan() {
        let m = similarity_transform(&[[5.0, 5.0]; 5], &ARCFACE_112);
        assert!(m.iter().all(|v| v.is_finite()));
    }
}

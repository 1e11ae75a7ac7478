//! The face pipeline's stages and the types they pass along.
//!
//! [`detect`] finds faces and their five landmarks, [`align`] warps each face onto the template
//! its embedder was trained with, [`embed`] turns the aligned crop into an L2-normalised vector,
//! and [`quality`] judges whether a face is good enough to enrol. [`FaceModels`] builds the
//! configured detector and embedder; [`gallery`] holds the enrolled people and matches against
//! them, [`identify`] runs the whole chain on an image and [`enroll`] adds people;
//! [`calibrate`] measures a center's own faces to choose the match threshold.
//!
//! The crate knows nothing of the kiosk: its config sections are its own ([`config`]).

pub mod align;
pub mod calibrate;
pub mod config;
pub mod detect;
pub mod embed;
pub mod enroll;
pub mod gallery;
pub mod identify;
pub mod image;
pub mod onnx;
pub mod quality;
pub mod sface;
pub mod yunet;

use serde::Serialize;

use crate::config::{DetectorKind, EmbedderKind, FaceConfig, RuntimeConfig};
use crate::onnx::{ModelSpec, OnnxError};

pub use align::{Aligner, FivePointAligner};
pub use detect::FaceDetector;
pub use embed::{Embedding, FaceEmbedder};

/// A face found in an image, in that image's pixel coordinates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// [x1, y1, x2, y2].
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    /// Right eye, left eye, nose tip, right and left mouth corners (the subject's right/left).
    pub landmarks: [[f32; 2]; 5],
}

impl Detection {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    /// Horizontal offset of the nose from the eyes' midpoint, in eye distances: ~0 when the face
    /// looks at the camera, ~0.5 in profile.
    pub fn yaw_ratio(&self) -> f32 {
        let [re, le, nose, _, _] = self.landmarks;
        let eye_dist = ((le[0] - re[0]).powi(2) + (le[1] - re[1]).powi(2)).sqrt();
        if eye_dist <= f32::EPSILON {
            return f32::INFINITY;
        }
        let mid = (re[0] + le[0]) / 2.0;
        (nose[0] - mid).abs() / eye_dist
    }
    /// Intersection over union with another box.
    pub fn iou(&self, other: &Detection) -> f32 {
        let [ax1, ay1, ax2, ay2] = self.bbox;
        let [bx1, by1, bx2, by2] = other.bbox;
        let iw = (ax2.min(bx2) - ax1.max(bx1)).max(0.0);
        let ih = (ay2.min(by2) - ay1.max(by1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("image processing failed: {0}")]
    OpenCv(#[from] opencv::Error),
    #[error("{0}")]
    Input(String),
}

/// The configured detector, aligner and embedder, ready to run.
pub struct FaceModels {
    pub detector: Box<dyn FaceDetector>,
    pub aligner: Box<dyn Aligner>,
    pub embedder: Box<dyn FaceEmbedder>,
}

impl FaceModels {
    pub fn load(runtime: &RuntimeConfig, face: &FaceConfig) -> Result<Self, FaceError> {
        let env = onnx::environment(&runtime.onnxruntime)?;
        let threads = runtime.threads;
        let d = &face.detector;
        let detector: Box<dyn FaceDetector> = match d.kind {
            DetectorKind::Yunet => Box::new(yunet::YuNet::new(
                env,
                &ModelSpec { path: &d.model, sha256: d.sha256.as_deref(), threads },
                yunet::YuNetParams {
                    max_input_side: d.max_input_side,
                    score_threshold: d.score_threshold,
                    nms_threshold: d.nms_threshold,
                },
            )?),
        };
        let e = &face.embedder;
        let (embedder, aligner): (Box<dyn FaceEmbedder>, Box<dyn Aligner>) = match e.kind {
            EmbedderKind::Sface => (
                Box::new(sface::SFace::new(env, &ModelSpec { path: &e.model, sha256: e.sha256.as_deref(), threads })?),
                Box::new(FivePointAligner::arcface_112()),
            ),
        };
        Ok(Self { detector, aligner, embedder })
    }
}

/// Packs an 8-bit, 3-channel image into a planar float tensor of `padded` (width, height),
/// optionally swapping B and R. The padding at the right and bottom is zero, as OpenCV's
/// `copyMakeBorder` with a constant border gives.
pub fn to_planar_f32(
    pixels: &[u8],
    width: usize,
    height: usize,
    padded: (usize, usize),
    swap_rb: bool,
    out: &mut Vec<f32>,
) {
    let (pw, ph) = padded;
    let plane = pw * ph;
    out.clear();
    out.resize(3 * plane, 0.0);
    let (c0, c2) = if swap_rb { (2, 0) } else { (0, 2) };
    for (y, row) in pixels.chunks_exact(3 * width).take(height.min(ph)).enumerate() {
        for (x, px) in row.chunks_exact(3).take(pw).enumerate() {
            let i = y * pw + x;
            out[i] = f32::from(px[c0]);
            out[plane + i] = f32::from(px[1]);
            out[2 * plane + i] = f32::from(px[c2]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(b: [f32; 4]) -> Detection {
        Detection { bbox: b, score: 1.0, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = det([0.0, 0.0, 10.0, 10.0]);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&det([20.0, 20.0, 30.0, 30.0])), 0.0);
        let half = a.iou(&det([5.0, 0.0, 15.0, 10.0]));
        assert!((half - 50.0 / 150.0).abs() < 1e-6, "{half}");
    }

    #[test]
    fn planar_packing_swaps_channels_on_request() {
        let px = [1u8, 2, 3, 4, 5, 6];
        let mut out = Vec::new();
        to_planar_f32(&px, 2, 1, (2, 1), false, &mut out);
        assert_eq!(out, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        to_planar_f32(&px, 2, 1, (2, 1), true, &mut out);
        assert_eq!(out, vec![3.0, 6.0, 2.0, 5.0, 1.0, 4.0]);
        to_planar_f32(&px, 2, 1, (3, 2), false, &mut out);
        assert_eq!(out, vec![1.0, 4.0, 0.0, 0.0, 0.0, 0.0, 2.0, 5.0, 0.0, 0.0, 0.0, 0.0, 3.0, 6.0, 0.0, 0.0, 0.0, 0.0]);
    }
}

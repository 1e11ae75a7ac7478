//! YuNet (OpenCV Zoo, 2023mar): a small anchor-free face detector with five landmarks.
//!
//! The model is run at the image's own aspect ratio: the image is scaled so its longest side is
//! at most `max_input_side`, padded at the bottom and right to multiples of 32 (the model's
//! largest stride), and decoded exactly as OpenCV's `FaceDetectorYN` does, so the two agree.

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Size};
use opencv::imgproc;
use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use super::detect::{non_max_suppression, FaceDetector};
use super::{to_planar_f32, Detection, FaceError};
use crate::onnx::{self, ModelSpec, OnnxError};

const STRIDES: [usize; 3] = [8, 16, 32];
const DIVISOR: usize = 32;
const OUTPUTS: [&str; 12] = [
    "cls_8", "cls_16", "cls_32", "obj_8", "obj_16", "obj_32", "bbox_8", "bbox_16", "bbox_32", "kps_8", "kps_16",
    "kps_32",
];

#[derive(Debug, Clone, Copy)]
pub struct YuNetParams {
    pub max_input_side: u32,
    pub score_threshold: f32,
    pub nms_threshold: f32,
}

pub struct YuNet {
    session: Session,
    params: YuNetParams,
    input: Vec<f32>,
}

impl YuNet {
    pub fn new(env: &Environment, spec: &ModelSpec<'_>, params: YuNetParams) -> Result<Self, OnnxError> {
        let session = onnx::open_session(env, spec)?;
        onnx::require_names(&session, "YuNet", &["input"], &OUTPUTS)?;
        Ok(Self { session, params, input: Vec::new() })
    }

    /// The size the image is scaled to before padding: longest side at most `max_input_side`.
    pub fn working_size(&self, width: i32, height: i32) -> (i32, i32) {
        let longest = width.max(height) as f32;
        let scale = (self.params.max_input_side as f32 / longest).min(1.0);
        if scale >= 1.0 {
            (width, height)
        } else {
            (((width as f32) * scale).round().max(1.0) as i32, ((height as f32) * scale).round().max(1.0) as i32)
        }
    }

    /// Runs the network on an image already at its working size and returns all candidate
    /// faces above the score threshold, in that image's coordinates, before suppression.
    fn infer(&mut self, image: &Mat) -> Result<Vec<Detection>, FaceError> {
        let (w, h) = (image.cols() as usize, image.rows() as usize);
        let (pw, ph) = (w.div_ceil(DIVISOR) * DIVISOR, h.div_ceil(DIVISOR) * DIVISOR);
        let owned;
        let image = if image.is_continuous() {
            image
        } else {
            owned = image.try_clone()?;
            &owned
        };
        to_planar_f32(image.data_bytes()?, w, h, (pw, ph), false, &mut self.input);

        let fail = |e: ort::Error| OnnxError::Inference { model: "YuNet".into(), reason: e.to_string() };
        let tensor = TensorRef::from_array_view(([1usize, 3, ph, pw], &self.input[..])).map_err(fail)?;
        let outputs = self.session.run(ort::inputs!["input" => tensor]).map_err(fail)?;
        let mut found = Vec::new();
        for (i, stride) in STRIDES.iter().enumerate() {
            let (cols, rows) = (pw / stride, ph / stride);
            let anchors = cols * rows;
            let get = |name: &str, width: usize| -> Result<&[f32], OnnxError> {
                let (_, data) = outputs[name].try_extract_tensor::<f32>().map_err(fail)?;
                if data.len() != anchors * width {
                    return Err(OnnxError::Inference {
                        model: "YuNet".into(),
                        reason: format!("output {name} has {} values, expected {}", data.len(), anchors * width),
                    });
                }
                Ok(data)
            };
            let cls = get(OUTPUTS[i], 1)?;
            let obj = get(OUTPUTS[3 + i], 1)?;
            let bbox = get(OUTPUTS[6 + i], 4)?;
            let kps = get(OUTPUTS[9 + i], 10)?;
            let s = *stride as f32;
            for idx in 0..anchors {
                let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
                if score < self.params.score_threshold {
                    continue;
                }
                let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
                let b = &bbox[idx * 4..idx * 4 + 4];
                let (cx, cy) = ((c + b[0]) * s, (r + b[1]) * s);
                let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
                let k = &kps[idx * 10..idx * 10 + 10];
                let mut landmarks = [[0.0f32; 2]; 5];
                for (n, lm) in landmarks.iter_mut().enumerate() {
                    *lm = [(k[2 * n] + c) * s, (k[2 * n + 1] + r) * s];
                }
                found.push(Detection {
                    bbox: [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0],
                    score,
                    landmarks,
                });
            }
        }
        Ok(found)
    }
}

impl FaceDetector for YuNet {
    fn detect(&mut self, image: &Mat) -> Result<Vec<Detection>, FaceError> {
        let (w, h) = (image.cols(), image.rows());
        if w <= 0 || h <= 0 || image.channels() != 3 || image.depth() != opencv::core::CV_8U {
            return Err(FaceError::Input(format!(
                "detector needs a non-empty 8-bit BGR image, got {w}x{h} with {} channels",
                image.channels()
            )));
        }
        let (sw, sh) = self.working_size(w, h);
        let mut found = if (sw, sh) == (w, h) {
            self.infer(image)?
        } else {
            let mut small = Mat::default();
            imgproc::resize(image, &mut small, Size::new(sw, sh), 0.0, 0.0, imgproc::INTER_LINEAR)?;
            self.infer(&small)?
        };
        let (fx, fy) = (w as f32 / sw as f32, h as f32 / sh as f32);
        for d in &mut found {
            d.bbox = [d.bbox[0] * fx, d.bbox[1] * fy, d.bbox[2] * fx, d.bbox[3] * fy];
            for lm in &mut d.landmarks {
                *lm = [lm[0] * fx, lm[1] * fy];
            }
        }
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(non_max_suppression(found, self.params.nms_threshold))
    }
}

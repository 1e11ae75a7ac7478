//! SFace (OpenCV Zoo, 2021dec): a 128-dimensional face embedder on 112x112 RGB crops.

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use super::embed::{Embedding, FaceEmbedder};
use super::{to_planar_f32, FaceError};
use crate::onnx::{self, ModelSpec, OnnxError};

const SIZE: usize = 112;

pub struct SFace {
    session: Session,
    input: Vec<f32>,
}

impl SFace {
    pub fn new(env: &Environment, spec: &ModelSpec<'_>) -> Result<Self, OnnxError> {
        let session = onnx::open_session(env, spec)?;
        onnx::require_names(&session, "SFace", &["data"], &["fc1"])?;
        Ok(Self { session, input: Vec::with_capacity(3 * SIZE * SIZE) })
    }
}

impl FaceEmbedder for SFace {
    fn model_id(&self) -> &str {
        "sface_2021dec"
    }

    fn embed(&mut self, aligned: &Mat) -> Result<Embedding, FaceError> {
        if aligned.cols() as usize != SIZE || aligned.rows() as usize != SIZE || aligned.channels() != 3 {
            return Err(FaceError::Input(format!(
                "SFace needs a 112x112 BGR crop, got {}x{} with {} channels",
                aligned.cols(),
                aligned.rows(),
                aligned.channels()
            )));
        }
        let owned;
        let aligned = if aligned.is_continuous() {
            aligned
        } else {
            owned = aligned.try_clone()?;
            &owned
        };
        // The model was trained on RGB; OpenCV hands us BGR.
        to_planar_f32(aligned.data_bytes()?, SIZE, SIZE, (SIZE, SIZE), true, &mut self.input);
        let fail = |e: ort::Error| OnnxError::Inference { model: "SFace".into(), reason: e.to_string() };
        let tensor = TensorRef::from_array_view(([1usize, 3, SIZE, SIZE], &self.input[..])).map_err(fail)?;
        let outputs = self.session.run(ort::inputs!["data" => tensor]).map_err(fail)?;
        let (_, values) = outputs["fc1"].try_extract_tensor::<f32>().map_err(fail)?;
        Embedding::normalized(values.to_vec()).ok_or_else(|| {
            FaceError::Onnx(OnnxError::Inference {
                model: "SFace".into(),
                reason: "embedding is zero or not finite".into(),
            })
        })
    }
}

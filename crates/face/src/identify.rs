//! Detect → align → embed → match, for one image at a time.

use opencv::core::Mat;
use serde::Serialize;

use crate::gallery::{Gallery, Matcher, Role};
use crate::{Detection, Embedding, FaceError, FaceModels};

/// A detected face with its aligned crop and embedding.
pub struct AnalyzedFace {
    pub detection: Detection,
    pub aligned: Mat,
    pub embedding: Embedding,
}

/// One line of `dolbom identify` output.
#[derive(Debug, Clone, Serialize)]
pub struct Identification {
    pub image: String,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    pub landmarks: [[f32; 2]; 5],
    /// The enrolled person, or null for an unknown face.
    pub person: Option<String>,
    pub role: Option<Role>,
    pub name: Option<String>,
    /// Best cosine similarity to anyone enrolled (null when nobody is enrolled).
    pub similarity: Option<f32>,
}

pub struct FacePipeline {
    pub models: FaceModels,
    pub matcher: Matcher,
}

impl FacePipeline {
    pub fn new(models: FaceModels, matcher: Matcher) -> Self {
        Self { models, matcher }
    }

    /// Detects every face and embeds each one.
    pub fn analyze(&mut self, image: &Mat) -> Result<Vec<AnalyzedFace>, FaceError> {
        let detections = self.models.detector.detect(image)?;
        let mut faces = Vec::with_capacity(detections.len());
        for detection in detections {
            let aligned = self.models.aligner.align(image, &detection)?;
            let embedding = self.models.embedder.embed(&aligned)?;
            faces.push(AnalyzedFace { detection, aligned, embedding });
        }
        Ok(faces)
    }

    /// Detects, embeds and matches every face in `image` against `gallery`.
    pub fn identify(
        &mut self,
        image_name: &str,
        image: &Mat,
        gallery: &Gallery,
    ) -> Result<Vec<Identification>, FaceError> {
        let faces = self.analyze(image)?;
        Ok(faces
            .into_iter()
            .map(|f| {
                let m = self.matcher.best(gallery, &f.embedding);
                Identification {
                    image: image_name.to_string(),
                    bbox: f.detection.bbox.map(round2),
                    score: round4(f.detection.score),
                    landmarks: f.detection.landmarks.map(|p| p.map(round2)),
                    person: m.person.map(|p| p.id.clone()),
                    role: m.person.map(|p| p.role),
                    name: m.person.map(|p| p.name.clone()),
                    similarity: m.similarity.map(round4),
                }
            })
            .collect())
    }
}

fn round2(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}
fn round4(v: f32) -> f32 {
    (v * 10_000.0).round() / 10_000.0
}

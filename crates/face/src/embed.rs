//! The embedder stage: an aligned face crop in, an L2-normalised identity vector out.

use opencv::core::Mat;
use serde::{Deserialize, Serialize};

use super::FaceError;

pub trait FaceEmbedder: Send {
    /// Identifies the model that made an embedding. Embeddings from different models cannot be
    /// compared, so the gallery records this and refuses to mix them.
    fn model_id(&self) -> &str;
    /// Embeds an aligned 8-bit BGR face crop.
    fn embed(&mut self, aligned: &Mat) -> Result<Embedding, FaceError>;
}

/// A unit-length face embedding; the dot product of two is their cosine similarity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises `values` to unit length. Returns None for an all-zero or non-finite vector,
    /// which no real face produces.
    pub fn normalized(values: Vec<f32>) -> Option<Self> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        Some(Self(values.into_iter().map(|v| v / norm).collect()))
    }

    pub fn values(&self) -> &[f32] {
        &self.0
    }

    pub fn dim(&self) -> usize {
        self.0.len()
    }

    /// Cosine similarity in [-1, 1]; 0 when the dimensions differ.
    pub fn similarity(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_compares() {
        let a = Embedding::normalized(vec![3.0, 4.0]).expect("non-zero");
        assert!((a.values()[0] - 0.6).abs() < 1e-6);
        let b = Embedding::normalized(vec![-3.0, -4.0]).expect("non-zero");
        assert!((a.similarity(&a) - 1.0).abs() < 1e-6);
        assert!((a.similarity(&b) + 1.0).abs() < 1e-6);
        assert!(Embedding::normalized(vec![0.0, 0.0]).is_none());
        assert!(Embedding::normalized(vec![f32::NAN, 1.0]).is_none());
    }
}

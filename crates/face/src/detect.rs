//! The detector stage: an image in, faces with landmarks out.

use opencv::core::Mat;

use super::{Detection, FaceError};

pub trait FaceDetector: Send {
    /// Finds faces in an 8-bit BGR image. Coordinates are in the image's own pixels, whatever
    /// resolution the model ran at internally. Results are sorted by score, best first.
    fn detect(&mut self, image: &Mat) -> Result<Vec<Detection>, FaceError>;
}

/// Greedy non-maximum suppression: keeps the best-scoring box of every cluster that overlaps by
/// more than `iou_threshold`. `dets` must be sorted by score, best first.
pub fn non_max_suppression(dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::with_capacity(dets.len().min(64));
    for d in dets {
        if kept.iter().all(|k| k.iou(&d) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection { bbox: [x, 0.0, x + 10.0, 10.0], score, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn nms_keeps_best_of_each_cluster() {
        let kept = non_max_suppression(vec![det(0.0, 0.99), det(1.0, 0.95), det(50.0, 0.93), det(51.0, 0.91)], 0.3);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.99, 0.93]);
    }
}

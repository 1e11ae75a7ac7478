//! Frame buffers handed back by the vision stage, so the camera decodes into them again.
//!
//! A 640x480 frame is 0.9 MB. A new buffer per frame means that much freshly mapped and
//! page-faulted memory 10-60 times a second, since glibc hands blocks that big back to the
//! system as soon as they are freed (src/main.rs, docs/memory.md). Three buffers in turn are
//! enough: one being decoded, one in the slot, one in the vision stage.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use opencv::core::Mat;

/// Spare buffers kept at most; more would only hold memory.
const SPARE: usize = 2;

#[derive(Clone, Default)]
pub struct FramePool(Arc<Mutex<Vec<Mat>>>);

impl FramePool {
    /// A buffer to read the next frame into: a returned one when there is one. OpenCV reuses it
    /// when the frame has the same size and type, and reallocates it otherwise.
    pub fn take(&self) -> Mat {
        self.0.lock().ok().and_then(|mut spare| spare.pop()).unwrap_or_default()
    }

    /// Wraps a decoded frame so that its buffer comes back here when the frame is dropped.
    pub fn wrap(&self, mat: Mat) -> FrameImage {
        FrameImage { mat, pool: Some(self.clone()) }
    }

    fn give(&self, mat: Mat) {
        if let Ok(mut spare) = self.0.lock() {
            if spare.len() < SPARE {
                spare.push(mat);
            }
        }
    }

    #[cfg(test)]
    fn spare(&self) -> usize {
        self.0.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// A frame's image; reads as a `Mat`. Its pixels go back to the pool on drop. Nothing can still
/// see them then: views into a `Mat` (`roi` and the like) borrow it, and copies are deep.
pub struct FrameImage {
    mat: Mat,
    pool: Option<FramePool>,
}

impl Deref for FrameImage {
    type Target = Mat;
    fn deref(&self) -> &Mat {
        &self.mat
    }
}

impl From<Mat> for FrameImage {
    /// An image that belongs to no pool (tests, other sources).
    fn from(mat: Mat) -> Self {
        Self { mat, pool: None }
    }
}

impl Drop for FrameImage {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give(std::mem::take(&mut self.mat));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{MatTraitConst, Scalar, CV_8UC3};

    fn frame() -> Mat {
        Mat::new_rows_cols_with_default(48, 64, CV_8UC3, Scalar::all(7.0)).expect("mat")
    }

    #[test]
    fn dropped_frames_come_back_and_are_reused() {
        let pool = FramePool::default();
        let first = pool.wrap(frame());
        let data = first.data();
        drop(first);
        assert_eq!(pool.spare(), 1);
        let again = pool.take();
        assert_eq!(again.data(), data, "the same pixel buffer is handed out again");
        assert_eq!(pool.spare(), 0);
        assert_eq!(pool.take().rows(), 0, "an empty pool hands out an empty Mat");
    }

    #[test]
    fn keeps_at_most_two_spares() {
        let pool = FramePool::default();
        let frames: Vec<FrameImage> = (0..4).map(|_| pool.wrap(frame())).collect();
        drop(frames);
        assert_eq!(pool.spare(), SPARE);
    }

    #[test]
    fn images_without_a_pool_just_drop() {
        let image = FrameImage::from(frame());
        assert_eq!(image.cols(), 64);
    }
}

//! Reading photos from disk, with errors that say which file and why.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst};
use opencv::imgcodecs;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// Loads a photo as 8-bit BGR, whatever its format or bit depth (PNG with alpha, 16-bit, grey).
pub fn load_bgr(path: &Path) -> Result<Mat, ImageError> {
    let unreadable = |reason: String| ImageError::Unreadable { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    let mat = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR).map_err(|e| unreadable(e.to_string()))?;
    if mat.empty() {
        return Err(unreadable("not an image in a format OpenCV can decode".into()));
    }
    Ok(mat)
}

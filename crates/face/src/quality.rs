//! Whether a detected face is good enough to enrol: big enough and sharp enough.

use opencv::core::{Mat, Vector, BORDER_DEFAULT, CV_64F};
use opencv::imgproc;

use super::{Detection, FaceError};

/// Variance of the Laplacian of the grey image: the usual focus measure. Sharp 112x112 face
/// crops score in the thousands; motion blur and defocus push it toward zero.
pub fn sharpness(aligned: &Mat) -> Result<f64, FaceError> {
    let mut grey = Mat::default();
    imgproc::cvt_color(aligned, &mut grey, imgproc::COLOR_BGR2GRAY, 0)?;
    let mut lap = Mat::default();
    imgproc::laplacian(&grey, &mut lap, CV_64F, 3, 1.0, 0.0, BORDER_DEFAULT)?;
    let mut mean = Vector::<f64>::new();
    let mut stddev = Vector::<f64>::new();
    opencv::core::mean_std_dev(&lap, &mut mean, &mut stddev, &opencv::core::no_array())?;
    let sd = stddev.get(0)?;
    Ok(sd * sd)
}

/// The shorter side of the face box in pixels.
pub fn face_size(face: &Detection) -> f32 {
    face.width().min(face.height())
}

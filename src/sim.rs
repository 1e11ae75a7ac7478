//! Simulated inputs for demos, tests and benchmarks, made from real material.
//!
//! `walk-up clip`: a video in which each given photo "walks up to the door" — it grows from a
//! third of the frame height to the full height over a couple of seconds, stays, and leaves —
//! with empty doorway frames in between. The faces are the photos' real faces; only the motion
//! is simulated.

use std::path::Path;

use opencv::core::{Mat, MatTraitConst, Rect, Scalar, Size, CV_8UC3};
use opencv::imgproc;
use opencv::videoio::{VideoWriter, VideoWriterTrait, VideoWriterTraitConst};

use crate::face::image::{load_bgr, ImageError};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("video: {0}")]
    OpenCv(#[from] opencv::Error),
    #[error("cannot write video {0} (is the directory there, and does the name end in .avi?)")]
    Writer(String),
}

#[derive(Debug, Clone, Copy)]
pub struct WalkUp {
    pub width: i32,
    pub height: i32,
    pub fps: f64,
    pub approach_secs: f64,
    pub stay_secs: f64,
    pub gap_secs: f64,
}

impl Default for WalkUp {
    fn default() -> Self {
        Self { width: 640, height: 480, fps: 10.0, approach_secs: 2.5, stay_secs: 1.5, gap_secs: 2.0 }
    }
}

/// Frame ranges in which each photo is in view, for tests and benchmarks to compare against.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    pub photo: String,
    pub first_frame: u64,
    pub last_frame: u64,
}

pub fn write_walk_up(out: &Path, photos: &[&Path], p: WalkUp) -> Result<Vec<Appearance>, SimError> {
    let fourcc = VideoWriter::fourcc('M', 'J', 'P', 'G')?;
    let size = Size::new(p.width, p.height);
    let mut writer = VideoWriter::new(out.display().to_string(), fourcc, p.fps, size, true)?;
    if !writer.is_opened()? {
        return Err(SimError::Writer(out.display().to_string()));
    }
    let background = doorway(size)?;
    let frames = |secs: f64| (secs * p.fps).round() as u64;
    let mut index = 0u64;
    let mut appearances = Vec::new();
    for _ in 0..frames(p.gap_secs) {
        writer.write(&background)?;
        index += 1;
    }
    for photo in photos {
        let image = load_bgr(photo)?;
        let (approach, stay) = (frames(p.approach_secs), frames(p.stay_secs));
        let first = index;
        for i in 0..approach + stay {
            let t = (i as f64 / approach.max(1) as f64).min(1.0);
            let frac = 0.33 + 0.67 * t;
            let frame = compose(&background, &image, frac)?;
            writer.write(&frame)?;
            index += 1;
        }
        appearances.push(Appearance { photo: photo.display().to_string(), first_frame: first, last_frame: index - 1 });
        for _ in 0..frames(p.gap_secs) {
            writer.write(&background)?;
            index += 1;
        }
    }
    writer.release()?;
    Ok(appearances)
}

/// A plain doorway: a wall gradient and a darker floor.
fn doorway(size: Size) -> Result<Mat, opencv::Error> {
    let mut m = Mat::new_size_with_default(size, CV_8UC3, Scalar::new(180.0, 190.0, 200.0, 0.0))?;
    let floor = Rect::new(0, size.height * 3 / 4, size.width, size.height - size.height * 3 / 4);
    imgproc::rectangle(&mut m, floor, Scalar::new(90.0, 100.0, 110.0, 0.0), -1, imgproc::LINE_8, 0)?;
    Ok(m)
}

/// The photo scaled to `frac` of the frame height, centred, standing on the bottom edge.
fn compose(background: &Mat, photo: &Mat, frac: f64) -> Result<Mat, opencv::Error> {
    let (fw, fh) = (background.cols(), background.rows());
    let h = ((fh as f64) * frac).round().max(2.0) as i32;
    let w = ((photo.cols() as f64) * h as f64 / photo.rows() as f64).round().max(2.0) as i32;
    let mut scaled = Mat::default();
    imgproc::resize(photo, &mut scaled, Size::new(w, h), 0.0, 0.0, imgproc::INTER_AREA)?;
    let mut frame = background.try_clone()?;
    // Crop the scaled photo to the frame if it is wider.
    let (src_x, dst_x, cw) = if w > fw { ((w - fw) / 2, 0, fw) } else { (0, (fw - w) / 2, w) };
    let src = Mat::roi(&scaled, Rect::new(src_x, 0, cw, h))?;
    let mut dst = Mat::roi_mut(&mut frame, Rect::new(dst_x, fh - h, cw, h))?;
    src.copy_to(&mut dst)?;
    Ok(frame)
}

//! Simulated inputs for demos, tests and benchmarks, made from real material.
//!
//! `walk-up clip`: a video in which each given photo "walks up to the door" — it grows from a
//! third of the frame height to the full height over a couple of seconds, stays, and leaves —
//! with empty doorway frames in between. The faces are the photos' real faces; only the motion
//! is simulated.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst, Rect, Scalar, Size, CV_8UC3};
use opencv::imgproc;
use opencv::videoio::{VideoWriter, VideoWriterTrait, VideoWriterTraitConst};

use dolbom_face::image::{load_bgr, ImageError};

pub mod air;
pub mod outdoor;
pub mod tag;
pub mod thermal;

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

/// Someone in a simulated scene: a real photo, the skin temperature the thermal simulator gives
/// their face, and whether they stay far from the door. Written `PHOTO[@SKIN_C][@far]`, e.g.
/// `obama.jpg@38.2` or `stranger.jpg@36.5@far`.
#[derive(Debug, Clone, PartialEq)]
pub struct Walker {
    pub photo: PathBuf,
    pub skin_c: f32,
    pub far: bool,
}

impl std::str::FromStr for Walker {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split('@');
        let photo = PathBuf::from(parts.next().unwrap_or_default());
        let mut w = Walker { photo, skin_c: 36.5, far: false };
        for p in parts {
            if p == "far" {
                w.far = true;
            } else {
                w.skin_c = p.parse().map_err(|_| format!("`{p}` in `{s}` is neither a temperature nor `far`"))?;
            }
        }
        Ok(w)
    }
}

impl Walker {
    /// How tall the photo stands, as a fraction of the frame height, `i` frames into its turn.
    fn frac(&self, i: u64, p: &WalkUp) -> f64 {
        let approach = (p.approach_secs * p.fps).round().max(1.0);
        let t = (i as f64 / approach).min(1.0);
        let end = if self.far { 0.25 } else { 1.0 };
        let start = if self.far { 0.2 } else { 0.33 };
        start + (end - start) * t
    }
}

/// Frame ranges in which each photo is in view, for tests and benchmarks to compare against.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    pub photo: String,
    pub first_frame: u64,
    pub last_frame: u64,
}

/// Who is in view in frame `i`, and how tall: (walker index, frames into their turn).
pub fn in_view(walkers: usize, p: &WalkUp, i: u64) -> Option<(usize, u64)> {
    let frames = |secs: f64| (secs * p.fps).round() as u64;
    let (gap, turn) = (frames(p.gap_secs), frames(p.approach_secs) + frames(p.stay_secs));
    let i = i.checked_sub(gap)?;
    let (walker, within) = ((i / (turn + gap)) as usize, i % (turn + gap));
    (walker < walkers && within < turn).then_some((walker, within))
}

pub fn total_frames(walkers: usize, p: &WalkUp) -> u64 {
    let frames = |secs: f64| (secs * p.fps).round() as u64;
    frames(p.gap_secs) + walkers as u64 * (frames(p.approach_secs) + frames(p.stay_secs) + frames(p.gap_secs))
}

/// Where a photo of `photo_w` x `photo_h` lands in the frame at height fraction `frac`: scale,
/// and the frame position of the photo's top-left corner (possibly outside the frame).
pub fn placement(photo_w: f64, photo_h: f64, frac: f64, frame_w: f64, frame_h: f64) -> (f64, f64, f64) {
    let h = (frame_h * frac).round().max(2.0);
    let k = h / photo_h;
    let w = (photo_w * k).round().max(2.0);
    ((k), ((frame_w - w) / 2.0).round(), frame_h - h)
}

pub fn write_walk_up(out: &Path, walkers: &[Walker], p: WalkUp) -> Result<Vec<Appearance>, SimError> {
    let fourcc = VideoWriter::fourcc('M', 'J', 'P', 'G')?;
    let size = Size::new(p.width, p.height);
    // Without FFmpeg, OpenCV's own MJPEG writer (the camera source reads what this writes).
    let api = crate::sources::camera::file_api();
    let mut writer = VideoWriter::new_with_backend(out.display().to_string(), api, fourcc, p.fps, size, true)?;
    if !writer.is_opened()? {
        return Err(SimError::Writer(out.display().to_string()));
    }
    let background = doorway(size)?;
    let images = walkers.iter().map(|w| load_bgr(&w.photo)).collect::<Result<Vec<_>, _>>()?;
    let mut appearances: Vec<Appearance> = walkers
        .iter()
        .map(|w| Appearance { photo: w.photo.display().to_string(), first_frame: u64::MAX, last_frame: 0 })
        .collect();
    for i in 0..total_frames(walkers.len(), &p) {
        match in_view(walkers.len(), &p, i) {
            Some((w, within)) => {
                writer.write(&compose(&background, &images[w], walkers[w].frac(within, &p))?)?;
                let a = &mut appearances[w];
                a.first_frame = a.first_frame.min(i);
                a.last_frame = i;
            }
            None => writer.write(&background)?,
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
    let (k, _, _) = placement(f64::from(photo.cols()), f64::from(photo.rows()), frac, f64::from(fw), f64::from(fh));
    let h = ((fh as f64) * frac).round().max(2.0) as i32;
    let w = (f64::from(photo.cols()) * k).round().max(2.0) as i32;
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

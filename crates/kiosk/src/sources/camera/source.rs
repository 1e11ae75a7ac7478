//! Opening and reading a camera through OpenCV's VideoCapture, with retry and pacing.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use opencv::core::MatTraitConst;
use opencv::videoio::{self, VideoCapture, VideoCaptureTrait, VideoCaptureTraitConst};
use serde::Deserialize;
use tracing::{info, info_span, warn};

use super::{FrameImage, FramePool, FrameSlot};
use crate::health::{CameraState, Health};
use crate::shutdown::Shutdown;
use dolbom_backoff::Backoff;
use dolbom_face::config::in_range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    /// A V4L2 device such as /dev/video0.
    V4l2,
    /// An RTSP/HTTP URL, read through FFmpeg.
    Url,
    /// A GStreamer pipeline ending in appsink.
    Gstreamer,
    /// A video file.
    File,
    /// An image sequence, as an OpenCV pattern such as frames/%04d.jpg.
    Images,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    /// Live cameras, and files played at their own frame rate: when processing is slower, stale
    /// frames are dropped.
    Realtime,
    /// Files and image sequences as fast as processing allows, every frame (tests, benchmarks).
    Fast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtEnd {
    /// Stop the daemon gracefully when a file has been read (tests, demos, batch runs).
    Exit,
    /// Start the file again.
    Loop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub kind: CameraKind,
    /// Device path, URL, pipeline, file or image pattern, according to `kind`.
    pub source: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Requested rate for devices; the assumed rate for image sequences.
    #[serde(default)]
    pub fps: Option<f64>,
    #[serde(default = "default_pace")]
    pub pace: Pace,
    #[serde(default = "default_at_end")]
    pub at_end: AtEnd,
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
}

fn default_pace() -> Pace {
    Pace::Realtime
}
fn default_at_end() -> AtEnd {
    AtEnd::Loop
}
fn default_retry_initial_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    30_000
}

impl CameraConfig {
    fn is_finite(&self) -> bool {
        matches!(self.kind, CameraKind::File | CameraKind::Images)
    }

    /// Checks the section without opening anything; returns (key, message) on error.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.source.trim().is_empty() {
            return Err(("camera.source", "must not be empty".into()));
        }
        if let Some(fps) = self.fps {
            if !(fps > 0.0 && fps <= 240.0) {
                return Err(("camera.fps", format!("= {fps}: must be above 0 and at most 240")));
            }
        }
        // From a thumbnail camera to 8K; a typo of an extra digit must not allocate gigabytes.
        if let Some(w) = self.width {
            in_range("camera.width", w, 16, 8192)?;
        }
        if let Some(h) = self.height {
            in_range("camera.height", h, 16, 8192)?;
        }
        in_range("camera.retry_initial_ms", self.retry_initial_ms, 10, 60_000)?;
        if self.pace == Pace::Fast && !self.is_finite() {
            return Err(("camera.pace", "= \"fast\" only applies to kind = \"file\" or \"images\"".into()));
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms || self.retry_max_ms > 3_600_000 {
            return Err((
                "camera.retry_max_ms",
                "must be at least camera.retry_initial_ms (above 0) and at most 3600000".into(),
            ));
        }
        Ok(())
    }

    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if self.is_finite() && !self.source.starts_with('/') {
            self.source = base.join(PathBuf::from(&self.source)).display().to_string();
        }
    }
}

/// One camera frame, stamped with its capture time.
pub struct Frame {
    pub image: FrameImage,
    pub index: u64,
    /// Wall-clock capture time, milliseconds since the Unix epoch: what events report.
    pub captured_ms: i64,
    /// Monotonic capture time in milliseconds: what tracking measures durations with, so a clock
    /// step (NTP at boot) cannot stall or age tracks.
    pub mono_ms: i64,
}

/// Milliseconds on a monotonic clock shared by the whole process.
pub fn mono_now_ms() -> i64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

/// Opens the configured source with its requested size and rate; returns it and its frame rate.
/// The stage retries this with backoff; `dolbom doctor` calls it once.
pub fn open(config: &CameraConfig) -> Result<(VideoCapture, f64), String> {
    let api = match config.kind {
        CameraKind::V4l2 => videoio::CAP_V4L2,
        CameraKind::Url => videoio::CAP_FFMPEG,
        CameraKind::Gstreamer => videoio::CAP_GSTREAMER,
        CameraKind::File => videoio::CAP_ANY,
        CameraKind::Images => videoio::CAP_IMAGES,
    };
    if config.kind == CameraKind::File && !std::path::Path::new(&config.source).exists() {
        return Err(format!("{}: no such file", config.source));
    }
    let mut cap = if config.kind == CameraKind::File && !has_ffmpeg() {
        // OpenCV's own MJPEG reader first (see file_api), then whatever else this OpenCV has.
        match VideoCapture::from_file(&config.source, videoio::CAP_OPENCV_MJPEG) {
            Ok(cap) if cap.is_opened().unwrap_or(false) => cap,
            _ => VideoCapture::from_file(&config.source, api).map_err(|e| e.to_string())?,
        }
    } else {
        VideoCapture::from_file(&config.source, api).map_err(|e| e.to_string())?
    };
    if !cap.is_opened().map_err(|e| e.to_string())? {
        use videoio::VideoCaptureAPIs as Api;
        let missing = match config.kind {
            CameraKind::Url => Some((Api::CAP_FFMPEG, "FFmpeg")),
            CameraKind::Gstreamer => Some((Api::CAP_GSTREAMER, "GStreamer")),
            CameraKind::File => Some((Api::CAP_FFMPEG, "FFmpeg")),
            CameraKind::V4l2 | CameraKind::Images => None,
        }
        .filter(|(api, _)| !videoio::has_backend(*api).unwrap_or(true));
        return Err(match missing {
            Some((_, name)) => format!(
                "cannot open {:?} source {}: this OpenCV was built without {name}{}",
                config.kind,
                config.source,
                if config.kind == CameraKind::File { ", so it reads MJPEG AVI files only" } else { "" }
            ),
            None => format!("cannot open {:?} source {}", config.kind, config.source),
        });
    }
    let set = |cap: &mut VideoCapture, prop, v: f64| cap.set(prop, v).map(|_| ()).map_err(|e| e.to_string());
    if let Some(w) = config.width {
        set(&mut cap, videoio::CAP_PROP_FRAME_WIDTH, f64::from(w))?;
    }
    if let Some(h) = config.height {
        set(&mut cap, videoio::CAP_PROP_FRAME_HEIGHT, f64::from(h))?;
    }
    if config.kind == CameraKind::V4l2 {
        if let Some(fps) = config.fps {
            set(&mut cap, videoio::CAP_PROP_FPS, fps)?;
        }
        // One buffered frame: we want the newest, not a queue of old ones.
        let _ = cap.set(videoio::CAP_PROP_BUFFERSIZE, 1.0);
    }
    let reported = cap.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
    let fps = if reported > 0.0 && reported < 1000.0 { reported } else { config.fps.unwrap_or(10.0) };
    Ok((cap, fps))
}

/// Whether this OpenCV has its FFmpeg backend (Debian's does; the lean one from
/// scripts/opencv-lean.sh does not, and then reads only MJPEG AVI files and V4L2 cameras).
pub fn has_ffmpeg() -> bool {
    videoio::has_backend(videoio::VideoCaptureAPIs::CAP_FFMPEG).unwrap_or(false)
}

/// The backend to read or write a video file with: any (FFmpeg first) when this OpenCV has
/// FFmpeg, else OpenCV's own MJPEG AVI reader and writer. Without FFmpeg, `CAP_ANY` reaches that
/// reader too, but only after the image-sequence backend has logged an error for every file name
/// without a number in it.
pub fn file_api() -> i32 {
    if has_ffmpeg() {
        videoio::CAP_ANY
    } else {
        videoio::CAP_OPENCV_MJPEG
    }
}

/// Runs until shutdown or a finite source ends with `at_end = "exit"`; then ends the slot.
pub fn run_camera(config: CameraConfig, slot: Arc<FrameSlot>, health: Arc<Health>, shutdown: Shutdown) {
    let _span = info_span!("camera", kind = ?config.kind, source = %config.source).entered();
    let mut backoff =
        Backoff::new(Duration::from_millis(config.retry_initial_ms), Duration::from_millis(config.retry_max_ms));
    let mut index = 0u64;
    // Files processed fast get a synthetic clock: frame i was "captured" i/fps after the start.
    let fast = config.pace == Pace::Fast;
    let epoch_ms = Timestamp::now().as_millisecond();
    let pool = FramePool::default();
    'outer: while !shutdown.is_triggered() {
        health.beat("camera");
        let (mut cap, fps) = match open(&config) {
            Ok(c) => c,
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "camera unavailable");
                health.set_camera(CameraState::Retrying, Some(e));
                shutdown.sleep(delay);
                continue;
            }
        };
        info!(fps, "camera opened");
        health.set_camera(CameraState::Ok, None);
        let started = Instant::now();
        let mut file_frame = 0u64;
        let mut image = pool.take();
        loop {
            if shutdown.is_triggered() {
                break 'outer;
            }
            health.beat("camera");
            let ok = cap.read(&mut image).unwrap_or(false) && !image.empty();
            if !ok {
                if config.is_finite() && file_frame > 0 {
                    match config.at_end {
                        AtEnd::Exit => {
                            info!(frames = file_frame, "end of input");
                            health.set_camera(CameraState::Finished, None);
                            health.retire("camera");
                            break 'outer;
                        }
                        AtEnd::Loop => continue 'outer,
                    }
                }
                let delay = backoff.next_delay();
                warn!(retry_in_ms = delay.as_millis() as u64, "camera stopped delivering frames; reopening");
                health.set_camera(CameraState::Retrying, Some("no frames".into()));
                shutdown.sleep(delay);
                continue 'outer;
            }
            backoff.reset();
            let offset = Duration::from_secs_f64(file_frame as f64 / fps);
            let synthetic_ms = (index as f64 * 1000.0 / fps) as i64;
            let (captured_ms, mono_ms) = if fast {
                (epoch_ms + synthetic_ms, synthetic_ms)
            } else {
                if config.is_finite() {
                    // Play files at their own rate.
                    if let Some(wait) = offset.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                (Timestamp::now().as_millisecond(), mono_now_ms())
            };
            let frame =
                Frame { image: pool.wrap(std::mem::replace(&mut image, pool.take())), index, captured_ms, mono_ms };
            index += 1;
            file_frame += 1;
            health.frames_read.fetch_add(1, Ordering::Relaxed);
            if slot.put(frame, fast) {
                health.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    slot.end();
}

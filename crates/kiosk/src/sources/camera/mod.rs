//! The camera stage: one thread owns the OpenCV capture, reopens it with backoff when it fails
//! or stalls, stamps every frame with its capture time, and hands frames to the vision stage
//! through a one-frame slot ([`slot::FrameSlot`]), so the daemon never queues stale frames.

pub mod pool;
pub mod slot;
pub mod source;

pub use pool::{FrameImage, FramePool};
pub use slot::{FrameSlot, Take};
pub use source::{file_api, has_ffmpeg, mono_now_ms, run_camera, CameraConfig, CameraKind, Frame, Pace};

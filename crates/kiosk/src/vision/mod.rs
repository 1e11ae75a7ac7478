//! Seeing who is at the door: faces tracked across frames, identities settled per track.

pub mod refresh;
pub mod stage;
pub mod tracker;

pub use stage::{RecognitionConfig, Sighting, Vision, Who};
pub use tracker::{Tracker, TrackingConfig, Vote};

//! dolbom: an edge daemon for daycare entrance kiosks.
//!
//! This crate is the library behind the `dolbom` binary. The face pipeline is a chain of small
//! stages, each behind its own trait so that another model can be configured in:
//! [`face::detect`] → [`face::align`] → [`face::embed`] → [`gallery::matcher`].

pub mod alerts;
pub mod attendance;
pub mod backoff;
pub mod camera;
pub mod config;
pub mod contract;
pub mod enroll;
pub mod events;
pub mod face;
pub mod fever;
pub mod gallery;
pub mod health;
pub mod identify;
pub mod kiosk;
pub mod mqtt;
pub mod onnx;
pub mod outbox;
pub mod relay;
pub mod sim;
pub mod store;
pub mod thermal;
pub mod track;
pub mod vision;

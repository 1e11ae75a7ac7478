//! dolbom: an edge daemon for daycare entrance kiosks.
//!
//! This crate is the library behind the `dolbom` binary. The face pipeline is a chain of small
//! stages, each behind its own trait so that another model can be configured in:
//! [`face::detect`] → [`face::align`] → [`face::embed`] → [`gallery::matcher`].

pub mod config;
pub mod enroll;
pub mod face;
pub mod gallery;
pub mod identify;
pub mod onnx;

//! `dolbom console`: the staff console, a web app for teachers' phones and tablets on the
//! center's LAN. It runs apart from the kiosks (on the center's PC, or as a second service on
//! one kiosk) and knows them only through the broker, like the relay:
//!
//! ```text
//! broker ──(center's topics, persistent session)──► center::ingest ──► console.db ──► web pages (SSE refresh)
//! staff action (POST, session, CSRF) ──► center::commands ──signed cmd/*──► kiosk ──cmd/result──► answer
//! ```
//!
//! Every door of the center appears: the console subscribes to `dolbom/v1/{center}/+/…`.
//! It builds without OpenCV or ONNX Runtime.

pub mod auth;
pub mod center;
pub mod config;
pub mod daemon;
pub mod lang;
pub mod web;

pub use config::{ConfigError, ConsoleConfig};

//! The door screen's state: what the person at the door should read now. The stages tell a
//! [`DoorHandle`] what happened (a face too far away, a greeting, a visitor, the air grade); the
//! [`hub`] turns that into one [`DoorState`] on a `watch` channel, which the HTTP layer
//! ([`crate::web`]) serves. No image ever passes through here: names and words only.

pub mod config;
pub mod hub;
pub mod words;

pub use config::DoorScreenConfig;
pub use hub::{DoorHandle, DoorHub, DoorNews, DoorState, Screen};

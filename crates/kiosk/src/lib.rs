//! The dolbom kiosk daemon: a pipeline of stages, sources → processing → sinks, connected by
//! channels, wired in one place ([`daemon`]).
//!
//! ```text
//! sources::camera ──FrameSlot──► vision (tracker) ──► screening ──► events (attendance, alerts)
//! sources::thermal ─LatestFrame─┘                                       │ one transaction
//!                                                                       ▼
//!                                               outbox::queue (SQLite) ──► outbox::publisher ──► MQTT
//! ```
//!
//! Each stage owns its config section (its type and `validate()` sit beside it); [`config`]
//! only gathers them. The face pipeline is the `dolbom-face` crate, the message shapes the
//! `dolbom-contract` crate, the connection the `dolbom-mqtt` crate. The door screen ([`door`],
//! served by [`web`]) shows what the stages tell it, on loopback.

pub mod air;
pub mod alerts;
pub mod attendance;
pub mod checkin;
pub mod command_gate;
pub mod commands;
pub mod config;
pub mod consent_expiry;
pub mod daemon;
pub mod disk;
pub mod doctor;
pub mod door;
pub mod events;
pub mod health;
pub mod notify;
pub mod outbox;
pub mod pin;
pub mod pin_tries;
pub mod recognition;
pub mod remeasure;
pub mod retention;
pub mod screening;
pub mod shutdown;
pub mod sim;
pub mod site;
pub mod sources;
pub mod staff;
pub mod store;
pub mod vision;
pub mod web;

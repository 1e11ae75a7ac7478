//! The subcommands, one file per family.

#[cfg(feature = "kiosk")]
pub mod calibrate;
#[cfg(feature = "kiosk")]
pub mod checkin;
#[cfg(feature = "kiosk")]
pub mod consent;
#[cfg(feature = "console")]
pub mod console;
#[cfg(feature = "kiosk")]
pub mod doctor;
#[cfg(feature = "kiosk")]
pub mod face;
#[cfg(feature = "kiosk")]
pub mod gallery_key;
#[cfg(feature = "kiosk")]
pub mod kiosk;
#[cfg(feature = "relay")]
pub mod relay;
#[cfg(feature = "kiosk")]
pub mod sim;

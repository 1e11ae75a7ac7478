//! Where the kiosk's input comes from: the camera, and the sensors on serial ports.

pub mod air;
pub mod camera;
pub mod outdoor;
pub mod serial;
pub mod tag;
pub mod thermal;

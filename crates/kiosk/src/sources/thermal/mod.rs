//! The thermal source: a serial thermal array, decoded frame by frame (the fusion of those frames
//! with the faces the camera sees is screening's).
//!
//! Devices sit behind [`SerialDecoder`] (the serial loop's decoder trait): a byte-stream parser
//! that never panics on any input, resynchronises after noise and counts what it had to throw
//! away. [`mlx90640`] is the GY-MCU90640 module (MLX90640, 32x24); [`csv`] is a line protocol for
//! small arrays behind a serial bridge (e.g. an AMG8833 8x8 on a microcontroller);
//! [`plausibility`] refuses frames no working sensor could produce, whichever decoder made them;
//! [`source`] is the config section and the stage.

pub mod correction;
pub mod csv;
pub mod mlx90640;
pub mod plausibility;
pub mod source;

use serde::Deserialize;

/// One thermal image in degrees Celsius, row-major, `width` x `height`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalFrame {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
    /// The sensor's own ambient (die) temperature, when it reports one.
    pub ambient_c: Option<f32>,
    /// Monotonic arrival time (see `camera::mono_now_ms`); set by the source.
    pub mono_ms: i64,
}

impl ThermalFrame {
    pub fn at(&self, x: usize, y: usize) -> Option<f32> {
        (x < self.width && y < self.height).then(|| self.pixels[y * self.width + x])
    }
}

pub use crate::health::DecoderStats;
pub use crate::sources::serial::SerialDecoder;

/// A thermal device's decoder: the serial loop's decoder, yielding thermal frames.
pub type FrameDecoder = dyn SerialDecoder<Frame = ThermalFrame>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// GY-MCU90640: binary frames `5A 5A 02 06`, 768 pixels, ambient, checksum.
    GyMcu90640,
    /// One line per frame: `T,<ambient>,<p0>,...,<pN>` in degrees Celsius.
    Csv,
}

pub fn decoder(device: &source::ThermalConfig) -> Box<FrameDecoder> {
    match device.device {
        DeviceKind::GyMcu90640 => Box::new(mlx90640::GyMcu90640::new(device.checksum, device.rate_code)),
        DeviceKind::Csv => Box::new(csv::CsvFrames::new(device.width, device.height)),
    }
}

//! The indoor air-quality sensors on serial ports: a Plantower particle sensor (PMS5003,
//! PMS7003, PMS5003ST) and a Winsen MH-Z19B CO2 sensor, decoded reading by reading. Wiring them
//! into the daemon (config section, stage, MQTT) is later work; what is here is what that stage
//! needs, kept to the thermal decoders' shape:
//!
//! - [`pms`] and [`mhz19`]: [`SerialDecoder`]s (the serial loop's decoder trait) that never panic
//!   on any input, resynchronise after noise, count what they had to throw away, and never buffer
//!   more than one frame;
//! - [`config`]: the `[air]` section; [`stage`]: each sensor on the shared serial loop, one
//!   [`crate::air::IndoorUpdate`] per window;
//! - [`plausibility`]: refuses readings no working sensor could produce, with a reason;
//! - [`window`]: means over a window of readings (warming readings left out) for the stage to
//!   publish;
//! - [`humidity`]: the optional correction of optical PM readings for water taken up by particles
//!   in humid air.
//!
//! One reading type per device family: [`PmReading`] for the particle sensors, [`Co2Reading`]
//! for the CO2 sensor. A sensor that is still warming up says so in the reading (`warming`),
//! never with a value that looks like clean air.

pub mod config;
pub mod humidity;
pub mod mhz19;
pub mod plausibility;
pub mod pms;
pub mod stage;
pub mod window;

pub use crate::health::DecoderStats;
pub use crate::sources::serial::SerialDecoder;
pub use humidity::pm_humidity_correction;

/// The particle counts of a Plantower frame: particles per 0.1 L of air with a diameter above
/// 0.3, 0.5, 1.0, 2.5, 5.0 and 10 µm, in that order (so each is at most the one before).
pub const COUNT_SIZES_UM: [f32; 6] = [0.3, 0.5, 1.0, 2.5, 5.0, 10.0];

/// One reading of a Plantower particle sensor.
///
/// Mass concentrations are in µg/m³ as the sensor sends them (whole numbers). "CF=1" values are
/// the sensor's "standard particle" calibration; the atmospheric ones are the values meant for
/// ambient air and the ones to publish.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PmReading {
    pub pm1_cf1: u16,
    pub pm25_cf1: u16,
    pub pm10_cf1: u16,
    /// PM1.0, atmospheric environment, µg/m³.
    pub pm1: u16,
    /// PM2.5, atmospheric environment, µg/m³.
    pub pm25: u16,
    /// PM10, atmospheric environment, µg/m³.
    pub pm10: u16,
    /// Particles per 0.1 L above each of [`COUNT_SIZES_UM`].
    pub counts: [u16; 6],
    /// Formaldehyde in µg/m³ (PMS5003ST only; the sensor sends mg/m³ x 1000, which is µg/m³).
    pub hcho_ug_m3: Option<u16>,
    /// Temperature in degC (PMS5003ST only; sent as a signed value in 0.1 degC).
    pub temperature_c: Option<f32>,
    /// Relative humidity in % (PMS5003ST only; sent in 0.1 %).
    pub humidity_pct: Option<f32>,
    pub version: u8,
    pub error_code: u8,
    /// Every mass and count is zero: the fan and laser have not settled (the first ~30 s after
    /// power-on or wake). Not clean air: real air, even filtered, has particles above 0.3 µm.
    pub warming: bool,
}

impl PmReading {
    /// True when every mass concentration and particle count is zero, what the sensor sends
    /// while it warms up.
    pub fn is_all_zero(&self) -> bool {
        [self.pm1_cf1, self.pm25_cf1, self.pm10_cf1, self.pm1, self.pm25, self.pm10].iter().all(|v| *v == 0)
            && self.counts.iter().all(|c| *c == 0)
    }

    /// The PMS5003ST's 40-byte frame carries formaldehyde, temperature and humidity.
    pub fn is_extended(&self) -> bool {
        self.hcho_ug_m3.is_some() || self.temperature_c.is_some() || self.humidity_pct.is_some()
    }
}

/// What a Plantower sensor sends: a reading, or the 8-byte answer to a mode or sleep command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PmsFrame {
    Reading(PmReading),
    /// The two data bytes of a command answer (`42 4D 00 04 d0 d1 sum`).
    Ack([u8; 2]),
}

impl PmsFrame {
    pub fn reading(&self) -> Option<&PmReading> {
        match self {
            PmsFrame::Reading(r) => Some(r),
            PmsFrame::Ack(_) => None,
        }
    }
}

/// One answer of a Winsen MH-Z19B to its read command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Co2Reading {
    /// CO2 concentration in ppm.
    pub ppm: u16,
    /// Within the datasheet's preheat time after the decoder started: the value is not yet
    /// a measurement (see [`mhz19`] for what sensors are reported to send meanwhile).
    pub warming: bool,
}

/// A particle sensor's decoder: the serial loop's decoder, yielding Plantower frames.
pub type PmsDecoder = dyn SerialDecoder<Frame = PmsFrame>;
/// A CO2 sensor's decoder: the serial loop's decoder, yielding CO2 readings.
pub type Co2Decoder = dyn SerialDecoder<Frame = Co2Reading>;

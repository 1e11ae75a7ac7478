//! Air quality at the door: what the indoor sensors and the outdoor services hand to the air
//! stage, which publishes the retained telemetry and raises alerts on the daycare limits.
//!
//! ```text
//! particle sensor ─┐ (serial loop, window mean)
//! CO2 sensor ──────┴──mpsc<IndoorUpdate>──► air stage ──outbox──► telemetry/air, event/air
//! AirKorea, KMA ─────watch<OutdoorAir>─────┘
//! ```

pub mod homeassistant;
pub mod limits;
pub mod recommend;
pub mod stage;

pub use homeassistant::HomeAssistantConfig;
pub use limits::{AirLimitsConfig, LimitWatch, Transition};
pub use stage::AirStage;

/// Names of the air sources in the health summary (`sensors` in the status payload).
pub const AIR_PM: &str = "air_pm";
pub const AIR_CO2: &str = "air_co2";
pub const OUTDOOR_DUST: &str = "outdoor_dust";
pub const OUTDOOR_WEATHER: &str = "outdoor_weather";

/// One window of an indoor sensor's readings, averaged, as the sensor stage hands it on.
#[derive(Debug, Clone, PartialEq)]
pub struct IndoorUpdate {
    /// Which sensor: [`AIR_PM`] or [`AIR_CO2`].
    pub sensor: &'static str,
    /// When the window ended, Unix milliseconds.
    pub at_ms: i64,
    /// Readings the mean was taken over (warming readings excluded).
    pub samples: usize,
    pub measurement: IndoorMeasurement,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IndoorMeasurement {
    /// A particle sensor's window mean, µg/m³ (atmospheric values, humidity-corrected when
    /// configured); the PMS5003ST adds formaldehyde, temperature and humidity.
    Particles {
        pm1: f32,
        pm25: f32,
        pm10: f32,
        hcho_ug_m3: Option<f32>,
        temperature_c: Option<f32>,
        humidity_pct: Option<f32>,
    },
    /// The CO2 sensor's window mean, ppm.
    Co2 { ppm: f32 },
    /// The sensor is warming up: no value yet (never to be read as clean air).
    Warming,
}

/// The newest outdoor values, each with the time it was observed; `None` where a service is
/// not configured or has never answered with a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutdoorAir {
    pub dust: Option<OutdoorDust>,
    pub weather: Option<OutdoorWeather>,
}

/// AirKorea's real-time measurement at one station.
#[derive(Debug, Clone, PartialEq)]
pub struct OutdoorDust {
    pub station: String,
    /// The station's observation time, Unix milliseconds (the service gives KST hours).
    pub observed_ms: i64,
    /// µg/m³; `None` when the station sent "-" or nothing (maintenance, a flag).
    pub pm10: Option<f32>,
    pub pm25: Option<f32>,
    /// The service's own grades, 1 (좋음) … 4 (매우나쁨), when it sent them.
    pub pm10_grade: Option<u8>,
    pub pm25_grade: Option<u8>,
}

/// KMA's ultra-short-term observation on the center's grid cell.
#[derive(Debug, Clone, PartialEq)]
pub struct OutdoorWeather {
    pub nx: u16,
    pub ny: u16,
    pub observed_ms: i64,
    /// T1H, °C.
    pub temperature_c: Option<f32>,
    /// REH, %.
    pub humidity_pct: Option<f32>,
}

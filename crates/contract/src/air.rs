//! Air quality payloads: the retained `telemetry/air` (the latest indoor and outdoor values,
//! each with its age) and the `event/air` alerts raised when an indoor value crosses a daycare
//! limit and when it recovers. The Korean fine-dust grade is computed here, so the kiosk, the
//! relay and a dashboard grade the same number the same way.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const AIR_TELEMETRY_SCHEMA: &str = "dolbom.air-telemetry/1";
pub const AIR_SCHEMA: &str = "dolbom.air/1";

/// The Korean fine-dust forecast grade (미세먼지 예보 등급).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DustGrade {
    /// 좋음
    Good,
    /// 보통
    Moderate,
    /// 나쁨
    Bad,
    /// 매우나쁨
    VeryBad,
}

impl DustGrade {
    /// PM10 in µg/m³: 0–30 good, 31–80 moderate, 81–150 bad, 151+ very bad. `None` for a
    /// value no instrument reports (negative, not a number).
    pub fn pm10(ug_m3: f32) -> Option<DustGrade> {
        Self::grade(ug_m3, [30, 80, 150])
    }

    /// PM2.5 in µg/m³: 0–15 good, 16–35 moderate, 36–75 bad, 76+ very bad.
    pub fn pm25(ug_m3: f32) -> Option<DustGrade> {
        Self::grade(ug_m3, [15, 35, 75])
    }

    /// The bands are defined on whole µg/m³ (AirKorea reports whole numbers); a window mean is
    /// rounded first, so 30.4 is still 좋음 and 30.6 is 보통.
    fn grade(ug_m3: f32, upper: [i64; 3]) -> Option<DustGrade> {
        if !ug_m3.is_finite() || ug_m3 < 0.0 {
            return None;
        }
        let v = ug_m3.round() as i64;
        Some(if v <= upper[0] {
            DustGrade::Good
        } else if v <= upper[1] {
            DustGrade::Moderate
        } else if v <= upper[2] {
            DustGrade::Bad
        } else {
            DustGrade::VeryBad
        })
    }

    /// AirKorea's grade numbers: 1 좋음 … 4 매우나쁨.
    pub fn from_level(level: u8) -> Option<DustGrade> {
        match level {
            1 => Some(DustGrade::Good),
            2 => Some(DustGrade::Moderate),
            3 => Some(DustGrade::Bad),
            4 => Some(DustGrade::VeryBad),
            _ => None,
        }
    }

    pub fn level(self) -> u8 {
        self as u8 + 1
    }

    pub fn code(self) -> &'static str {
        match self {
            DustGrade::Good => "good",
            DustGrade::Moderate => "moderate",
            DustGrade::Bad => "bad",
            DustGrade::VeryBad => "very_bad",
        }
    }

    pub fn label_ko(self) -> &'static str {
        match self {
            DustGrade::Good => "좋음",
            DustGrade::Moderate => "보통",
            DustGrade::Bad => "나쁨",
            DustGrade::VeryBad => "매우나쁨",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            DustGrade::Good => "good",
            DustGrade::Moderate => "moderate",
            DustGrade::Bad => "bad",
            DustGrade::VeryBad => "very bad",
        }
    }

    /// The grade as it appears in a payload: code, level and both labels.
    pub fn label(self) -> GradeLabel {
        GradeLabel { code: self, level: self.level(), ko: self.label_ko().into(), en: self.label_en().into() }
    }
}

/// A grade with its level and its words, so a display needs no table of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeLabel {
    pub code: DustGrade,
    /// 1 (좋음) … 4 (매우나쁨).
    pub level: u8,
    pub ko: String,
    pub en: String,
}

/// One value and how old it is: `at` is when it was measured (the window's end indoors, the
/// station's observation time outdoors), `age_secs` how long before the payload's `ts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub value: f32,
    pub at: String,
    pub age_secs: u64,
}

/// A fine-dust value with its Korean grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DustReading {
    pub value: f32,
    pub at: String,
    pub age_secs: u64,
    pub grade: GradeLabel,
}

/// Indoor values, µg/m³ for particles and formaldehyde, ppm for CO2; null when the sensor is
/// absent, warming up, or its last value is too old to stand for now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IndoorAir {
    pub pm1: Option<Reading>,
    pub pm25: Option<DustReading>,
    pub pm10: Option<DustReading>,
    pub co2_ppm: Option<Reading>,
    pub temperature_c: Option<Reading>,
    pub humidity_pct: Option<Reading>,
    /// Only from a particle sensor that measures it (PMS5003ST); left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcho_ug_m3: Option<Reading>,
}

/// Outdoor values from AirKorea's station and KMA's grid cell; null when the service is not
/// configured, has not answered with a value, or its value is too old.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutdoorAirReport {
    /// The AirKorea station the dust values come from.
    pub station: Option<String>,
    pub pm10: Option<DustReading>,
    pub pm25: Option<DustReading>,
    pub temperature_c: Option<Reading>,
    pub humidity_pct: Option<Reading>,
}

/// `telemetry/air` (retained, latest wins): the air at the door now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirTelemetry {
    pub schema: String,
    pub center: String,
    pub kiosk: String,
    pub ts: String,
    pub indoor: IndoorAir,
    pub outdoor: OutdoorAirReport,
}

/// The indoor values with a daycare limit (Indoor Air Quality Control Act).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pollutant {
    Pm25,
    Pm10,
    Co2,
    Hcho,
}

impl Pollutant {
    pub const ALL: [Pollutant; 4] = [Pollutant::Pm25, Pollutant::Pm10, Pollutant::Co2, Pollutant::Hcho];

    pub fn name(self) -> &'static str {
        match self {
            Pollutant::Pm25 => "pm25",
            Pollutant::Pm10 => "pm10",
            Pollutant::Co2 => "co2",
            Pollutant::Hcho => "hcho",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Pollutant::Co2 => "ppm",
            _ => "ug/m3",
        }
    }

    pub fn label_ko(self) -> &'static str {
        match self {
            Pollutant::Pm25 => "초미세먼지(PM2.5)",
            Pollutant::Pm10 => "미세먼지(PM10)",
            Pollutant::Co2 => "이산화탄소(CO2)",
            Pollutant::Hcho => "폼알데하이드(HCHO)",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Pollutant::Pm25 => "fine dust (PM2.5)",
            Pollutant::Pm10 => "dust (PM10)",
            Pollutant::Co2 => "carbon dioxide (CO2)",
            Pollutant::Hcho => "formaldehyde (HCHO)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AirEventState {
    /// Above the limit for the minimum duration.
    Exceeded,
    /// Below the recovery level (the limit less the hysteresis) for the minimum duration.
    Recovered,
}

/// What the staff should do about the air, as a code for machines and words for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationCode {
    /// Outdoor air is cleaner: open the windows.
    Ventilate,
    /// A gas is high but outdoor dust is bad: air out briefly, then close and run the purifier.
    VentilateBriefly,
    /// Outdoor air is worse: keep the windows closed and run the air purifier.
    CloseWindowsRunPurifier,
    /// Outdoor air is not known: check it before opening windows.
    OutdoorUnknown,
    /// The value is back within the limit: nothing to do.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub code: RecommendationCode,
    pub ko: String,
    pub en: String,
}

/// `event/air` (QoS 1, not retained): an indoor value crossed its daycare limit, or recovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirEvent {
    pub schema: String,
    pub event_id: Uuid,
    pub center: String,
    pub kiosk: String,
    /// When the transition was decided (the last window that completed the minimum duration).
    pub ts: String,
    pub pollutant: Pollutant,
    pub state: AirEventState,
    /// The window mean that completed the transition.
    pub value: f32,
    /// The configured limit; recovery is below `recover_below`.
    pub limit: f32,
    pub recover_below: f32,
    /// `ppm` for CO2, `ug/m3` otherwise.
    pub unit: String,
    /// Since when the value has been above the limit (exceeded) or below the recovery level
    /// (recovered).
    pub since: String,
    pub recommendation: Recommendation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_follow_the_korean_bands_at_their_edges() {
        use DustGrade::*;
        for (v, g) in [(0.0, Good), (30.0, Good), (30.4, Good), (30.6, Moderate), (31.0, Moderate), (80.0, Moderate)] {
            assert_eq!(DustGrade::pm10(v), Some(g), "pm10 {v}");
        }
        for (v, g) in [(81.0, Bad), (150.0, Bad), (151.0, VeryBad), (900.0, VeryBad)] {
            assert_eq!(DustGrade::pm10(v), Some(g), "pm10 {v}");
        }
        for (v, g) in [(15.0, Good), (16.0, Moderate), (35.0, Moderate), (36.0, Bad), (75.0, Bad), (76.0, VeryBad)] {
            assert_eq!(DustGrade::pm25(v), Some(g), "pm25 {v}");
        }
        for bad in [f32::NAN, f32::INFINITY, -1.0] {
            assert_eq!(DustGrade::pm25(bad), None);
            assert_eq!(DustGrade::pm10(bad), None);
        }
    }

    #[test]
    fn grade_labels_carry_both_languages_and_the_service_level() {
        let labels: Vec<(u8, &str, &str)> = [DustGrade::Good, DustGrade::Moderate, DustGrade::Bad, DustGrade::VeryBad]
            .iter()
            .map(|g| (g.level(), g.label_ko(), g.label_en()))
            .collect();
        assert_eq!(
            labels,
            [(1, "좋음", "good"), (2, "보통", "moderate"), (3, "나쁨", "bad"), (4, "매우나쁨", "very bad")]
        );
        for level in 1..=4 {
            assert_eq!(DustGrade::from_level(level).map(DustGrade::level), Some(level));
        }
        assert_eq!(DustGrade::from_level(0), None);
        let json = serde_json::to_value(DustGrade::VeryBad.label()).expect("json");
        assert_eq!(json, serde_json::json!({"code": "very_bad", "level": 4, "ko": "매우나쁨", "en": "very bad"}));
    }

    #[test]
    fn absent_formaldehyde_is_left_out_and_other_absent_values_are_null() {
        let json = serde_json::to_value(IndoorAir::default()).expect("json");
        assert!(json.get("hcho_ug_m3").is_none());
        assert_eq!(json["pm25"], serde_json::Value::Null);
        assert_eq!(serde_json::to_value(Pollutant::Pm25).expect("json"), "pm25");
        for p in Pollutant::ALL {
            assert_eq!(serde_json::to_value(p).expect("json"), p.name());
        }
    }
}

//! AirKorea's real-time measurements by station (`getMsrstnAcctoRltmMesureDnsty`): the newest
//! hour with a PM10 or PM2.5 value, its grades, and when it was measured.

use jiff::civil::DateTime;
use jiff::ToSpan;
use serde::Deserialize;

use super::answer::{self, loose_string, number, OutdoorError, Service};
use super::kst;
use crate::air::OutdoorDust;

pub const SERVICE: Service = Service { name: "AirKorea", key_file: "outdoor.airkorea.service_key_file" };
pub const OPERATION: &str = "getMsrstnAcctoRltmMesureDnsty";

/// The query besides the key: a day of hourly rows (newest first), version 1.3 for the 1-hour
/// grades.
pub fn params(station: &str) -> Vec<(&'static str, String)> {
    vec![
        ("returnType", "json".into()),
        ("numOfRows", "100".into()),
        ("pageNo", "1".into()),
        ("stationName", station.to_string()),
        ("dataTerm", "DAILY".into()),
        ("ver", "1.3".into()),
    ]
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    items: Vec<Item>,
}

/// One hour's row. Every value is a string ("23", "-", ""), or null.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default, deserialize_with = "loose_string")]
    data_time: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    station_name: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pm10_value: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pm25_value: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pm10_grade: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pm25_grade: Option<String>,
    #[serde(default, deserialize_with = "loose_string", rename = "pm10Grade1h")]
    pm10_grade_1h: Option<String>,
    #[serde(default, deserialize_with = "loose_string", rename = "pm25Grade1h")]
    pm25_grade_1h: Option<String>,
    /// "통신장애", "점검및교정", "자료이상" …: the value beside it is not a measurement.
    #[serde(default, deserialize_with = "loose_string")]
    pm10_flag: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pm25_flag: Option<String>,
}

/// The newest row with a value. `station` is the configured name, used when rows omit theirs.
pub fn parse(text: &str, station: &str) -> Result<OutdoorDust, OutdoorError> {
    let body: Body = answer::open(SERVICE, text)?;
    let mut newest: Option<OutdoorDust> = None;
    for item in body.items {
        let Some(observed_ms) = item.data_time.as_deref().and_then(observed_ms) else {
            continue;
        };
        let (pm10, pm10_grade) = measured(&item.pm10_value, &item.pm10_flag, &item.pm10_grade_1h, &item.pm10_grade);
        let (pm25, pm25_grade) = measured(&item.pm25_value, &item.pm25_flag, &item.pm25_grade_1h, &item.pm25_grade);
        if pm10.is_none() && pm25.is_none() {
            continue;
        }
        if newest.as_ref().is_some_and(|n| n.observed_ms >= observed_ms) {
            continue;
        }
        let station = item.station_name.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| station.to_string());
        newest = Some(OutdoorDust { station, observed_ms, pm10, pm25, pm10_grade, pm25_grade });
    }
    newest.ok_or(OutdoorError::NoValues { service: SERVICE.name })
}

/// A value and its grade, unless flagged. The 1-hour grade goes with the 1-hour value; the
/// older 24-hour grade stands in where the answer has no 1-hour one.
fn measured(
    value: &Option<String>,
    flag: &Option<String>,
    grade_1h: &Option<String>,
    grade: &Option<String>,
) -> (Option<f32>, Option<u8>) {
    if flag.as_deref().is_some_and(|f| !f.trim().is_empty()) {
        return (None, None);
    }
    let Some(value) = number(value.as_deref()).filter(|v| *v >= 0.0) else {
        return (None, None);
    };
    let grade_of =
        |g: &Option<String>| g.as_deref().and_then(|g| g.trim().parse::<u8>().ok()).filter(|g| (1..=4).contains(g));
    (Some(value), grade_of(grade_1h).or_else(|| grade_of(grade)))
}

/// "YYYY-MM-DD HH:MM", KST; the hour ending at midnight is written "24:00" of the day before.
pub fn observed_ms(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once(' ')?;
    let (hour, minute) = time.split_once(':')?;
    let (hour, minute): (i8, i8) = (hour.parse().ok()?, minute.parse().ok()?);
    let date: jiff::civil::Date = date.parse().ok()?;
    let at = if hour == 24 && minute == 0 {
        date.checked_add(1.day()).ok()?.at(0, 0, 0, 0)
    } else {
        DateTime::new(date.year(), date.month(), date.day(), hour, minute, 0, 0).ok()?
    };
    Some(at.to_zoned_datetime(kst()).ok()?.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_is_24_00_of_the_day_before() {
        let midnight = observed_ms("2026-12-01 24:00").expect("24:00");
        assert_eq!(Some(midnight), observed_ms("2026-12-02 00:00"));
        // 2026-12-02 00:00 KST is 2026-12-01 15:00 UTC.
        assert_eq!(midnight, 1_796_137_200_000);
        assert_eq!(observed_ms("2026-12-31 24:00"), observed_ms("2027-01-01 00:00"));
        for bad in ["", "2026-12-01", "2026-12-01 25:00", "2026-12-01 24:30", "어제 09:00"] {
            assert_eq!(observed_ms(bad), None, "{bad}");
        }
    }
}

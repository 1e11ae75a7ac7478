//! KMA's ultra-short-term observations (`getUltraSrtNcst`) on the center's grid cell: the air
//! temperature (T1H, °C) and relative humidity (REH, %) of the latest hour.

use jiff::{Timestamp, ToSpan, ZonedDateTime};
use serde::Deserialize;

use super::answer::{self, loose_string, number, OutdoorError, Service};
use super::kst;
use crate::air::OutdoorWeather;

pub const SERVICE: Service = Service { name: "KMA", key_file: "outdoor.kma.service_key_file" };
pub const OPERATION: &str = "getUltraSrtNcst";

/// The hour's observations are published at about HH:40 KST.
const PUBLISHED_AT_MINUTE: i8 = 40;

/// The newest observation hour that should exist at `now`: this hour from :40 on, the previous
/// one before.
pub fn latest_hour(now: Timestamp) -> ZonedDateTime {
    let here = now.to_zoned_datetime(kst());
    let hour = if here.minute() < PUBLISHED_AT_MINUTE { here.checked_sub(1.hour()).unwrap_or(here) } else { here };
    hour.with().minute(0).second(0).subsec_nanosecond(0).build().unwrap_or(hour)
}

/// `base_date` (YYYYMMDD) and `base_time` (HH00) of an observation hour.
pub fn base(hour: &ZonedDateTime) -> (String, String) {
    (hour.strftime("%Y%m%d").to_string(), hour.strftime("%H00").to_string())
}

/// The query besides the key.
pub fn params(hour: &ZonedDateTime, nx: u16, ny: u16) -> Vec<(&'static str, String)> {
    let (date, time) = base(hour);
    vec![
        ("dataType", "JSON".into()),
        ("numOfRows", "100".into()),
        ("pageNo", "1".into()),
        ("base_date", date),
        ("base_time", time),
        ("nx", nx.to_string()),
        ("ny", ny.to_string()),
    ]
}

#[derive(Debug, Deserialize)]
struct Body {
    items: Items,
}

#[derive(Debug, Deserialize)]
struct Items {
    #[serde(default)]
    item: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default, deserialize_with = "loose_string")]
    base_date: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    base_time: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    category: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    obsr_value: Option<String>,
}

/// The hour's T1H and REH on the cell asked for (`hour` stands in when rows omit their time).
pub fn parse(text: &str, hour: &ZonedDateTime, nx: u16, ny: u16) -> Result<OutdoorWeather, OutdoorError> {
    let body: Body = answer::open(SERVICE, text)?;
    let mut weather = OutdoorWeather {
        nx,
        ny,
        observed_ms: hour.timestamp().as_millisecond(),
        temperature_c: None,
        humidity_pct: None,
    };
    for item in &body.items.item {
        let value = number(item.obsr_value.as_deref());
        match item.category.as_deref() {
            Some("T1H") => weather.temperature_c = value.filter(|t| (-60.0..=60.0).contains(t)),
            Some("REH") => weather.humidity_pct = value.filter(|h| (0.0..=100.0).contains(h)),
            _ => continue,
        }
        if let Some(at) = observed_ms(item.base_date.as_deref(), item.base_time.as_deref()) {
            weather.observed_ms = at;
        }
    }
    if weather.temperature_c.is_none() && weather.humidity_pct.is_none() {
        return Err(OutdoorError::NoValues { service: SERVICE.name });
    }
    Ok(weather)
}

/// "20261201" and "0900", KST.
fn observed_ms(date: Option<&str>, time: Option<&str>) -> Option<i64> {
    let (date, time) = (date?.trim(), time?.trim());
    if date.len() != 8 || time.len() != 4 {
        return None;
    }
    let at = jiff::civil::DateTime::strptime("%Y%m%d%H%M", format!("{date}{time}")).ok()?;
    Some(at.to_zoned_datetime(kst()).ok()?.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(kst_text: &str) -> Timestamp {
        let t: jiff::civil::DateTime = kst_text.parse().expect("datetime");
        t.to_zoned_datetime(kst()).expect("kst").timestamp()
    }

    #[test]
    fn the_hour_asked_for_is_published_from_minute_40() {
        let cases = [
            ("2026-12-01T09:39:59", "20261201", "0800"),
            ("2026-12-01T09:40:00", "20261201", "0900"),
            ("2026-12-01T23:59:00", "20261201", "2300"),
            ("2026-12-01T00:10:00", "20261130", "2300"),
            ("2027-01-01T00:39:00", "20261231", "2300"),
        ];
        for (now, date, time) in cases {
            let hour = latest_hour(at(now));
            assert_eq!(base(&hour), (date.to_string(), time.to_string()), "{now}");
        }
        // The fallback is the hour before, across midnight too.
        let earlier = latest_hour(at("2026-12-01T00:50:00")).checked_sub(1.hour()).expect("sub");
        assert_eq!(base(&earlier), ("20261130".to_string(), "2300".to_string()));
    }
}

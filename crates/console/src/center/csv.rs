//! The month's attendance as CSV for the center's records: one row per child per day the child
//! came. UTF-8 with a byte-order mark (Korean Excel reads it as UTF-8 only with one), RFC 4180
//! quoting, and cells that a spreadsheet would run as a formula are defused.

use jiff::civil::Date;

use super::attendance::{class_of, hhmm};
use super::Center;
use crate::center::store::StoreError;

pub const HEADER: [&str; 8] =
    ["날짜 date", "아이 ID child id", "이름 name", "반 class", "등원 arrival", "하원 departure", "방법 method", "체온 temperature (°C)"];

/// The first and last day of `YYYY-MM`, or None for anything else.
pub fn month_range(month: &str) -> Option<(Date, Date)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let first = Date::new(y.parse().ok()?, m.parse().ok()?, 1).ok()?;
    Some((first, first.last_of_month()))
}

/// One cell: a leading = + - @ (or tab, carriage return) gets a `'` so it stays text, and a cell
/// with a comma, quote or line break is quoted with its quotes doubled.
pub fn cell(text: &str) -> String {
    let guarded =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The whole file from its rows (already in text).
pub fn render(rows: &[[String; 8]]) -> String {
    let mut out = String::from("\u{feff}");
    for row in std::iter::once(HEADER.map(str::to_string)).chain(rows.iter().cloned()) {
        let line: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The month's file, or None for a month that is not `YYYY-MM`.
pub fn month(center: &Center, month: &str) -> Result<Option<String>, StoreError> {
    let Some((first, last)) = month_range(month) else { return Ok(None) };
    let records = center.store.records(&first.to_string(), &last.to_string())?;
    let names: std::collections::HashMap<String, String> = center
        .store
        .rosters()?
        .into_iter()
        .flat_map(|r| r.people.into_iter().map(|p| (p.id, p.name)))
        .collect();
    let tz = center.store.tz();
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            [
                r.day.clone(),
                r.person.clone(),
                names.get(&r.person).cloned().unwrap_or_default(),
                class_of(&center.config, &r.person).unwrap_or_default().to_string(),
                r.arrival_ms.map(|t| hhmm(t, tz)).unwrap_or_default(),
                r.departure_ms.map(|t| hhmm(t, tz)).unwrap_or_default(),
                r.methods.join(" "),
                r.temperature_c.map(|t| format!("{t:.1}")).unwrap_or_default(),
            ]
        })
        .collect();
    Ok(Some(render(&rows)))
}

//! The month's attendance as CSV for the center's records: one row per child per day the child
//! came. UTF-8 with a byte-order mark (Korean Excel reads it as UTF-8 only with one), RFC 4180
//! quoting, and cells that a spreadsheet would run as a formula are defused.

use jiff::civil::Date;

use super::attendance::{class_of, hhmm};
use super::Center;
use crate::center::store::StoreError;

pub const HEADER: [&str; 8] = [
    "날짜 date",
    "아이 ID child id",
    "이름 name",
    "반 class",
    "등원 arrival",
    "하원 departure",
    "방법 method",
    "체온 temperature (°C)",
];

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
    let names: std::collections::HashMap<String, String> =
        center.store.rosters()?.into_iter().flat_map(|r| r.people.into_iter().map(|p| (p.id, p.name))).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::center::testing::{attendance, config, offline, roster};
    use dolbom_contract::AttendanceKind::{Arrival, Departure};
    use dolbom_contract::ConsentState;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        for f in ["=1+1", "+1", "-1", "@SUM(A1)"] {
            assert_eq!(cell(f), format!("'{f}"), "{f}");
        }
        assert_eq!(cell("=HYPERLINK(\"x\",\"y\")"), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"");
    }

    #[test]
    fn months_are_yyyy_mm() {
        assert_eq!(
            month_range("2026-02").map(|(a, b)| (a.to_string(), b.to_string())),
            Some(("2026-02-01".into(), "2026-02-28".into()))
        );
        for bad in ["2026-13", "2026-2", "26-02", "", "2026-02-01", "x"] {
            assert!(month_range(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn one_row_per_child_per_day_with_a_bom() {
        let dir = tempfile::tempdir().expect("tmp");
        let center = offline(config(dir.path(), "csvc", 1, 1));
        let s = &center.store;
        s.roster(&roster(
            "csvc",
            "door-1",
            &[
                ("minji", "김민지", true, ConsentState::InForce),
                ("evil", "=cmd|' /C calc'!A0", false, ConsentState::None),
            ],
        ))
        .expect("roster");
        for (p, ts, k, t) in [
            ("minji", "2026-11-03T08:40:00+09:00", Arrival, Some(36.6)),
            ("minji", "2026-11-03T08:41:00+09:00", Arrival, Some(36.9)),
            ("minji", "2026-11-03T17:10:00+09:00", Departure, None),
            ("minji", "2026-11-04T08:50:00+09:00", Arrival, Some(36.5)),
            ("evil", "2026-11-04T09:00:00+09:00", Arrival, None),
            ("minji", "2026-12-01T09:00:00+09:00", Arrival, None),
        ] {
            s.attendance(&attendance("csvc", "door-1", p, ts, k, t)).expect("event");
        }
        let file = month(&center, "2026-11").expect("db").expect("a month");
        assert!(file.starts_with('\u{feff}'), "BOM");
        let lines: Vec<&str> = file.trim_start_matches('\u{feff}').split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 4, "header + 3 child-days: {lines:?}");
        assert!(lines[0].starts_with("날짜 date,"));
        assert_eq!(lines[1], "2026-11-03,minji,김민지,해님반,08:40,17:10,face staff,36.6");
        assert_eq!(lines[2], "2026-11-04,evil,'=cmd|' /C calc'!A0,,09:00,,staff,");
        assert!(lines[3].starts_with("2026-11-04,minji,"));
        assert!(month(&center, "2026-13").expect("db").is_none());
    }
}

//! The attendance book: per person per day (in the site's time zone), has this person arrived
//! or left? Turns confident sightings into arrival and departure decisions and remembers them in
//! the kiosk database, so a reboot in the middle of the day changes nothing.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;

use crate::store::StoreError;
use dolbom_contract::AttendanceKind;

/// What a kiosk is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KioskMode {
    /// Sightings are arrivals only.
    Entrance,
    /// Sightings are departures only.
    Exit,
    /// One door both ways: a later sighting is a departure after the minimum stay or inside the
    /// departure window.
    Both,
}

/// `[attendance]`: when a sighting is an arrival, a departure, or nothing new.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttendanceConfig {
    pub mode: KioskMode,
    pub min_stay_minutes: u64,
    pub cooldown_minutes: u64,
    /// Local pick-up window, e.g. ["15:00", "20:00"]: a sighting in it is a departure.
    pub departure_window: Option<[String; 2]>,
}

impl Default for AttendanceConfig {
    fn default() -> Self {
        Self { mode: KioskMode::Both, min_stay_minutes: 120, cooldown_minutes: 10, departure_window: None }
    }
}

impl AttendanceConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        // A day at most: attendance is per day, and minutes become milliseconds in an i64.
        dolbom_face::config::in_range("attendance.min_stay_minutes", self.min_stay_minutes, 0, 1440)?;
        dolbom_face::config::in_range("attendance.cooldown_minutes", self.cooldown_minutes, 0, 1440)?;
        self.window().map(|_| ())
    }

    fn window(&self) -> Result<Option<(Time, Time)>, (&'static str, String)> {
        let Some([from, to]) = &self.departure_window else { return Ok(None) };
        match (from.parse::<Time>(), to.parse::<Time>()) {
            (Ok(a), Ok(b)) if a < b => Ok(Some((a, b))),
            _ => Err((
                "attendance.departure_window",
                format!("= [\"{from}\", \"{to}\"]: two local times \"HH:MM\", the first earlier"),
            )),
        }
    }

    /// The rules in the site's time zone.
    pub fn build(&self, tz: TimeZone) -> Result<AttendancePolicy, (&'static str, String)> {
        self.validate()?;
        Ok(AttendancePolicy {
            mode: self.mode,
            min_stay_ms: (self.min_stay_minutes * 60_000) as i64,
            cooldown_ms: (self.cooldown_minutes * 60_000) as i64,
            departure_window: self.window()?,
            tz,
        })
    }
}

#[derive(Debug, Clone)]
pub struct AttendancePolicy {
    pub mode: KioskMode,
    pub min_stay_ms: i64,
    pub cooldown_ms: i64,
    /// Local times between which a sighting of someone who arrived is a departure (pick-up time).
    pub departure_window: Option<(Time, Time)>,
    pub tz: TimeZone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRecord {
    pub arrived_ms: Option<i64>,
    pub departed_ms: Option<i64>,
    pub last_event_ms: i64,
}

/// The rules, without storage: what a sighting at `at` means given the day so far.
pub fn decide(record: Option<&DayRecord>, at: Timestamp, policy: &AttendancePolicy) -> Option<AttendanceKind> {
    let at_ms = at.as_millisecond();
    let Some(r) = record else {
        return Some(if policy.mode == KioskMode::Exit { AttendanceKind::Departure } else { AttendanceKind::Arrival });
    };
    if at_ms - r.last_event_ms < policy.cooldown_ms || r.departed_ms.is_some() {
        // Left already today: a child leaves once a day; coming back for a forgotten bag is not news.
        return None;
    }
    match policy.mode {
        KioskMode::Entrance => None,
        KioskMode::Exit => Some(AttendanceKind::Departure),
        KioskMode::Both => {
            let stayed = r.arrived_ms.is_some_and(|a| at_ms - a >= policy.min_stay_ms);
            let local = at.to_zoned_datetime(policy.tz.clone()).time();
            let in_window = policy.departure_window.is_some_and(|(from, to)| local >= from && local < to);
            (stayed || in_window).then_some(AttendanceKind::Departure)
        }
    }
}

/// The site-local calendar day of `at`, e.g. "2026-11-25".
pub fn day_of(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned_datetime(tz.clone()).date().to_string()
}

/// Applies a sighting inside the caller's transaction; returns the event it produces, if any.
pub fn record_sighting(
    conn: &Connection,
    policy: &AttendancePolicy,
    person: &str,
    at: Timestamp,
) -> Result<Option<AttendanceKind>, StoreError> {
    let day = day_of(at, &policy.tz);
    let record = conn
        .query_row(
            "SELECT arrived_ms, departed_ms, last_event_ms FROM attendance WHERE day = ?1 AND person = ?2",
            params![day, person],
            |r| Ok(DayRecord { arrived_ms: r.get(0)?, departed_ms: r.get(1)?, last_event_ms: r.get(2)? }),
        )
        .optional()?;
    let Some(kind) = decide(record.as_ref(), at, policy) else {
        return Ok(None);
    };
    let at_ms = at.as_millisecond();
    let (arrived, departed) = match kind {
        AttendanceKind::Arrival => (Some(at_ms), record.as_ref().and_then(|r| r.departed_ms)),
        AttendanceKind::Departure => (record.as_ref().and_then(|r| r.arrived_ms), Some(at_ms)),
    };
    conn.execute(
        "INSERT INTO attendance (day, person, arrived_ms, departed_ms, last_event_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(day, person) DO UPDATE SET arrived_ms = ?3, departed_ms = ?4, last_event_ms = ?5",
        params![day, person, arrived, departed, at_ms],
    )?;
    Ok(Some(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn policy(mode: KioskMode) -> AttendancePolicy {
        AttendancePolicy {
            mode,
            min_stay_ms: 120 * MIN,
            cooldown_ms: 10 * MIN,
            departure_window: Some((Time::constant(15, 0, 0, 0), Time::constant(20, 0, 0, 0))),
            tz: TimeZone::get("Asia/Seoul").expect("tzdb"),
        }
    }

    /// 2026-11-25 at the given Seoul local time.
    fn at(h: i8, m: i8) -> Timestamp {
        jiff::civil::date(2026, 11, 25).at(h, m, 0, 0).in_tz("Asia/Seoul").expect("zoned").timestamp()
    }

    fn run(mode: KioskMode, times: &[(i8, i8)]) -> Vec<Option<AttendanceKind>> {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE attendance (day TEXT, person TEXT, arrived_ms INTEGER, departed_ms INTEGER, last_event_ms INTEGER, PRIMARY KEY (day, person));",
        )
        .expect("schema");
        let p = policy(mode);
        times.iter().map(|(h, m)| record_sighting(&conn, &p, "minji", at(*h, *m)).expect("record")).collect()
    }

    use AttendanceKind::{Arrival as A, Departure as D};

    #[test]
    fn both_ways_door() {
        // Arrive 08:40; seen again 08:45 (cooldown), 09:30 (too soon), 11:00 (min stay: leaves);
        // seen at 11:05 and 16:00 after leaving: nothing.
        let got = run(KioskMode::Both, &[(8, 40), (8, 45), (9, 30), (11, 0), (11, 5), (16, 0)]);
        assert_eq!(got, [Some(A), None, None, Some(D), None, None]);
    }

    #[test]
    fn afternoon_window_is_a_departure_even_after_a_short_stay() {
        let got = run(KioskMode::Both, &[(14, 30), (15, 10)]);
        assert_eq!(got, [Some(A), Some(D)]); // stay < 2 h, but 15:10 is pick-up time
    }

    #[test]
    fn entrance_and_exit_kiosks() {
        assert_eq!(run(KioskMode::Entrance, &[(8, 0), (12, 0), (17, 0)]), [Some(A), None, None]);
        assert_eq!(run(KioskMode::Exit, &[(17, 0), (17, 2), (17, 30)]), [Some(D), None, None]);
    }

    #[test]
    fn a_new_day_starts_fresh() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE attendance (day TEXT, person TEXT, arrived_ms INTEGER, departed_ms INTEGER, last_event_ms INTEGER, PRIMARY KEY (day, person));",
        )
        .expect("schema");
        let p = policy(KioskMode::Entrance);
        let day1 = at(8, 0);
        let day2 = day1.checked_add(jiff::SignedDuration::from_hours(24)).expect("add");
        assert_eq!(record_sighting(&conn, &p, "minji", day1).expect("r"), Some(A));
        assert_eq!(record_sighting(&conn, &p, "minji", day2).expect("r"), Some(A));
    }

    #[test]
    fn days_follow_the_site_time_zone() {
        // 23:30 UTC on the 24th is 08:30 on the 25th in Seoul.
        let ts: Timestamp = "2026-11-24T23:30:00Z".parse().expect("ts");
        assert_eq!(day_of(ts, &TimeZone::get("Asia/Seoul").expect("tz")), "2026-11-25");
    }
}

//! Event ids and timestamps as they appear in payloads.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use uuid::Uuid;

/// A new event id: UUIDv7, unique forever and ordered by creation time. The relay dedupes on it.
pub fn new_event_id() -> Uuid {
    Uuid::now_v7()
}

/// RFC 3339 with the site's UTC offset and millisecond precision, e.g. `2026-11-25T08:42:07.120+09:00`.
pub fn rfc3339(ts: Timestamp, tz: &TimeZone) -> String {
    let ms = Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts);
    ms.display_with_offset(tz.to_offset(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_carry_the_site_offset() {
        let tz = TimeZone::get("Asia/Seoul").expect("tzdb");
        let ts = Timestamp::from_millisecond(1_764_027_727_120).expect("ts");
        assert_eq!(rfc3339(ts, &tz), "2025-11-25T08:42:07.12+09:00");
    }

    #[test]
    fn event_ids_are_v7_and_increase() {
        let a = new_event_id();
        let b = new_event_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(b > a);
    }
}

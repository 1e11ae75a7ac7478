//! Quiet hours: a center may ask for no texts at night; a text due then waits for the morning.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::directory;

/// The end of the center's quiet hours, when `now` falls inside them.
pub fn quiet_until(center: &directory::Center, now: i64) -> Option<i64> {
    let [from, to] = center.quiet_hours.as_ref()?;
    let (from, to): (jiff::civil::Time, jiff::civil::Time) = (from.parse().ok()?, to.parse().ok()?);
    let tz = TimeZone::get(&center.timezone).ok()?;
    let local = Timestamp::from_millisecond(now).ok()?.to_zoned_datetime(tz);
    let t = local.time();
    let inside = if from <= to { t >= from && t < to } else { t >= from || t < to };
    if !inside {
        return None;
    }
    // Quiet hours that wrap midnight end tomorrow when we are in the evening part.
    let mut end_date = local.date();
    if from > to && t >= from {
        end_date = end_date.tomorrow().ok()?;
    }
    Some(end_date.to_datetime(to).in_tz(&center.timezone).ok()?.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn center(quiet: Option<[&str; 2]>) -> directory::Center {
        directory::Center {
            id: "c".into(),
            name: "C".into(),
            sender: "0212345678".into(),
            timezone: "Asia/Seoul".into(),
            quiet_hours: quiet.map(|[a, b]| [a.into(), b.into()]),
            templates: Default::default(),
        }
    }

    fn seoul(h: i8, m: i8) -> i64 {
        jiff::civil::date(2026, 11, 25).at(h, m, 0, 0).in_tz("Asia/Seoul").expect("tz").timestamp().as_millisecond()
    }

    #[test]
    fn quiet_hours_across_midnight_hold_until_morning() {
        let c = center(Some(["22:00", "06:30"]));
        let next_morning = jiff::civil::date(2026, 11, 26)
            .at(6, 30, 0, 0)
            .in_tz("Asia/Seoul")
            .expect("tz")
            .timestamp()
            .as_millisecond();
        assert_eq!(quiet_until(&c, seoul(23, 15)), Some(next_morning));
        assert_eq!(quiet_until(&c, seoul(5, 0)), Some(seoul(6, 30)));
        assert_eq!(quiet_until(&c, seoul(8, 42)), None);
        assert_eq!(quiet_until(&center(None), seoul(23, 15)), None);
        let lunch = center(Some(["12:00", "13:00"]));
        assert_eq!(quiet_until(&lunch, seoul(12, 30)), Some(seoul(13, 0)));
    }
}

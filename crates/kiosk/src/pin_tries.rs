//! Wrong PINs, counted in the kiosk's database so a restart forgets none, and the locks they
//! cause: `pin.max_wrong_per_minute` wrong in a minute locks the input for
//! `pin.minute_lock_secs`; `pin.max_wrong_per_hour` wrong within an hour locks it until an hour
//! after the last wrong one, or until staff run `dolbom pin unlock`. At the defaults (5, 60 s,
//! 10) a guesser gets about 10 tries an hour, some 240 a day.

use rusqlite::{params, Connection, OptionalExtension};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// The limits, from `[pin]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_minute: u32,
    pub minute_lock_ms: i64,
    pub per_hour: u32,
}

/// Why the input is locked, and until when (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Too many wrong in a minute: a short pause.
    Minute { until_ms: i64 },
    /// Too many wrong in an hour: until an hour after the last, or a staff unlock.
    Hour { until_ms: i64 },
}

impl Lock {
    pub fn until_ms(&self) -> i64 {
        match self {
            Lock::Minute { until_ms } | Lock::Hour { until_ms } => *until_ms,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Lock::Minute { .. } => "minute",
            Lock::Hour { .. } => "hour",
        }
    }
}

fn count_since(conn: &Connection, after_ms: i64) -> rusqlite::Result<u32> {
    conn.query_row("SELECT COUNT(*) FROM pin_wrong WHERE at_ms > ?1", [after_ms], |r| r.get(0))
}

/// The lock in force at `now_ms`, if any.
pub fn lock(conn: &Connection, limits: &Limits, now_ms: i64) -> rusqlite::Result<Option<Lock>> {
    let last: Option<i64> = conn.query_row("SELECT MAX(at_ms) FROM pin_wrong", [], |r| r.get(0)).optional()?.flatten();
    let Some(last) = last else { return Ok(None) };
    if now_ms < last + HOUR_MS && count_since(conn, last - HOUR_MS)? >= limits.per_hour {
        return Ok(Some(Lock::Hour { until_ms: last + HOUR_MS }));
    }
    if now_ms < last + limits.minute_lock_ms && count_since(conn, last - MINUTE_MS)? >= limits.per_minute {
        return Ok(Some(Lock::Minute { until_ms: last + limits.minute_lock_ms }));
    }
    Ok(None)
}

/// Records a wrong PIN at `now_ms`; how many more may be wrong before a lock (0: locked now).
/// Tries older than the hour are forgotten here.
pub fn record_wrong(conn: &Connection, limits: &Limits, now_ms: i64) -> rusqlite::Result<u32> {
    conn.execute("INSERT INTO pin_wrong (at_ms) VALUES (?1)", [now_ms])?;
    conn.execute("DELETE FROM pin_wrong WHERE at_ms <= ?1", params![now_ms - HOUR_MS])?;
    let minute = limits.per_minute.saturating_sub(count_since(conn, now_ms - MINUTE_MS)?);
    let hour = limits.per_hour.saturating_sub(count_since(conn, now_ms - HOUR_MS)?);
    Ok(minute.min(hour))
}

/// Forgets every wrong try (a staff unlock); how many there were.
pub fn unlock(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM pin_wrong", [])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const LIMITS: Limits = Limits { per_minute: 5, minute_lock_ms: 60_000, per_hour: 10 };
    const T0: i64 = 1_780_000_000_000;

    fn s(secs: i64) -> i64 {
        T0 + secs * 1000
    }

    #[test]
    fn five_wrong_in_a_minute_lock_for_a_minute_ten_in_an_hour_until_the_hour_or_staff() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("kiosk.db")).expect("store");
        let conn = store.lock().expect("lock");
        for i in 0..5 {
            assert_eq!(lock(&conn, &LIMITS, s(i)).expect("lock"), None);
            assert_eq!(record_wrong(&conn, &LIMITS, s(i)).expect("wrong"), 4 - i as u32);
        }
        assert_eq!(lock(&conn, &LIMITS, s(10)).expect("lock"), Some(Lock::Minute { until_ms: s(64) }));
        assert_eq!(lock(&conn, &LIMITS, s(64)).expect("lock"), None, "a minute after the fifth");
        for i in 0..5 {
            assert_eq!(lock(&conn, &LIMITS, s(70 + i)).expect("lock"), None);
            let left = record_wrong(&conn, &LIMITS, s(70 + i)).expect("wrong");
            assert_eq!(left, 4 - i as u32, "the hour's limit is reached with the minute's");
        }
        let hour = Some(Lock::Hour { until_ms: s(74 + 3600) });
        assert_eq!(lock(&conn, &LIMITS, s(200)).expect("lock"), hour, "not a minute: an hour");
        assert_eq!(lock(&conn, &LIMITS, s(74 + 3599)).expect("lock"), hour);
        assert_eq!(lock(&conn, &LIMITS, s(74 + 3600)).expect("lock"), None, "an hour after the last wrong one");
        drop(conn);
        drop(store);
        // A restart forgets nothing: the same database, the same lock.
        let store = Store::open(&dir.path().join("kiosk.db")).expect("reopen");
        let conn = store.lock().expect("lock");
        assert_eq!(lock(&conn, &LIMITS, s(300)).expect("lock"), hour, "kept across a restart");
        assert_eq!(unlock(&conn).expect("unlock"), 10);
        assert_eq!(lock(&conn, &LIMITS, s(300)).expect("lock"), None, "staff unlocked it");
    }

    #[test]
    fn wrong_tries_older_than_an_hour_are_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("kiosk.db")).expect("store");
        let conn = store.lock().expect("lock");
        for i in 0..9 {
            record_wrong(&conn, &LIMITS, s(i * 600)).expect("wrong");
        }
        // Nine over 80 minutes: the oldest ones went out of the hour, no lock.
        assert_eq!(lock(&conn, &LIMITS, s(4801)).expect("lock"), None);
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM pin_wrong", [], |r| r.get(0)).expect("count");
        assert_eq!(rows, 6, "only the last hour's are kept");
    }
}

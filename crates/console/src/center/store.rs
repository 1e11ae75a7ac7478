//! console.db: what the doors reported, kept by day in the center's time zone. Every event is
//! stored under its event id, so a message the broker redelivers changes nothing; retained
//! states (alerts, rosters, status, air now) keep the latest.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use dolbom_contract::{
    AirEvent, AirTelemetry, AlertState, AttendanceEvent, AttendanceKind, FeverEvent, Roster, StatusPayload,
    TemperatureEvent, TemperatureKind, TemperatureStatus, VisitorEvent,
};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("timestamp `{0}` is not RFC 3339")]
    Time(String),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the database lock is poisoned")]
    Poisoned,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS attendance (
    event_id TEXT PRIMARY KEY, day TEXT NOT NULL, person TEXT NOT NULL, kind TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, method TEXT NOT NULL, temperature_c REAL, kiosk TEXT NOT NULL,
    remeasure INTEGER NOT NULL DEFAULT 0, role TEXT NOT NULL DEFAULT 'child');
CREATE INDEX IF NOT EXISTS attendance_day ON attendance (day, person, ts_ms);
CREATE TABLE IF NOT EXISTS settled (
    event_id TEXT PRIMARY KEY, day TEXT NOT NULL, arrival_event_id TEXT NOT NULL, temperature_c REAL);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY, day TEXT NOT NULL, kiosk TEXT NOT NULL, state TEXT NOT NULL,
    person TEXT, temperature_c REAL NOT NULL, raised_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    changed_by TEXT);
CREATE TABLE IF NOT EXISTS visitors (
    event_id TEXT PRIMARY KEY, day TEXT NOT NULL, ts_ms INTEGER NOT NULL, kiosk TEXT NOT NULL,
    temperature_c REAL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS air (
    kiosk TEXT NOT NULL, ts_ms INTEGER NOT NULL, day TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (kiosk, ts_ms));
CREATE TABLE IF NOT EXISTS air_events (
    event_id TEXT PRIMARY KEY, day TEXT NOT NULL, ts_ms INTEGER NOT NULL, kiosk TEXT NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kiosks (
    kiosk TEXT PRIMARY KEY, json TEXT NOT NULL, seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rosters (
    kiosk TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, json TEXT NOT NULL);
";

/// One child's day: first arrival, last departure, how, the arrival's temperature.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRecord {
    pub day: String,
    pub person: String,
    pub arrival_ms: Option<i64>,
    pub departure_ms: Option<i64>,
    /// Distinct methods in the order first used ("face", "staff"…).
    pub methods: Vec<String>,
    /// The first arrival's value, or the value that settled its re-measure.
    pub temperature_c: Option<f32>,
    /// The first arrival's reading asked for a re-measure that has not settled (yet): no value
    /// to show, a teacher checks.
    pub remeasure: bool,
    /// The kiosk of the latest event.
    pub kiosk: String,
    /// Whether the latest event was an arrival: the child is in.
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub alert_id: String,
    pub kiosk: String,
    /// `active`, `silenced` or `resolved`.
    pub state: String,
    pub person: Option<String>,
    pub temperature_c: f32,
    pub raised_ms: i64,
    pub changed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisitorRow {
    pub ts_ms: i64,
    pub kiosk: String,
    pub temperature_c: Option<f32>,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct KioskRow {
    pub kiosk: String,
    pub status: StatusPayload,
    pub seen_ms: i64,
}

pub struct Store {
    conn: Mutex<Connection>,
    tz: TimeZone,
}

/// Milliseconds since the epoch of an RFC 3339 timestamp.
pub fn parse_ms(ts: &str) -> Result<i64, StoreError> {
    ts.parse::<Timestamp>().map(|t| t.as_millisecond()).map_err(|_| StoreError::Time(ts.to_string()))
}

fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl Store {
    pub fn open(path: &Path, tz: TimeZone) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn: Mutex::new(conn), tz })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The center's day (YYYY-MM-DD) a moment falls on.
    pub fn day_of(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms).map(|t| self.tz.to_datetime(t).date().to_string()).unwrap_or_default()
    }

    pub fn today(&self) -> String {
        self.day_of(Timestamp::now().as_millisecond())
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// Returns whether the event was new.
    pub fn attendance(&self, e: &AttendanceEvent) -> Result<bool, StoreError> {
        let ms = parse_ms(&e.ts)?;
        let kind = match e.kind {
            AttendanceKind::Arrival => "arrival",
            AttendanceKind::Departure => "departure",
        };
        // Only a settled reading is a temperature; a re-measure's is a question still open.
        let settled = matches!(e.temperature_status, TemperatureStatus::Normal | TemperatureStatus::Elevated);
        let remeasure = e.temperature_status == TemperatureStatus::Remeasure;
        let n = self.lock()?.execute(
            "INSERT OR IGNORE INTO attendance VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                e.event_id.to_string(),
                self.day_of(ms),
                e.person.id,
                kind,
                ms,
                snake(&e.method),
                e.temperature_c.filter(|_| settled),
                e.kiosk,
                remeasure,
                e.person.role.to_string()
            ],
        )?;
        Ok(n > 0)
    }

    /// A re-measure that settled gives its arrival the settled value.
    pub fn temperature(&self, e: &TemperatureEvent) -> Result<bool, StoreError> {
        let ms = parse_ms(&e.ts)?;
        let value = match e.kind {
            TemperatureKind::Settled => e.temperature_c,
            TemperatureKind::Unsettled => None,
        };
        let n = self.lock()?.execute(
            "INSERT OR IGNORE INTO settled VALUES (?1, ?2, ?3, ?4)",
            params![e.event_id.to_string(), self.day_of(ms), e.arrival_event_id.to_string(), value],
        )?;
        Ok(n > 0)
    }

    pub fn visitor(&self, e: &VisitorEvent) -> Result<bool, StoreError> {
        let ms = parse_ms(&e.ts)?;
        let n = self.lock()?.execute(
            "INSERT OR IGNORE INTO visitors VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.event_id.to_string(),
                self.day_of(ms),
                ms,
                e.kiosk,
                e.temperature_c,
                snake(&e.temperature_status)
            ],
        )?;
        Ok(n > 0)
    }

    /// A fever event opens its alert (active) unless the alert's state is already known.
    pub fn fever(&self, e: &FeverEvent) -> Result<bool, StoreError> {
        let ms = parse_ms(&e.ts)?;
        let n = self.lock()?.execute(
            "INSERT OR IGNORE INTO alerts VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?6, NULL)",
            params![e.alert_id, self.day_of(ms), e.kiosk, e.person.as_ref().map(|p| &p.id), e.temperature_c, ms],
        )?;
        Ok(n > 0)
    }

    /// The retained alert state: a newer `updated_at` replaces an older one, never the reverse.
    pub fn alert(&self, a: &AlertState) -> Result<bool, StoreError> {
        let raised = parse_ms(&a.raised_at)?;
        let updated = parse_ms(&a.updated_at)?;
        let by = a.resolved_by.clone().or_else(|| a.silenced_by.clone());
        let n = self.lock()?.execute(
            "INSERT INTO alerts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (alert_id) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms,
               changed_by = excluded.changed_by, person = excluded.person
             WHERE excluded.updated_ms >= alerts.updated_ms AND excluded.state != alerts.state",
            params![
                a.alert_id,
                self.day_of(raised),
                a.kiosk,
                snake(&a.state),
                a.person.as_ref().map(|p| &p.id),
                a.temperature_c,
                raised,
                updated,
                by
            ],
        )?;
        Ok(n > 0)
    }

    pub fn air(&self, t: &AirTelemetry) -> Result<bool, StoreError> {
        let ms = parse_ms(&t.ts)?;
        let n = self.lock()?.execute(
            "INSERT OR IGNORE INTO air VALUES (?1, ?2, ?3, ?4)",
            params![t.kiosk, ms, self.day_of(ms), serde_json::to_string(t)?],
        )?;
        Ok(n > 0)
    }

    pub fn air_event(&self, e: &AirEvent) -> Result<bool, StoreError> {
        let ms = parse_ms(&e.ts)?;
        let n = self.lock()?.execute(
            "INSERT OR IGNORE INTO air_events VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.event_id.to_string(), self.day_of(ms), ms, e.kiosk, serde_json::to_string(e)?],
        )?;
        Ok(n > 0)
    }

    /// The kiosk's retained status (its health), seen at `now_ms`.
    pub fn status(&self, s: &StatusPayload, now_ms: i64) -> Result<bool, StoreError> {
        let n = self.lock()?.execute(
            "INSERT INTO kiosks VALUES (?1, ?2, ?3)
             ON CONFLICT (kiosk) DO UPDATE SET json = excluded.json, seen_ms = excluded.seen_ms",
            params![s.kiosk, serde_json::to_string(s)?, now_ms],
        )?;
        Ok(n > 0)
    }

    /// The kiosk's retained roster; an older one (by `ts`) does not replace a newer.
    pub fn roster(&self, r: &Roster) -> Result<bool, StoreError> {
        let ms = parse_ms(&r.ts)?;
        let n = self.lock()?.execute(
            "INSERT INTO rosters VALUES (?1, ?2, ?3)
             ON CONFLICT (kiosk) DO UPDATE SET ts_ms = excluded.ts_ms, json = excluded.json
             WHERE excluded.ts_ms >= rosters.ts_ms",
            params![r.kiosk, ms, serde_json::to_string(r)?],
        )?;
        Ok(n > 0)
    }

    /// Forgets days before `keep_days` ago (counted back from `today`).
    pub fn prune(&self, today: Date, keep_days: u32) -> Result<usize, StoreError> {
        let cutoff = today.checked_sub(jiff::Span::new().days(i64::from(keep_days))).unwrap_or(today).to_string();
        let conn = self.lock()?;
        let mut n = 0;
        for table in ["attendance", "settled", "alerts", "visitors", "air", "air_events"] {
            n += conn.execute(&format!("DELETE FROM {table} WHERE day < ?1"), params![cutoff])?;
        }
        Ok(n)
    }

    /// Each child's record (staff and guardians at the door are not attendance) for the days `from..=to` (YYYY-MM-DD), by day then person.
    pub fn records(&self, from: &str, to: &str) -> Result<Vec<DayRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT a.day, a.person, a.kind, a.ts_ms, a.method, COALESCE(s.temperature_c, a.temperature_c), a.kiosk,
               a.remeasure AND s.temperature_c IS NULL
             FROM attendance a LEFT JOIN settled s ON s.arrival_event_id = a.event_id AND s.temperature_c IS NOT NULL
             WHERE a.day BETWEEN ?1 AND ?2 AND a.role = 'child' ORDER BY a.day, a.person, a.ts_ms",
        )?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<f64>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })?;
        let mut out: Vec<DayRecord> = Vec::new();
        for row in rows {
            let (day, person, kind, ts, method, temp, kiosk, remeasure) = row?;
            let same = out.last().is_some_and(|r| r.day == day && r.person == person);
            if !same {
                out.push(DayRecord {
                    day,
                    person,
                    arrival_ms: None,
                    departure_ms: None,
                    methods: Vec::new(),
                    temperature_c: None,
                    remeasure: false,
                    kiosk: String::new(),
                    present: false,
                });
            }
            let Some(r) = out.last_mut() else { continue };
            if kind == "arrival" {
                if r.arrival_ms.is_none() {
                    r.arrival_ms = Some(ts);
                    r.temperature_c = temp.map(|t| t as f32);
                    r.remeasure = remeasure;
                }
                r.present = true;
            } else {
                r.departure_ms = Some(ts);
                r.present = false;
            }
            if !r.methods.contains(&method) {
                r.methods.push(method);
            }
            r.kiosk = kiosk;
        }
        Ok(out)
    }

    /// Every alert, active first, then silenced, then resolved; newest first within each.
    pub fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT alert_id, kiosk, state, person, temperature_c, raised_ms, changed_by FROM alerts
             ORDER BY CASE state WHEN 'active' THEN 0 WHEN 'silenced' THEN 1 ELSE 2 END, raised_ms DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AlertRow {
                alert_id: r.get(0)?,
                kiosk: r.get(1)?,
                state: r.get(2)?,
                person: r.get(3)?,
                temperature_c: r.get::<_, f64>(4)? as f32,
                raised_ms: r.get(5)?,
                changed_by: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn alert_kiosk(&self, alert_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()?
            .query_row("SELECT kiosk FROM alerts WHERE alert_id = ?1", params![alert_id], |r| r.get(0))
            .optional()?)
    }

    pub fn visitors(&self, day: &str) -> Result<Vec<VisitorRow>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare("SELECT ts_ms, kiosk, temperature_c, status FROM visitors WHERE day = ?1 ORDER BY ts_ms DESC")?;
        let rows = stmt.query_map(params![day], |r| {
            Ok(VisitorRow {
                ts_ms: r.get(0)?,
                kiosk: r.get(1)?,
                temperature_c: r.get::<_, Option<f64>>(2)?.map(|t| t as f32),
                status: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The day's air samples of every kiosk, oldest first.
    pub fn air_day(&self, day: &str) -> Result<Vec<AirTelemetry>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT json FROM air WHERE day = ?1 ORDER BY ts_ms")?;
        let rows = stmt.query_map(params![day], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            out.push(serde_json::from_str(&json?)?);
        }
        Ok(out)
    }

    /// The latest air sample of any kiosk, whatever its day.
    pub fn air_latest(&self) -> Result<Option<AirTelemetry>, StoreError> {
        let json: Option<String> =
            self.lock()?.query_row("SELECT json FROM air ORDER BY ts_ms DESC LIMIT 1", [], |r| r.get(0)).optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    pub fn air_events(&self, day: &str) -> Result<Vec<AirEvent>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT json FROM air_events WHERE day = ?1 ORDER BY ts_ms")?;
        let rows = stmt.query_map(params![day], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            out.push(serde_json::from_str(&json?)?);
        }
        Ok(out)
    }

    pub fn kiosks(&self) -> Result<Vec<KioskRow>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT kiosk, json, seen_ms FROM kiosks ORDER BY kiosk")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (kiosk, json, seen_ms) = row?;
            out.push(KioskRow { kiosk, status: serde_json::from_str(&json)?, seen_ms });
        }
        Ok(out)
    }

    /// Every kiosk's latest roster, by kiosk id.
    pub fn rosters(&self) -> Result<Vec<Roster>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT json FROM rosters ORDER BY kiosk")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            out.push(serde_json::from_str(&json?)?);
        }
        Ok(out)
    }

    /// The kiosk a person was last seen at (any day still kept).
    pub fn last_kiosk_of(&self, person: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()?
            .query_row(
                "SELECT kiosk FROM attendance WHERE person = ?1 ORDER BY ts_ms DESC LIMIT 1",
                params![person],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::center::testing::attendance;
    use dolbom_contract::AttendanceKind::{Arrival, Departure};

    fn store(dir: &Path) -> Store {
        Store::open(&dir.join("console.db"), TimeZone::get("Asia/Seoul").expect("tz")).expect("open")
    }

    #[test]
    fn a_redelivered_event_changes_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let e = attendance("c", "door-1", "minji", "2026-12-03T08:40:00+09:00", Arrival, Some(36.4));
        assert!(s.attendance(&e).expect("first"));
        assert!(!s.attendance(&e).expect("again"), "the same event id is no new event");
        let mut teacher = attendance("c", "door-1", "kim", "2026-12-03T08:30:00+09:00", Arrival, None);
        teacher.person.role = dolbom_contract::Role::Staff;
        assert!(s.attendance(&teacher).expect("a teacher"));
        let later = attendance("c", "door-1", "minji", "2026-12-03T08:45:00+09:00", Arrival, Some(37.0));
        assert!(s.attendance(&later).expect("second arrival"));
        let days = s.records("2026-12-03", "2026-12-03").expect("records");
        assert_eq!(days.len(), 1, "one row per child per day: {days:?}");
        assert_eq!(days[0].temperature_c, Some(36.4), "the first arrival's temperature");
        assert!(days[0].present);
    }

    #[test]
    fn a_remeasure_shows_no_value_until_it_settles() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let mut e = attendance("c", "door-1", "minji", "2026-12-03T08:40:00+09:00", Arrival, Some(37.4));
        e.temperature_status = TemperatureStatus::Remeasure;
        s.attendance(&e).expect("arrival");
        let day = s.records("2026-12-03", "2026-12-03").expect("records");
        assert_eq!((day[0].temperature_c, day[0].remeasure), (None, true));
        let settled = TemperatureEvent {
            schema: dolbom_contract::TEMPERATURE_SCHEMA.into(),
            event_id: dolbom_contract::new_event_id(),
            center: "c".into(),
            kiosk: "door-1".into(),
            ts: "2026-12-03T08:46:00+09:00".into(),
            kind: TemperatureKind::Settled,
            person: e.person.clone(),
            arrival_event_id: e.event_id,
            temperature_c: Some(36.8),
            temperature_status: TemperatureStatus::Normal,
            temperature_site: None,
            method: None,
            by: None,
        };
        assert!(s.temperature(&settled).expect("settled"));
        assert!(!s.temperature(&settled).expect("again"));
        let day = s.records("2026-12-03", "2026-12-03").expect("records");
        assert_eq!((day[0].temperature_c, day[0].remeasure), (Some(36.8), false));
    }

    #[test]
    fn days_are_the_centers_days() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        // 23:30 UTC on the 2nd is 08:30 on the 3rd in Seoul; 14:59 UTC on the 3rd is 23:59 there.
        s.attendance(&attendance("c", "k", "minji", "2026-12-02T23:30:00Z", Arrival, Some(36.5))).expect("a");
        s.attendance(&attendance("c", "k", "minji", "2026-12-03T14:59:00Z", Departure, None)).expect("d");
        // 15:00 UTC on the 3rd is midnight: the 4th.
        s.attendance(&attendance("c", "k", "minji", "2026-12-03T15:00:00Z", Arrival, None)).expect("next");
        let third = s.records("2026-12-03", "2026-12-03").expect("records");
        assert_eq!(third.len(), 1);
        assert!(third[0].arrival_ms.is_some() && third[0].departure_ms.is_some());
        assert!(!third[0].present, "left");
        assert_eq!(third[0].methods, vec!["face", "staff"]);
        let fourth = s.records("2026-12-04", "2026-12-04").expect("records");
        assert_eq!((fourth.len(), fourth[0].present), (1, true));
        assert!(s.records("2026-12-02", "2026-12-02").expect("records").is_empty(), "nothing on the UTC day");
    }

    #[test]
    fn pruning_forgets_days_past_keep_days_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        s.attendance(&attendance("c", "k", "old", "2026-10-01T09:00:00+09:00", Arrival, None)).expect("old");
        s.attendance(&attendance("c", "k", "kept", "2026-11-20T09:00:00+09:00", Arrival, None)).expect("kept");
        let today = Date::new(2026, 12, 3).expect("date");
        assert_eq!(s.prune(today, 30).expect("prune"), 1);
        let left = s.records("2026-01-01", "2026-12-31").expect("records");
        assert_eq!(left.iter().map(|r| r.person.as_str()).collect::<Vec<_>>(), vec!["kept"]);
        assert_eq!(s.prune(today, 30).expect("again"), 0);
    }

    #[test]
    fn an_older_alert_state_does_not_undo_a_newer_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let mut a = AlertState {
            schema: dolbom_contract::ALERT_SCHEMA.into(),
            alert_id: "a1".into(),
            center: "c".into(),
            kiosk: "door-1".into(),
            state: dolbom_contract::AlertStateKind::Silenced,
            person: None,
            temperature_c: 38.1,
            message: String::new(),
            raised_at: "2026-12-03T09:00:00+09:00".into(),
            silenced_by: Some("kim".into()),
            silenced_at: None,
            resolved_by: None,
            resolved_at: None,
            updated_at: "2026-12-03T09:05:00+09:00".into(),
        };
        s.alert(&a).expect("silenced");
        a.state = dolbom_contract::AlertStateKind::Active;
        a.updated_at = "2026-12-03T09:00:00+09:00".into();
        s.alert(&a).expect("stale active");
        assert_eq!(s.alerts().expect("alerts")[0].state, "silenced");
    }
}

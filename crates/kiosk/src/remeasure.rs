//! Open re-measures. An arrival whose reading was `remeasure` (a cold face, or a reading near
//! the threshold) stays open in the kiosk database until a later measured reading of the same
//! person settles it — a sighting at the door (even one that makes no attendance event), or a
//! value staff take with a thermometer (`cmd/thermometer`, `dolbom alerts thermometer`) — or
//! until `fever.settle_within_mins` passes. Either way one `event/temperature` is queued in the
//! same transaction that closes it: a restart neither forgets an open re-measure nor settles it
//! twice, and the relay holds the arrival's text until this event says what to write.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use tracing::info;
use uuid::Uuid;

use dolbom_contract::{
    self as contract, CommandResult, PersonRef, Role, SettleMethod, TemperatureEvent, TemperatureKind, TemperatureSite,
    TemperatureStatus, THERMOMETER_C,
};

use crate::alerts::{Action, AlertContext, NewAlert};
use crate::outbox::{NewMessage, Tally};
use crate::store::StoreError;

/// A re-measure still waiting for a value.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRemeasure {
    pub arrival_event_id: Uuid,
    pub person: PersonRef,
    pub day: String,
    pub opened_ms: i64,
}

/// The reading that settles one.
#[derive(Debug, Clone, PartialEq)]
pub struct Settling {
    pub celsius: f32,
    /// Normal or elevated: a `remeasure` settles nothing.
    pub status: TemperatureStatus,
    pub site: Option<TemperatureSite>,
    pub method: SettleMethod,
    /// The staff id, for a thermometer value.
    pub by: Option<String>,
    pub at_ms: i64,
}

fn role_name(role: Role) -> String {
    serde_json::to_value(role).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Opens a re-measure for an arrival, inside the caller's transaction.
pub fn open(
    conn: &Connection,
    arrival_event_id: Uuid,
    person: &PersonRef,
    day: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO remeasures (arrival_event_id, day, person, role, opened_ms, state)
         VALUES (?1, ?2, ?3, ?4, ?5, 'open') ON CONFLICT (arrival_event_id) DO NOTHING",
        params![arrival_event_id.to_string(), day, person.id, role_name(person.role), at_ms],
    )?;
    Ok(())
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_open((id, day, person, role, opened_ms): (String, String, String, String, i64)) -> Option<OpenRemeasure> {
    let role = serde_json::from_value(serde_json::Value::String(role)).ok()?;
    Some(OpenRemeasure { arrival_event_id: id.parse().ok()?, person: PersonRef { id: person, role }, day, opened_ms })
}

/// The person's open re-measure on `day`, if any (the latest, should there be several).
pub fn find_open(conn: &Connection, person: &str, day: &str) -> Result<Option<OpenRemeasure>, StoreError> {
    let row = conn
        .query_row(
            "SELECT arrival_event_id, day, person, role, opened_ms FROM remeasures
             WHERE person = ?1 AND day = ?2 AND state = 'open' ORDER BY opened_ms DESC LIMIT 1",
            params![person, day],
            from_row,
        )
        .optional()?;
    Ok(row.and_then(to_open))
}

/// Every open re-measure, oldest first (for `dolbom alerts list` and the tests).
pub fn list_open(conn: &Connection) -> Result<Vec<OpenRemeasure>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT arrival_event_id, day, person, role, opened_ms FROM remeasures WHERE state = 'open' ORDER BY opened_ms",
    )?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.filter_map(|r| r.ok()).filter_map(to_open).collect())
}

/// Closes `open` as settled by `s`, inside the caller's transaction; returns the event's message
/// for the caller to queue with the rest of its transaction. An elevated value's fever alert is
/// the caller's (the door raises it for any elevated reading; [`apply_thermometer`] for staff).
pub fn settle(
    conn: &Connection,
    ctx: &AlertContext,
    open: &OpenRemeasure,
    s: &Settling,
) -> Result<Option<(TemperatureEvent, NewMessage)>, StoreError> {
    let closed = conn.execute(
        "UPDATE remeasures SET state = 'settled', closed_ms = ?2 WHERE arrival_event_id = ?1 AND state = 'open'",
        params![open.arrival_event_id.to_string(), s.at_ms],
    )?;
    if closed != 1 {
        return Ok(None);
    }
    let event = TemperatureEvent {
        schema: contract::TEMPERATURE_SCHEMA.into(),
        event_id: contract::new_event_id(),
        center: ctx.site.center.clone(),
        kiosk: ctx.site.kiosk.clone(),
        ts: ctx.site.ts(s.at_ms),
        kind: TemperatureKind::Settled,
        person: open.person.clone(),
        arrival_event_id: open.arrival_event_id,
        temperature_c: Some(s.celsius),
        temperature_status: s.status,
        temperature_site: s.site,
        method: Some(s.method),
        by: s.by.clone(),
    };
    info!(event_id = %event.event_id, arrival = %open.arrival_event_id, person = %open.person.id,
          temperature = s.celsius, status = ?s.status, method = ?s.method, "re-measure settled");
    let msg = ctx.event_message(ctx.site.topics.temperature(), "temperature", &event, s.at_ms);
    Ok(Some((event, msg)))
}

/// Closes every re-measure open longer than `fever.settle_within_mins` as unsettled, queueing
/// one `event/temperature` each, in one transaction. Returns the events.
pub fn expire(
    conn: &mut Connection,
    ctx: &AlertContext,
    now_ms: i64,
    tally: &mut Tally,
) -> Result<Vec<TemperatureEvent>, StoreError> {
    let tx = conn.transaction()?;
    let due: Vec<OpenRemeasure> = {
        let mut stmt = tx.prepare(
            "SELECT arrival_event_id, day, person, role, opened_ms FROM remeasures
             WHERE state = 'open' AND opened_ms <= ?1 ORDER BY opened_ms",
        )?;
        let rows = stmt.query_map(params![now_ms - ctx.settle_within_ms], from_row)?;
        rows.filter_map(|r| r.ok()).filter_map(to_open).collect()
    };
    let mut events = Vec::new();
    for open in due {
        if let Some(event) = close_unsettled(&tx, ctx, &open, now_ms, tally)? {
            events.push(event);
        }
    }
    tx.commit()?;
    Ok(events)
}

/// Closes one re-measure as unsettled with its event, only if it is still open: a staff value
/// (`dolbom alerts thermometer` writes through its own connection) may have settled it since it
/// was listed, and then there is no second event.
fn close_unsettled(
    tx: &Connection,
    ctx: &AlertContext,
    open: &OpenRemeasure,
    now_ms: i64,
    tally: &mut Tally,
) -> Result<Option<TemperatureEvent>, StoreError> {
    let closed = tx.execute(
        "UPDATE remeasures SET state = 'unsettled', closed_ms = ?2 WHERE arrival_event_id = ?1 AND state = 'open'",
        params![open.arrival_event_id.to_string(), now_ms],
    )?;
    if closed == 0 {
        return Ok(None);
    }
    let event = TemperatureEvent {
        schema: contract::TEMPERATURE_SCHEMA.into(),
        event_id: contract::new_event_id(),
        center: ctx.site.center.clone(),
        kiosk: ctx.site.kiosk.clone(),
        ts: ctx.site.ts(now_ms),
        kind: TemperatureKind::Unsettled,
        person: open.person.clone(),
        arrival_event_id: open.arrival_event_id,
        temperature_c: None,
        temperature_status: TemperatureStatus::Remeasure,
        temperature_site: None,
        method: None,
        by: None,
    };
    info!(event_id = %event.event_id, arrival = %open.arrival_event_id, person = %open.person.id,
          "re-measure not settled in time: a teacher checks");
    let msg = ctx.event_message(ctx.site.topics.temperature(), "temperature", &event, now_ms);
    tally.enqueue(tx, &msg, ctx.capacity, now_ms)?;
    Ok(Some(event))
}

/// `cmd/thermometer`: `{"person", "celsius", "by", "request_id"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermometerCommand {
    pub person: String,
    pub celsius: f32,
    pub by: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

impl ThermometerCommand {
    /// Reads a command body; the error is the result's message.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice::<Self>(payload) {
            Ok(c)
                if c.person.len() <= 64 && c.by.len() <= 64 && c.request_id.as_ref().is_none_or(|r| r.len() <= 128) =>
            {
                Ok(c)
            }
            Ok(_) => Err("person, by or request_id is too long / person, by, request_id 중 너무 긴 값이 있습니다".into()),
            Err(e) => Err(format!(
                "not a command: {e}; expected {{\"person\", \"celsius\", \"by\", \"request_id\"}} / 명령 형식이 아닙니다"
            )),
        }
    }

    fn content(&self) -> String {
        serde_json::json!(["thermometer", self.person, self.celsius, self.by]).to_string()
    }
}

/// Why a thermometer value is not one, in Korean and English; None when it is.
pub fn check_celsius(celsius: f32) -> Option<String> {
    (!celsius.is_finite() || !THERMOMETER_C.contains(&celsius)).then(|| {
        format!(
            "celsius {celsius} is outside {:.1}-{:.1} °C: not a body temperature (a typo or the wrong instrument?) / \
             체온 {celsius}℃는 {:.1}~{:.1}℃ 범위 밖입니다 (입력 오류인지 확인해 주세요)",
            THERMOMETER_C.start(),
            THERMOMETER_C.end(),
            THERMOMETER_C.start(),
            THERMOMETER_C.end()
        )
    })
}

/// Applies a staff thermometer value in one transaction: the person's open re-measure of today
/// settled (and a fever alert raised if the value is elevated), and the result, queued together.
/// Problems with the command itself are results, not `Err`. A repeated `request_id` gets the
/// first answer and changes nothing; reused for another value it is refused as a conflict.
pub fn apply_thermometer(
    ctx: &AlertContext,
    conn: &mut Connection,
    cmd: &ThermometerCommand,
    now_ms: i64,
    tally: &mut Tally,
) -> Result<CommandResult, StoreError> {
    let tx = conn.transaction()?;
    let content = cmd.content();
    let mut result = CommandResult {
        schema: contract::COMMAND_RESULT_SCHEMA.into(),
        request_id: cmd.request_id.clone(),
        command: Action::Thermometer.name().into(),
        ok: false,
        alert_id: None,
        state: None,
        error: None,
        ts: ctx.site.ts(now_ms),
        person: None,
        message: None,
    };
    if let Some(id) = &cmd.request_id {
        let seen: Option<(String, Option<String>)> = tx
            .query_row("SELECT result, content FROM commands WHERE request_id = ?1", params![id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((first, stored)) = seen {
            let repeat = match serde_json::from_str::<CommandResult>(&first) {
                Ok(first) if stored.as_deref() == Some(content.as_str()) => first,
                _ => CommandResult {
                    error: Some(format!(
                        "conflict: request_id `{id}` was already used for a different command; \
                         nothing was done, send this one with a new request_id / \
                         이미 다른 명령에 쓰인 request_id입니다: 아무것도 하지 않았으니 새 request_id로 보내세요"
                    )),
                    ..result
                },
            };
            tally.enqueue(&tx, &ctx.result_message(&repeat, now_ms), ctx.capacity, now_ms)?;
            tx.commit()?;
            return Ok(repeat);
        }
    }
    let day = crate::attendance::day_of(
        Timestamp::from_millisecond(now_ms).unwrap_or_else(|_| Timestamp::now()),
        &ctx.site.tz,
    );
    if let Some(why) = check_celsius(cmd.celsius) {
        result.error = Some(why);
    } else if !ctx.staff.iter().any(|s| s == &cmd.by) {
        result.error = Some(format!(
            "`{}` is not a staff id allowed to enter thermometer values (fever.staff) / 체온을 입력할 수 있는 교직원이 아닙니다",
            cmd.by
        ));
    } else {
        match find_open(&tx, &cmd.person, &day)? {
            None => {
                result.error = Some(format!(
                    "no open re-measure for `{}` today: nothing to settle / 오늘 재측정을 기다리는 기록이 없습니다",
                    cmd.person
                ))
            }
            Some(open) => {
                let celsius = (cmd.celsius * 10.0).round() / 10.0;
                let elevated = celsius >= ctx.threshold_c;
                let s = Settling {
                    celsius,
                    status: if elevated { TemperatureStatus::Elevated } else { TemperatureStatus::Normal },
                    site: None,
                    method: SettleMethod::Thermometer,
                    by: Some(cmd.by.clone()),
                    at_ms: now_ms,
                };
                if let Some((_, msg)) = settle(&tx, ctx, &open, &s)? {
                    tally.enqueue(&tx, &msg, ctx.capacity, now_ms)?;
                    result.ok = true;
                }
                if elevated {
                    // As a first elevated reading at the door would: one alert per person per visit.
                    let new = NewAlert {
                        subject: open.person.id.clone(),
                        day: day.clone(),
                        person: Some(open.person.clone()),
                        temperature_c: celsius,
                        at_ms: now_ms,
                    };
                    if let Some(alert) = ctx.raise(&tx, new, now_ms, tally)? {
                        let msg = ctx.fever_message(&alert, Some(open.person.clone()), 0, celsius, now_ms, true);
                        tally.enqueue(&tx, &msg, ctx.capacity, now_ms)?;
                        result.alert_id = Some(alert.alert_id);
                        result.state = Some(alert.state);
                    }
                }
            }
        }
    }
    ctx.answer(tx, cmd.request_id.as_deref(), result, &content, now_ms, tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    // A kiosk with staff "kim", a 37.5 °C threshold and re-measures settled within 30 minutes.
    use crate::alerts::tests::setup;
    use crate::store::Store;

    const T0: i64 = 1_764_633_600_000; // 2025-12-02 09:00 KST
    const DAY: &str = "2025-12-02";

    fn minji() -> PersonRef {
        PersonRef { id: "minji".into(), role: Role::Child }
    }

    /// Topics of everything queued, in order.
    fn queued(conn: &Connection) -> Vec<(String, serde_json::Value)> {
        let mut stmt = conn.prepare("SELECT topic, payload FROM outbox ORDER BY seq").expect("prepare");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .map(|(t, p)| (t, serde_json::from_slice(&p).expect("json")));
        rows.collect()
    }

    fn cmd(celsius: f32, by: &str, request_id: &str) -> ThermometerCommand {
        ThermometerCommand { person: "minji".into(), celsius, by: by.into(), request_id: Some(request_id.into()) }
    }

    /// An open re-measure survives reopening the database, is settled once, and a second value
    /// finds nothing open.
    #[test]
    fn an_open_remeasure_survives_a_restart_and_settles_once() {
        let (dir, store, ctx) = setup();
        let arrival = contract::new_event_id();
        open(&store.lock().expect("lock"), arrival, &minji(), DAY, T0).expect("open");
        drop(store);
        let store = Store::open(&dir.path().join("k.db")).expect("reopened");
        let conn = store.lock().expect("lock");
        let found = find_open(&conn, "minji", DAY).expect("find").expect("still open after a restart");
        assert_eq!((found.arrival_event_id, found.person.clone(), found.opened_ms), (arrival, minji(), T0));
        assert!(find_open(&conn, "minji", "2025-12-03").expect("find").is_none(), "another day is another visit");
        let s = Settling {
            celsius: 36.6,
            status: TemperatureStatus::Normal,
            site: Some(TemperatureSite::Canthus),
            method: SettleMethod::Kiosk,
            by: None,
            at_ms: T0 + 60_000,
        };
        let (event, msg) = settle(&conn, &ctx, &found, &s).expect("settle").expect("settled");
        assert_eq!(
            (event.kind, event.arrival_event_id, event.temperature_c),
            (TemperatureKind::Settled, arrival, Some(36.6))
        );
        assert!(msg.topic.ends_with("/event/temperature"));
        assert!(settle(&conn, &ctx, &found, &s).expect("settle").is_none(), "settled once");
        assert!(find_open(&conn, "minji", DAY).expect("find").is_none());
    }

    /// Past `settle_within_mins` an open re-measure closes unsettled, with one event, once.
    #[test]
    fn an_unsettled_remeasure_expires_once_after_the_deadline() {
        let (_d, store, ctx) = setup();
        let mut conn = store.lock().expect("lock");
        let arrival = contract::new_event_id();
        open(&conn, arrival, &minji(), DAY, T0).expect("open");
        let mut tally = Tally::default();
        assert!(expire(&mut conn, &ctx, T0 + 29 * 60_000, &mut tally).expect("expire").is_empty(), "not yet");
        let gone = expire(&mut conn, &ctx, T0 + 30 * 60_000, &mut tally).expect("expire");
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].kind, gone[0].arrival_event_id, gone[0].temperature_c),
            (TemperatureKind::Unsettled, arrival, None)
        );
        assert!(expire(&mut conn, &ctx, T0 + 31 * 60_000, &mut tally).expect("expire").is_empty(), "once");
        assert!(list_open(&conn).expect("list").is_empty());
        let q = queued(&conn);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].1["kind"], "unsettled");
        assert_eq!(q[0].1["temperature_status"], "remeasure");
    }

    /// A re-measure listed as due but settled since (a staff value through another connection)
    /// is not closed again: no second event, and it stays settled.
    #[test]
    fn a_remeasure_settled_after_it_was_listed_is_not_expired() {
        let (_d, store, ctx) = setup();
        let conn = store.lock().expect("lock");
        let arrival = contract::new_event_id();
        open(&conn, arrival, &minji(), DAY, T0).expect("open");
        let listed = find_open(&conn, "minji", DAY).expect("find").expect("open");
        let s = Settling {
            celsius: 36.6,
            status: TemperatureStatus::Normal,
            site: None,
            method: SettleMethod::Thermometer,
            by: Some("kim".into()),
            at_ms: T0 + 60_000,
        };
        settle(&conn, &ctx, &listed, &s).expect("settle").expect("settled");
        let mut tally = Tally::default();
        let closed = close_unsettled(&conn, &ctx, &listed, T0 + 31 * 60_000, &mut tally).expect("close");
        assert!(closed.is_none(), "already settled: {closed:?}");
        let state: String = conn
            .query_row("SELECT state FROM remeasures WHERE arrival_event_id = ?1", [arrival.to_string()], |r| r.get(0))
            .expect("state");
        assert_eq!(state, "settled");
        // settle() hands its event to the caller to queue; nothing unsettled was queued here.
        assert!(queued(&conn).is_empty(), "{:?}", queued(&conn));
    }

    /// Staff values: out of range, an unknown staff id and a person with nothing open are refused
    /// and change nothing; an elevated value settles and raises the alert; a repeat is answered
    /// the same; a reused request_id for another value is a conflict.
    #[test]
    fn thermometer_values_are_checked_settle_and_raise_an_elevated_alert() {
        let (_d, store, ctx) = setup();
        let mut conn = store.lock().expect("lock");
        let now = Timestamp::now().as_millisecond();
        let day = crate::attendance::day_of(Timestamp::now(), &ctx.site.tz);
        let mut t = Tally::default();
        let r = apply_thermometer(&ctx, &mut conn, &cmd(36.6, "kim", "r0"), now, &mut t).expect("apply");
        assert!(!r.ok && r.error.as_deref().unwrap_or("").contains("no open re-measure"), "{r:?}");
        let arrival = contract::new_event_id();
        open(&conn, arrival, &minji(), &day, now - 60_000).expect("open");
        for (c, why) in [(44.0, "outside"), (33.9, "outside"), (f32::NAN, "outside")] {
            let r = apply_thermometer(&ctx, &mut conn, &cmd(c, "kim", &format!("bad{c}")), now, &mut t).expect("apply");
            assert!(!r.ok && r.error.as_deref().unwrap_or("").contains(why), "{c}: {r:?}");
            assert!(r.error.as_deref().unwrap_or("").contains("범위"), "bilingual: {r:?}");
        }
        let r = apply_thermometer(&ctx, &mut conn, &cmd(38.0, "mallory", "r1"), now, &mut t).expect("apply");
        assert!(!r.ok && r.error.as_deref().unwrap_or("").contains("not a staff id"), "{r:?}");
        assert!(find_open(&conn, "minji", &day).expect("find").is_some(), "refusals change nothing");

        let r = apply_thermometer(&ctx, &mut conn, &cmd(38.04, "kim", "r2"), now, &mut t).expect("apply");
        assert!(r.ok, "{r:?}");
        assert!(r.alert_id.is_some(), "an elevated value raises the alert: {r:?}");
        let again = apply_thermometer(&ctx, &mut conn, &cmd(38.04, "kim", "r2"), now + 1, &mut t).expect("apply");
        assert_eq!(again, r, "a repeat gets the first answer");
        let other = apply_thermometer(&ctx, &mut conn, &cmd(36.5, "kim", "r2"), now + 2, &mut t).expect("apply");
        assert!(!other.ok && other.error.as_deref().unwrap_or("").starts_with("conflict"), "{other:?}");
        assert!(other.error.as_deref().unwrap_or("").contains("새 request_id"), "bilingual: {other:?}");
        let long = format!(r#"{{"person":"{}","celsius":36.5,"by":"kim"}}"#, "p".repeat(65));
        let why = ThermometerCommand::parse(long.as_bytes()).expect_err("too long");
        assert!(why.contains("too long") && why.contains("너무 긴"), "{why}");
        let why = ThermometerCommand::parse(b"{}").expect_err("not a command");
        assert!(why.contains("not a command") && why.contains("명령 형식"), "{why}");
        assert!(find_open(&conn, "minji", &day).expect("find").is_none());

        let q = queued(&conn);
        let temps: Vec<&serde_json::Value> =
            q.iter().filter(|(t, _)| t.ends_with("/event/temperature")).map(|(_, p)| p).collect();
        assert_eq!(temps.len(), 1, "one settle event: {temps:?}");
        assert_eq!(temps[0]["kind"], "settled");
        assert_eq!(temps[0]["method"], "thermometer");
        assert_eq!(temps[0]["by"], "kim");
        assert_eq!(temps[0]["temperature_status"], "elevated");
        assert_eq!(temps[0]["temperature_c"], serde_json::json!(38.0));
        assert_eq!(temps[0]["arrival_event_id"], arrival.to_string());
        let fevers: Vec<&serde_json::Value> =
            q.iter().filter(|(t, _)| t.ends_with("/event/fever")).map(|(_, p)| p).collect();
        assert_eq!(fevers.len(), 1);
        assert_eq!(
            fevers[0]["message"],
            contract::FEVER_MESSAGE_THERMOMETER,
            "a thermometer value needs no confirming"
        );
        assert_eq!(q.iter().filter(|(t, _)| t.contains("/alert/")).count(), 1);
    }
}

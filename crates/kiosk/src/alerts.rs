//! Fever alerts and the staff commands that silence and resolve them.
//!
//! An alert is raised once per person per visit (calendar day): a silenced or resolved alert
//! does not fire again for the same person that day, and a second elevated reading while one is
//! active adds nothing. Its state (`active` → `silenced` → `resolved`, with who and when) is kept
//! in the kiosk database and published retained on `alert/{alert_id}`.
//!
//! Commands arrive on `cmd/silence` and `cmd/resolve` as `{"alert_id", "by", "request_id"}` and
//! from `dolbom alerts`. Only configured staff ids may act. Every command gets a result on
//! `cmd/result`; malformed, unknown and unauthorised commands change nothing; a repeated
//! `request_id` gets the first answer again and changes nothing, unless it comes with another
//! command (action, alert or staff id): that is refused as a conflict, so nobody is told "done"
//! for something that was never done.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use tracing::warn;

use dolbom_contract::{self as contract, AlertState, AlertStateKind, CommandResult, PersonRef};

use crate::outbox::{NewMessage, Priority, Tally};
use crate::site::Site;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Silence,
    Resolve,
    /// A staff thermometer value (crate::remeasure), not an alert action.
    Thermometer,
    /// The staff desk's commands (crate::staff), not alert actions either.
    Checkin,
    Consent,
    Enroll,
    Erase,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Silence => "silence",
            Action::Resolve => "resolve",
            Action::Thermometer => "thermometer",
            Action::Checkin => "checkin",
            Action::Consent => "consent",
            Action::Enroll => "enroll",
            Action::Erase => "erase",
        }
    }
}

/// Who this kiosk is and who may act on its alerts; shared by the raise and command paths.
#[derive(Debug, Clone)]
pub struct AlertContext {
    pub site: Site,
    pub staff: Vec<String>,
    pub capacity: u64,
    /// `fever.threshold_c`: a thermometer value at or above it is elevated.
    pub threshold_c: f32,
    /// `fever.settle_within_mins` in ms: how long a re-measure stays open.
    pub settle_within_ms: i64,
    /// How long an event stays worth delivering (MQTT v5 message expiry).
    pub expiry_ms: i64,
}

impl AlertContext {
    /// The `event/fever` message for a just-raised alert; `track_id` 0 when no track read it
    /// (a staff thermometer value: `thermometer`, and its message is
    /// [`contract::FEVER_MESSAGE_THERMOMETER`], since it needs no confirming with a thermometer).
    pub fn fever_message(
        &self,
        alert: &AlertState,
        person: Option<PersonRef>,
        track_id: u64,
        temperature_c: f32,
        at_ms: i64,
        thermometer: bool,
    ) -> NewMessage {
        let message = if thermometer { contract::FEVER_MESSAGE_THERMOMETER } else { contract::FEVER_MESSAGE };
        let event = contract::FeverEvent {
            schema: contract::FEVER_SCHEMA.into(),
            event_id: contract::new_event_id(),
            center: self.site.center.clone(),
            kiosk: self.site.kiosk.clone(),
            ts: self.site.ts(at_ms),
            alert_id: alert.alert_id.clone(),
            person,
            track_id,
            temperature_c,
            threshold_c: self.threshold_c,
            message: message.into(),
        };
        warn!(alert_id = %alert.alert_id, event_id = %event.event_id, temperature = temperature_c, "fever alert: {message}");
        self.event_message(self.site.topics.fever(), "fever", &event, at_ms)
    }

    /// A durable event message, worth delivering for `expiry_ms` after its capture.
    pub fn event_message(&self, topic: String, kind: &str, payload: &impl serde::Serialize, at_ms: i64) -> NewMessage {
        NewMessage {
            topic,
            // Serialising these plain structs cannot fail; an empty payload would be caught by the schema tests.
            payload: serde_json::to_vec(payload).unwrap_or_default(),
            kind: kind.into(),
            priority: Priority::Attendance,
            retain: false,
            created_ms: at_ms,
            expires_ms: Some(at_ms + self.expiry_ms),
        }
    }

    fn state_message(&self, state: &AlertState, now_ms: i64) -> NewMessage {
        NewMessage {
            topic: self.site.topics.alert(&state.alert_id),
            payload: serde_json::to_vec(state).unwrap_or_default(),
            kind: "alert".into(),
            priority: Priority::Attendance,
            retain: true,
            created_ms: now_ms,
            expires_ms: None,
        }
    }

    /// Raises an alert inside the caller's transaction, unless this subject already had one
    /// this visit. Returns the alert state that was queued.
    pub fn raise(
        &self,
        conn: &Connection,
        new: NewAlert,
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<Option<AlertState>, StoreError> {
        let NewAlert { subject, day, person, temperature_c, at_ms } = new;
        let existing: Option<String> = conn
            .query_row("SELECT alert_id FROM alerts WHERE subject = ?1 AND day = ?2", params![subject, day], |r| {
                r.get(0)
            })
            .optional()?;
        if existing.is_some() {
            return Ok(None);
        }
        let alert_id = contract::new_event_id().to_string();
        let state = AlertState {
            schema: contract::ALERT_SCHEMA.into(),
            alert_id: alert_id.clone(),
            center: self.site.center.clone(),
            kiosk: self.site.kiosk.clone(),
            state: AlertStateKind::Active,
            person,
            temperature_c,
            message: contract::FEVER_MESSAGE.into(),
            raised_at: self.site.ts(at_ms),
            silenced_by: None,
            silenced_at: None,
            resolved_by: None,
            resolved_at: None,
            updated_at: self.site.ts(now_ms),
        };
        conn.execute(
            "INSERT INTO alerts (alert_id, subject, day, state, payload, created_ms) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
            params![alert_id, subject, day, serde_json::to_string(&state).unwrap_or_default(), now_ms],
        )?;
        tally.enqueue(conn, &self.state_message(&state, now_ms), self.capacity, now_ms)?;
        Ok(Some(state))
    }

    /// Applies a staff command in one transaction: the alert's new state and the result are
    /// queued together. Errors in the command itself are results, not `Err`.
    pub fn apply(
        &self,
        conn: &mut Connection,
        action: Action,
        cmd: &Command,
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<CommandResult, StoreError> {
        let tx = conn.transaction()?;
        let content = cmd.content(action);
        if let Some(id) = &cmd.request_id {
            let seen: Option<(String, Option<String>)> = tx
                .query_row("SELECT result, content FROM commands WHERE request_id = ?1", params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((first, stored)) =
                seen.and_then(|(r, c)| serde_json::from_str::<CommandResult>(&r).ok().map(|r| (r, c)))
            {
                let same = match stored {
                    Some(stored) => stored == content,
                    // Recorded before contents were kept: judge by what the result names.
                    None => first.command == action.name() && first.alert_id.as_deref() == Some(&cmd.alert_id),
                };
                // A repeat gets the same answer again; a reuse for something else is refused.
                // Neither changes anything, and the request_id stays bound to its first command.
                let result = if same { first } else { self.conflict(action, cmd, id, now_ms) };
                let msg = self.result_message(&result, now_ms);
                tally.enqueue(&tx, &msg, self.capacity, now_ms)?;
                tx.commit()?;
                return Ok(result);
            }
        }
        let mut result = CommandResult {
            schema: contract::COMMAND_RESULT_SCHEMA.into(),
            request_id: cmd.request_id.clone(),
            command: action.name().into(),
            ok: false,
            alert_id: Some(cmd.alert_id.clone()),
            state: None,
            error: None,
            ts: self.site.ts(now_ms),
            person: None,
            message: None,
        };
        let current: Option<String> = tx
            .query_row("SELECT payload FROM alerts WHERE alert_id = ?1", params![cmd.alert_id], |r| r.get(0))
            .optional()?;
        match current.and_then(|p| serde_json::from_str::<AlertState>(&p).ok()) {
            None => {
                result.error =
                    Some(format!("no alert `{}` on this kiosk / 이 키오스크에 그런 알림이 없습니다", cmd.alert_id))
            }
            Some(state) if !self.staff.iter().any(|s| s == &cmd.by) => {
                result.state = Some(state.state);
                result.error = Some(format!(
                    "`{}` is not a staff id allowed to {} alerts (fever.staff) / 알림을 처리할 수 있는 교직원이 아닙니다",
                    cmd.by,
                    action.name()
                ));
            }
            Some(mut state) => {
                let allowed = matches!(
                    (action, state.state),
                    (Action::Silence, AlertStateKind::Active)
                        | (Action::Resolve, AlertStateKind::Active | AlertStateKind::Silenced)
                );
                if allowed {
                    let when = Some(self.site.ts(now_ms));
                    match action {
                        Action::Silence => {
                            state.state = AlertStateKind::Silenced;
                            state.silenced_by = Some(cmd.by.clone());
                            state.silenced_at = when;
                        }
                        Action::Resolve => {
                            state.state = AlertStateKind::Resolved;
                            state.resolved_by = Some(cmd.by.clone());
                            state.resolved_at = when;
                        }
                        // Not alert actions: `allowed` is false for them.
                        Action::Thermometer | Action::Checkin | Action::Consent | Action::Enroll | Action::Erase => {}
                    }
                    state.updated_at = self.site.ts(now_ms);
                    let state_name =
                        serde_json::to_value(state.state).ok().and_then(|v| v.as_str().map(str::to_string));
                    tx.execute(
                        "UPDATE alerts SET state = ?2, payload = ?3 WHERE alert_id = ?1",
                        params![state.alert_id, state_name, serde_json::to_string(&state).unwrap_or_default()],
                    )?;
                    tally.enqueue(&tx, &self.state_message(&state, now_ms), self.capacity, now_ms)?;
                    result.ok = true;
                } else {
                    let ko = match state.state {
                        AlertStateKind::Active => "이미 활성 상태인 알림입니다",
                        AlertStateKind::Silenced => "이미 알림음을 끈 알림입니다",
                        AlertStateKind::Resolved => "이미 해결된 알림입니다",
                    };
                    let en = format!("alert is already {:?}", state.state).to_lowercase();
                    result.error = Some(format!("{en} / {ko}"));
                }
                result.state = Some(state.state);
            }
        }
        self.answer(tx, cmd.request_id.as_deref(), result, &content, now_ms, tally)
    }

    /// Remembers a command's result under its request id (so a repeat gets the same answer),
    /// queues the answer on `cmd/result` and commits, all in the command's transaction.
    pub(crate) fn answer(
        &self,
        tx: rusqlite::Transaction<'_>,
        request_id: Option<&str>,
        result: CommandResult,
        content: &str,
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<CommandResult, StoreError> {
        if let Some(id) = request_id {
            tx.execute(
                "INSERT INTO commands (request_id, result, created_ms, content) VALUES (?1, ?2, ?3, ?4)",
                params![id, serde_json::to_string(&result).unwrap_or_default(), now_ms, content],
            )?;
        }
        tally.enqueue(&tx, &self.result_message(&result, now_ms), self.capacity, now_ms)?;
        tx.commit()?;
        Ok(result)
    }

    fn conflict(&self, action: Action, cmd: &Command, request_id: &str, now_ms: i64) -> CommandResult {
        CommandResult {
            schema: contract::COMMAND_RESULT_SCHEMA.into(),
            request_id: Some(request_id.to_string()),
            command: action.name().into(),
            ok: false,
            alert_id: Some(cmd.alert_id.clone()),
            state: None,
            error: Some(format!(
                "conflict: request_id `{request_id}` was already used for a different command; \
                 nothing was done, send this one with a new request_id / \
                 이미 다른 명령에 쓰인 request_id입니다: 아무것도 하지 않았으니 새 request_id로 보내세요"
            )),
            ts: self.site.ts(now_ms),
            person: None,
            message: None,
        }
    }

    pub(crate) fn result_message(&self, result: &CommandResult, now_ms: i64) -> NewMessage {
        NewMessage {
            topic: self.site.topics.command_result(),
            payload: serde_json::to_vec(result).unwrap_or_default(),
            kind: "cmd-result".into(),
            priority: Priority::Visitor,
            retain: false,
            created_ms: now_ms,
            expires_ms: Some(now_ms + 3_600_000),
        }
    }

    /// A result for a message that is not a usable command at all.
    pub(crate) fn malformed(
        &self,
        conn: &Connection,
        action: Action,
        error: String,
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<CommandResult, StoreError> {
        self.refused(conn, action, error, None, now_ms, tally)
    }

    /// A result for a command that is refused before it is looked at; `body` lends the result its
    /// request and alert ids so the sender can match it. The gate passes a body only when its
    /// signature verified (refused as expired, early or replayed), never a forged or unsigned one.
    pub(crate) fn refused(
        &self,
        conn: &Connection,
        action: Action,
        error: String,
        body: Option<&str>,
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<CommandResult, StoreError> {
        let ids = body.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok());
        let id = |k: &str| {
            ids.as_ref().and_then(|v| v.get(k)).and_then(|v| v.as_str()).filter(|s| s.len() <= 128).map(str::to_string)
        };
        let result = CommandResult {
            schema: contract::COMMAND_RESULT_SCHEMA.into(),
            request_id: id("request_id"),
            command: action.name().into(),
            ok: false,
            alert_id: id("alert_id"),
            state: None,
            error: Some(error),
            ts: self.site.ts(now_ms),
            person: None,
            message: None,
        };
        tally.enqueue(conn, &self.result_message(&result, now_ms), self.capacity, now_ms)?;
        Ok(result)
    }
}

/// An elevated reading to raise an alert for: who (person id, or a visitor's own key), which
/// visit (the site-local day), and what was measured when.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub subject: String,
    pub day: String,
    pub person: Option<PersonRef>,
    pub temperature_c: f32,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub alert_id: String,
    pub by: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

impl Command {
    /// What this command asks for, as kept beside its request_id.
    fn content(&self, action: Action) -> String {
        serde_json::json!([action.name(), self.alert_id, self.by]).to_string()
    }
}

/// Fever alerts still `active` (neither silenced nor resolved), for the status.
pub fn count_active(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM alerts WHERE state = 'active'", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Counts the active alerts into the health summary; a failed count keeps the last one.
pub fn refresh_active_count(conn: &Connection, health: &crate::health::Health) {
    if let Ok(n) = count_active(conn) {
        health.fever_alerts_active.store(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Every alert on this kiosk, newest first.
pub fn list(conn: &Connection) -> Result<Vec<AlertState>, StoreError> {
    let mut stmt = conn.prepare("SELECT payload FROM alerts ORDER BY created_ms DESC")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.filter_map(|r| r.ok()).filter_map(|p| serde_json::from_str(&p).ok()).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Whether a staff-facing text has its Korean half.
    pub(crate) fn korean(text: &str) -> bool {
        text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
    }
    use dolbom_contract::Role;

    pub(crate) fn setup() -> (tempfile::TempDir, crate::store::Store, AlertContext) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::Store::open(&dir.path().join("k.db")).expect("store");
        let site =
            crate::site::SiteConfig { center_id: "c".into(), kiosk_id: "k".into(), timezone: "Asia/Seoul".into() };
        let ctx = AlertContext {
            site: site.build().expect("site"),
            staff: vec!["kim".into()],
            capacity: 100,
            threshold_c: 37.5,
            settle_within_ms: 1_800_000,
            expiry_ms: 3_600_000,
        };
        (dir, store, ctx)
    }

    pub(crate) fn new(subject: &str, day: &str) -> NewAlert {
        NewAlert {
            subject: subject.into(),
            day: day.into(),
            person: Some(PersonRef { id: subject.into(), role: Role::Child }),
            temperature_c: 38.2,
            at_ms: 0,
        }
    }

    #[test]
    fn one_alert_per_person_per_visit_even_after_silencing() {
        let (_d, store, ctx) = setup();
        let mut conn = store.lock().expect("lock");
        let first =
            ctx.raise(&conn, new("minji", "2026-11-25"), 0, &mut Tally::default()).expect("raise").expect("raised");
        assert!(
            ctx.raise(&conn, new("minji", "2026-11-25"), 1, &mut Tally::default()).expect("raise").is_none(),
            "still active: no second alert"
        );
        let cmd = Command { alert_id: first.alert_id.clone(), by: "kim".into(), request_id: Some("r1".into()) };
        let r = ctx.apply(&mut conn, Action::Silence, &cmd, 2, &mut Tally::default()).expect("apply");
        assert!(r.ok);
        assert!(
            ctx.raise(&conn, new("minji", "2026-11-25"), 3, &mut Tally::default()).expect("raise").is_none(),
            "silenced: does not fire again today"
        );
        assert!(
            ctx.raise(&conn, new("minji", "2026-11-26"), 4, &mut Tally::default()).expect("raise").is_some(),
            "a new visit may alert again"
        );
        assert!(
            ctx.raise(&conn, new("jiwoo", "2026-11-25"), 5, &mut Tally::default()).expect("raise").is_some(),
            "another child may alert"
        );
    }

    #[test]
    fn refused_commands_change_nothing() {
        let (_d, store, ctx) = setup();
        let mut conn = store.lock().expect("lock");
        let a = ctx.raise(&conn, new("minji", "2026-11-25"), 0, &mut Tally::default()).expect("raise").expect("raised");
        let by_stranger = Command { alert_id: a.alert_id.clone(), by: "mallory".into(), request_id: None };
        let r = ctx.apply(&mut conn, Action::Silence, &by_stranger, 1, &mut Tally::default()).expect("apply");
        assert!(!r.ok);
        assert_eq!(list(&conn).expect("list")[0].state, AlertStateKind::Active);
        let resolve = Command { alert_id: a.alert_id.clone(), by: "kim".into(), request_id: None };
        assert!(ctx.apply(&mut conn, Action::Resolve, &resolve, 2, &mut Tally::default()).expect("apply").ok);
        let again = ctx.apply(&mut conn, Action::Silence, &resolve, 3, &mut Tally::default()).expect("apply");
        assert!(!again.ok, "a resolved alert cannot be silenced");
        assert_eq!(again.state, Some(AlertStateKind::Resolved));
    }

    #[test]
    fn a_reused_request_id_is_idempotent_for_the_same_command_and_a_conflict_otherwise() {
        let (_d, store, mut ctx) = setup();
        ctx.staff.push("lee".into());
        let mut conn = store.lock().expect("lock");
        let a = ctx.raise(&conn, new("minji", "2026-11-25"), 0, &mut Tally::default()).expect("raise").expect("raised");
        let b = ctx.raise(&conn, new("jiwoo", "2026-11-25"), 0, &mut Tally::default()).expect("raise").expect("raised");
        let cmd =
            |alert: &str, by: &str| Command { alert_id: alert.into(), by: by.into(), request_id: Some("r1".into()) };
        let first =
            ctx.apply(&mut conn, Action::Silence, &cmd(&a.alert_id, "kim"), 1, &mut Tally::default()).expect("apply");
        assert!(first.ok);
        let again =
            ctx.apply(&mut conn, Action::Silence, &cmd(&a.alert_id, "kim"), 2, &mut Tally::default()).expect("apply");
        assert_eq!(again, first, "the same command again: the first answer");
        for (what, action, c) in [
            ("another action", Action::Resolve, cmd(&a.alert_id, "kim")),
            ("another alert", Action::Silence, cmd(&b.alert_id, "kim")),
            ("another staff id", Action::Silence, cmd(&a.alert_id, "lee")),
            ("all different", Action::Resolve, cmd(&b.alert_id, "lee")),
        ] {
            let r = ctx.apply(&mut conn, action, &c, 3, &mut Tally::default()).expect("apply");
            assert!(!r.ok, "{what}: {r:?}");
            assert!(r.error.as_deref().unwrap_or("").starts_with("conflict"), "{what}: {r:?}");
            assert!(korean(r.error.as_deref().unwrap_or("")), "{what}: {r:?}");
            assert_eq!(r.request_id.as_deref(), Some("r1"));
        }
        let states: Vec<(String, AlertStateKind)> =
            list(&conn).expect("list").into_iter().map(|s| (s.alert_id, s.state)).collect();
        assert!(states.contains(&(a.alert_id.clone(), AlertStateKind::Silenced)), "{states:?}");
        assert!(
            states.contains(&(b.alert_id.clone(), AlertStateKind::Active)),
            "conflicts changed nothing: {states:?}"
        );
        let again =
            ctx.apply(&mut conn, Action::Silence, &cmd(&a.alert_id, "kim"), 4, &mut Tally::default()).expect("apply");
        assert_eq!(again, first, "the id stays bound to its first command");
    }

    #[test]
    fn a_command_counts_every_message_it_queues_and_every_drop() {
        let (_dir, store, mut ctx) = setup();
        let mut conn = store.lock().expect("lock");
        let mut tally = Tally::default();
        let a = ctx.raise(&conn, new("minji", "2026-11-25"), 0, &mut tally).expect("raise").expect("raised");
        assert_eq!(tally, Tally { queued: 1, dropped: 0 }, "the alert's retained state");
        let cmd = Command { alert_id: a.alert_id.clone(), by: "kim".into(), request_id: None };
        let mut tally = Tally::default();
        assert!(ctx.apply(&mut conn, Action::Silence, &cmd, 1, &mut tally).expect("apply").ok);
        assert_eq!(tally, Tally { queued: 2, dropped: 0 }, "the new state and the result");
        // A full outbox: every further result drops an older expendable message, and says so.
        ctx.capacity = 3;
        let mut tally = Tally::default();
        for i in 0..4 {
            ctx.malformed(&conn, Action::Silence, "bad".into(), 2 + i, &mut tally).expect("result");
        }
        assert_eq!(tally.queued, 4);
        assert!(tally.dropped >= 3, "{tally:?}");
    }
}

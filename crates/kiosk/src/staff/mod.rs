//! The staff desk: the console's commands beyond the alerts (`cmd/checkin`, `cmd/consent`,
//! `cmd/enroll`, `cmd/erase`), after the command stage's gate (signed, fresh, nonce once), and
//! the roster this kiosk publishes (see [`roster`]).
//!
//! As with the alerts: only configured staff ids (`fever.staff`) may act; every command is
//! answered on `cmd/result` (ok with a message, or the reason, English / Korean) naming the
//! person; a repeated `request_id` gets the first answer and changes nothing, a reuse for
//! another command is refused as a conflict. Gallery changes are written to the gallery's
//! audit log with the staff id.

pub mod checkin;
pub mod consent;
pub mod enroll;
pub mod erase;
pub mod roster;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use dolbom_contract::{self as contract, CommandResult};
use dolbom_face::gallery::{AuditLog, GalleryStore};

use crate::alerts::{Action, AlertContext};
use crate::attendance::AttendancePolicy;
use crate::outbox::Tally;
use crate::store::{Store, StoreError};

pub use enroll::{CaptureOutcome, CaptureRequest, CaptureSender};

/// What the staff desk works on besides the alert context (site, staff ids, outbox capacity).
pub struct StaffDesk {
    pub gallery: GalleryStore,
    pub audit: AuditLog,
    pub tz: TimeZone,
    /// The attendance rules' day (its time zone) for hand check-ins.
    pub policy: AttendancePolicy,
    /// Fever screening runs here: a hand check-in is then "not measured", not "screening off".
    pub screening_on: bool,
    /// The vision stage's capture desk, for `cmd/enroll`; None where no vision stage runs.
    pub capture: Option<CaptureSender>,
    /// The embedder's model id, which enrolled templates are recorded with.
    pub embedder: String,
}

/// One staff command, parsed: what every command shares.
pub(crate) trait StaffCommand: DeserializeOwned + Serialize + Clone {
    fn person(&self) -> &str;
    fn by(&self) -> &str;
    fn request_id(&self) -> Option<&str>;
    /// The longest free text it carries, for the length check.
    fn longest(&self) -> usize {
        self.person().len().max(self.by().len())
    }
}

/// An outcome of a staff action, before it becomes a [`CommandResult`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(String),
    Refused(String),
}

impl StaffDesk {
    /// Handles one admitted command body for `action` (a staff action): parsed, checked,
    /// applied and answered on `cmd/result` (queued in `tally`'s count).
    pub fn handle(
        &self,
        ctx: &AlertContext,
        store: &Store,
        action: Action,
        payload: &[u8],
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<CommandResult, StoreError> {
        match action {
            Action::Checkin => self.run::<contract::CheckinCommand>(ctx, store, action, payload, now_ms, tally),
            Action::Consent => self.run::<contract::ConsentCommand>(ctx, store, action, payload, now_ms, tally),
            Action::Enroll => self.run::<contract::EnrollCommand>(ctx, store, action, payload, now_ms, tally),
            Action::Erase => self.run::<contract::EraseCommand>(ctx, store, action, payload, now_ms, tally),
            _ => ctx.malformed(
                &*store.lock()?,
                action,
                format!("`{}` is not a staff action", action.name()),
                now_ms,
                tally,
            ),
        }
    }

    fn run<C: StaffCommand + Apply>(
        &self,
        ctx: &AlertContext,
        store: &Store,
        action: Action,
        payload: &[u8],
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<CommandResult, StoreError> {
        let cmd = match parse::<C>(payload) {
            Ok(c) => c,
            Err(e) => return ctx.malformed(&*store.lock()?, action, e, now_ms, tally),
        };
        let content = serde_json::json!([action.name(), content_of(&cmd)]).to_string();
        let result = CommandResult {
            schema: contract::COMMAND_RESULT_SCHEMA.into(),
            request_id: cmd.request_id().map(str::to_string),
            command: action.name().into(),
            ok: false,
            alert_id: None,
            state: None,
            error: None,
            ts: ctx.site.ts(now_ms),
            person: Some(cmd.person().to_string()),
            message: None,
        };
        // A repeat gets the first answer again; a reuse for something else is refused. Neither
        // does anything.
        if let Some(id) = cmd.request_id() {
            let c = store.lock()?;
            if let Some(first) = seen(&c, id, &content)? {
                let answer = first.unwrap_or_else(|| {
                    let mut r = result.clone();
                    r.error = Some(format!(
                        "conflict: request_id `{id}` was already used for a different command; nothing was done, \
                         send this one with a new request_id / 이미 다른 명령에 쓰인 request_id입니다: 아무것도 하지 \
                         않았으니 새 request_id로 보내세요"
                    ));
                    r
                });
                tally.enqueue(&c, &ctx.result_message(&answer, now_ms), ctx.capacity, now_ms)?;
                return Ok(answer);
            }
        }
        let outcome = if !ctx.staff.iter().any(|s| s == cmd.by()) {
            Some(Outcome::Refused(format!(
                "`{}` is not a staff id allowed to {} (fever.staff) / 이 작업을 할 수 있는 교직원이 아닙니다",
                cmd.by(),
                action.name()
            )))
        } else {
            // The gallery's changes (and a capture) are made, and audited, before the database
            // is locked: the event stage must not wait for them.
            cmd.outside(self, ctx, now_ms)
        };
        let mut c = store.lock()?;
        let tx = c.transaction()?;
        let outcome = match outcome {
            Some(o) => o,
            // A hand check-in: its event is queued in the same transaction as the answer.
            None => cmd.in_tx(self, ctx, &tx, now_ms, tally)?,
        };
        let result = finish(result, outcome);
        record(&tx, cmd.request_id(), &result, &content, now_ms, ctx, tally)?;
        tx.commit()?;
        Ok(result)
    }
}

/// What each command does once parsed, admitted and allowed.
pub(crate) trait Apply {
    /// Work outside the kiosk database (the gallery, a capture): its outcome, or None to go on
    /// to [`Apply::in_tx`].
    fn outside(&self, _desk: &StaffDesk, _ctx: &AlertContext, _now_ms: i64) -> Option<Outcome> {
        None
    }

    /// Work inside the answer's transaction.
    fn in_tx(
        &self,
        _desk: &StaffDesk,
        _ctx: &AlertContext,
        _tx: &Connection,
        _now_ms: i64,
        _tally: &mut Tally,
    ) -> Result<Outcome, StoreError> {
        Ok(Outcome::Refused("nothing to do / 할 일이 없습니다".into()))
    }
}

fn finish(mut result: CommandResult, outcome: Outcome) -> CommandResult {
    match outcome {
        Outcome::Done(message) => {
            result.ok = true;
            result.message = Some(message);
        }
        Outcome::Refused(error) => result.error = Some(error),
    }
    result
}

/// Remembers the result under its request id and queues it, in the command's transaction.
fn record(
    tx: &Connection,
    request_id: Option<&str>,
    result: &CommandResult,
    content: &str,
    now_ms: i64,
    ctx: &AlertContext,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    if let Some(id) = request_id {
        tx.execute(
            "INSERT INTO commands (request_id, result, created_ms, content) VALUES (?1, ?2, ?3, ?4)",
            params![id, serde_json::to_string(&result).unwrap_or_default(), now_ms, content],
        )?;
    }
    tally.enqueue(tx, &ctx.result_message(result, now_ms), ctx.capacity, now_ms)?;
    Ok(())
}

/// The first answer to `request_id`: Some(Some(first)) for the same command, Some(None) for a
/// different one, None when the id is new.
fn seen(conn: &Connection, request_id: &str, content: &str) -> Result<Option<Option<CommandResult>>, StoreError> {
    let row: Option<(String, Option<String>)> = conn
        .query_row("SELECT result, content FROM commands WHERE request_id = ?1", params![request_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(row.map(|(first, stored)| {
        serde_json::from_str::<CommandResult>(&first).ok().filter(|_| stored.as_deref() == Some(content))
    }))
}

/// The command without its request id: what a repeat must match.
fn content_of<C: Serialize>(cmd: &C) -> serde_json::Value {
    let mut v = serde_json::to_value(cmd).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("request_id");
    }
    v
}

/// Whether `payload` is a command body for `action` at all (the malformed budget's question).
pub fn well_formed(action: Action, payload: &[u8]) -> bool {
    match action {
        Action::Checkin => parse::<contract::CheckinCommand>(payload).is_ok(),
        Action::Consent => parse::<contract::ConsentCommand>(payload).is_ok(),
        Action::Enroll => parse::<contract::EnrollCommand>(payload).is_ok(),
        Action::Erase => parse::<contract::EraseCommand>(payload).is_ok(),
        _ => false,
    }
}

/// Whether `action` is one of the staff desk's.
pub fn is_staff(action: Action) -> bool {
    matches!(action, Action::Checkin | Action::Consent | Action::Enroll | Action::Erase)
}

/// Parses a command body, naming what is wrong.
pub(crate) fn parse<C: StaffCommand>(payload: &[u8]) -> Result<C, String> {
    match serde_json::from_slice::<C>(payload) {
        Ok(c) if c.longest() <= 64 && c.request_id().is_none_or(|r| r.len() <= 128) => Ok(c),
        Ok(_) => Err("person, by or request_id is too long / person, by, request_id 중 너무 긴 값이 있습니다".into()),
        Err(e) => Err(format!("not a staff command: {e} / 명령 형식이 아닙니다")),
    }
}

macro_rules! staff_command {
    ($t:ty) => {
        impl StaffCommand for $t {
            fn person(&self) -> &str {
                &self.person
            }
            fn by(&self) -> &str {
                &self.by
            }
            fn request_id(&self) -> Option<&str> {
                self.request_id.as_deref()
            }
        }
    };
}
staff_command!(contract::CheckinCommand);
staff_command!(contract::ConsentCommand);
staff_command!(contract::EnrollCommand);
staff_command!(contract::EraseCommand);

/// The site-local day of `now_ms`.
pub(crate) fn today(tz: &TimeZone, now_ms: i64) -> jiff::civil::Date {
    Timestamp::from_millisecond(now_ms).unwrap_or_else(|_| Timestamp::now()).to_zoned_datetime(tz.clone()).date()
}

/// Why a gallery change was not made, in words for staff.
#[derive(Debug)]
pub(crate) struct Refusal(pub String);

impl From<dolbom_face::gallery::StoreError> for Refusal {
    fn from(e: dolbom_face::gallery::StoreError) -> Self {
        Refusal(format!("the gallery could not be changed: {e} / 갤러리를 바꾸지 못했습니다"))
    }
}

impl From<dolbom_face::gallery::AuditError> for Refusal {
    fn from(e: dolbom_face::gallery::AuditError) -> Self {
        Refusal(format!("saved, but the audit log could not be written: {e} / 저장했지만 감사 기록을 쓰지 못했습니다"))
    }
}

#[cfg(test)]
mod tests;

//! The command stage: staff commands from MQTT (`cmd/silence`, `cmd/resolve`,
//! `cmd/thermometer`, and the staff desk's `cmd/checkin`, `cmd/consent`, `cmd/enroll`,
//! `cmd/erase`) through the signature gate to the alerts, the re-measures or the desk, each
//! answered on `cmd/result` through the outbox.

use std::sync::Arc;

use jiff::Timestamp;
use rusqlite::Connection;
use tokio::sync::mpsc;
use tracing::{info, info_span, warn, Span};

use dolbom_contract::topics::{Command as CommandTopic, Kind};
use dolbom_contract::CommandResult;

use crate::alerts::{refresh_active_count, Action, AlertContext, Command};
use crate::command_gate::{Admitted, CommandGate};
use crate::outbox::{Outbox, Tally};
use crate::store::StoreError;

/// The command stage: MQTT messages on the command topics in, results and alert states out
/// through the outbox.
pub struct CommandStage {
    pub context: AlertContext,
    pub outbox: Outbox,
    /// How many malformed messages were answered lately (see [`MalformedBudget`]).
    pub malformed: MalformedBudget,
    /// Signature, age and nonce of every command, before it is handled.
    pub gate: CommandGate,
    /// The staff desk (`cmd/checkin`, `cmd/consent`, `cmd/enroll`, `cmd/erase`); None answers
    /// them as not served here.
    pub staff: Option<Arc<crate::staff::StaffDesk>>,
}

/// Captures waiting behind the one at the camera, at most.
const CAPTURES_QUEUED: usize = 4;

/// Answers to messages that are no command at all, per minute. Each answer is a write and a
/// message, so a flood of garbage must not turn into a flood of fsyncs and results crowding
/// out events; past the budget they are counted and dropped, and the first one dropped in each
/// minute is logged.
#[derive(Debug, Default)]
pub struct MalformedBudget(std::sync::Mutex<(i64, u32)>);

impl MalformedBudget {
    const PER_MINUTE: u32 = 30;

    /// True when this one may still be answered.
    fn take(&self, now_ms: i64) -> bool {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if w.1 == 0 || now_ms - w.0 >= 60_000 {
            *w = (now_ms, 0);
        }
        w.1 += 1;
        if w.1 == Self::PER_MINUTE + 1 {
            warn!(
                per_minute = Self::PER_MINUTE,
                "malformed commands flooding in: the rest of this minute's are dropped unanswered"
            );
        }
        w.1 <= Self::PER_MINUTE
    }
}

impl CommandStage {
    pub async fn run(self, mut messages: mpsc::Receiver<(String, Vec<u8>)>) {
        let stage = Arc::new(self);
        // A capture at the door takes seconds: captures have their own queue, taken one at a
        // time (a resent one waits for the first and gets its answer), so that a fever silence
        // is never kept waiting behind one.
        let (captures, mut queued) = mpsc::channel::<(String, Action, Vec<u8>, Span)>(CAPTURES_QUEUED);
        let capturing = {
            let stage = stage.clone();
            tokio::spawn(async move {
                while let Some((topic, action, payload, span)) = queued.recv().await {
                    stage.clone().handle_blocking(topic, action, payload, span).await;
                }
            })
        };
        tokio::pin!(capturing);
        loop {
            let (topic, payload) = tokio::select! {
                m = messages.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
                // Only a panic ends it early: the daemon ends with it, as with any stage's.
                ended = &mut capturing => {
                    if let Err(e) = ended {
                        if e.is_panic() {
                            std::panic::resume_unwind(e.into_panic());
                        }
                    }
                    return;
                }
            };
            let span = info_span!("command", topic = %topic);
            // Only this kiosk's own command topics: the contract parses what it built.
            let site = &stage.context.site;
            let action = match dolbom_contract::Topic::parse(&topic) {
                Some(t) if t.center == site.center && t.kiosk == site.kiosk => match t.kind {
                    Kind::Command(CommandTopic::Silence) => Action::Silence,
                    Kind::Command(CommandTopic::Resolve) => Action::Resolve,
                    Kind::Command(CommandTopic::Thermometer) => Action::Thermometer,
                    Kind::Command(CommandTopic::Checkin) => Action::Checkin,
                    Kind::Command(CommandTopic::Consent) => Action::Consent,
                    Kind::Command(CommandTopic::Enroll) => Action::Enroll,
                    Kind::Command(CommandTopic::Erase) => Action::Erase,
                    _ => continue,
                },
                _ => continue,
            };
            if action == Action::Enroll {
                if captures.try_send((topic, action, payload, span)).is_err() {
                    // Unanswered: the console tells staff the kiosk did not answer.
                    warn!(queued = CAPTURES_QUEUED, "too many captures waiting: this one is dropped");
                }
                continue;
            }
            stage.clone().handle_blocking(topic, action, payload, span).await;
        }
        drop(captures);
        if let Err(e) = capturing.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }

    /// One message, handled on the blocking pool: its transaction ends with an fsync (as the
    /// event stage's), and a capture waits for the camera.
    async fn handle_blocking(self: Arc<Self>, topic: String, action: Action, payload: Vec<u8>, span: Span) {
        match tokio::task::spawn_blocking(move || span.in_scope(|| self.handle_message(&topic, action, &payload))).await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "command could not be recorded"),
            // As in the event stage: a panic ends the stage, and the daemon with it.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => warn!(error = %e, "handling a command was cancelled"),
        }
    }

    /// Passes one message on `topic` through the gate, then handles the command it carries.
    /// A refused one is answered with its reason and changes nothing; every outcome is one
    /// line of the `audit` log target.
    pub fn handle_message(
        &self,
        topic: &str,
        action: Action,
        payload: &[u8],
    ) -> Result<Option<CommandResult>, StoreError> {
        let now_ms = Timestamp::now().as_millisecond();
        let admitted = {
            let conn = self.outbox.store().lock()?;
            self.gate.admit(&conn, topic, payload, now_ms)?
        };
        match admitted {
            Admitted::Command { body, key_id } => {
                let result = self.handle(action, &body)?;
                if let Some(r) = &result {
                    info!(
                        target: "audit",
                        topic,
                        key_id = key_id.as_deref().unwrap_or("(unsigned)"),
                        ok = r.ok,
                        error = ?r.error,
                        alert = ?r.alert_id,
                        "staff command admitted"
                    );
                }
                Ok(result)
            }
            Admitted::Refused { refusal, body } => {
                warn!(target: "audit", topic, reason = refusal.code(), detail = %refusal, "staff command refused");
                if !self.malformed.take(now_ms) {
                    self.outbox.health().mqtt_ignored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(None);
                }
                let conn = self.outbox.store().lock()?;
                let mut tally = Tally::default();
                let result =
                    self.context.refused(&conn, action, refusal.to_string(), body.as_deref(), now_ms, &mut tally)?;
                drop(conn);
                self.outbox.after_enqueue(tally);
                Ok(Some(result))
            }
        }
    }

    /// Handles one command body; None when it was malformed past the budget and dropped
    /// unanswered. Only [`CommandStage::handle_message`]'s gate should call it for messages.
    pub fn handle(&self, action: Action, payload: &[u8]) -> Result<Option<CommandResult>, StoreError> {
        let now_ms = Timestamp::now().as_millisecond();
        if action == Action::Thermometer {
            return self.handle_thermometer(payload, now_ms);
        }
        if crate::staff::is_staff(action) {
            return self.handle_staff(action, payload, now_ms);
        }
        let command = match serde_json::from_slice::<Command>(payload) {
            Ok(cmd)
                if cmd.alert_id.len() <= 64
                    && cmd.by.len() <= 64
                    && cmd.request_id.as_ref().is_none_or(|r| r.len() <= 128) =>
            {
                Ok(cmd)
            }
            Ok(_) => Err("alert_id, by or request_id is too long / alert_id, by, request_id 중 너무 긴 값이 있습니다"
                .to_string()),
            Err(e) => Err(format!(
                "not a command: {e}; expected {{\"alert_id\", \"by\", \"request_id\"}} / 명령 형식이 아닙니다"
            )),
        };
        self.answer(action, command, now_ms, |ctx, conn, cmd, tally| ctx.apply(conn, action, cmd, now_ms, tally))
    }

    /// A staff desk command, answered like the alert commands (the desk's gallery work is done
    /// before it locks the database).
    fn handle_staff(&self, action: Action, payload: &[u8], now_ms: i64) -> Result<Option<CommandResult>, StoreError> {
        if !crate::staff::well_formed(action, payload) && !self.malformed.take(now_ms) {
            self.outbox.health().mqtt_ignored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(None);
        }
        let mut tally = Tally::default();
        let result = match &self.staff {
            Some(desk) => desk.handle(&self.context, self.outbox.store(), action, payload, now_ms, &mut tally)?,
            None => {
                let conn = self.outbox.store().lock()?;
                self.context.malformed(
                    &conn,
                    action,
                    "staff commands are not served by this kiosk / 이 키오스크는 이 명령을 받지 않습니다".into(),
                    now_ms,
                    &mut tally,
                )?
            }
        };
        info!(target: "audit", action = action.name(), ok = result.ok, error = ?result.error, person = ?result.person, message = ?result.message, "staff desk command handled");
        self.outbox.after_enqueue(tally);
        Ok(Some(result))
    }

    /// A staff thermometer value (`cmd/thermometer`), answered like the alert commands.
    fn handle_thermometer(&self, payload: &[u8], now_ms: i64) -> Result<Option<CommandResult>, StoreError> {
        let command = crate::remeasure::ThermometerCommand::parse(payload);
        self.answer(Action::Thermometer, command, now_ms, |ctx, conn, cmd, tally| {
            crate::remeasure::apply_thermometer(ctx, conn, cmd, now_ms, tally)
        })
    }

    /// Applies a parsed command, or answers a malformed one within the budget (None past it),
    /// then refreshes the active-alert count and wakes the publisher.
    fn answer<C>(
        &self,
        action: Action,
        command: Result<C, String>,
        now_ms: i64,
        apply: impl FnOnce(&AlertContext, &mut Connection, &C, &mut Tally) -> Result<CommandResult, StoreError>,
    ) -> Result<Option<CommandResult>, StoreError> {
        if command.is_err() && !self.malformed.take(now_ms) {
            self.outbox.health().mqtt_ignored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(None);
        }
        let mut conn = self.outbox.store().lock()?;
        let mut tally = Tally::default();
        let result = match command {
            Ok(cmd) => apply(&self.context, &mut conn, &cmd, &mut tally)?,
            Err(error) => self.context.malformed(&conn, action, error, now_ms, &mut tally)?,
        };
        refresh_active_count(&conn, self.outbox.health());
        drop(conn);
        info!(action = action.name(), ok = result.ok, error = ?result.error, alert = ?result.alert_id, "command handled");
        self.outbox.after_enqueue(tally);
        Ok(Some(result))
    }
}

#[cfg(test)]
mod tests {
    use dolbom_contract::AlertStateKind;

    use super::*;
    use crate::alerts::list;
    use crate::alerts::tests::{korean, new, setup};

    /// The status counts active alerts: raised ones, less those a command silenced.
    #[test]
    fn the_status_counts_active_alerts_as_commands_change_them() {
        let (_d, store, ctx) = setup();
        let store = Arc::new(store);
        let health = Arc::new(crate::health::Health::default());
        let outbox = Outbox::new(store.clone(), 100, health.clone()).expect("outbox");
        let minji = {
            let conn = store.lock().expect("lock");
            let a = ctx.raise(&conn, new("minji", "2026-11-25"), 0, &mut Tally::default()).expect("raise");
            ctx.raise(&conn, new("jiwoo", "2026-11-25"), 0, &mut Tally::default()).expect("raise");
            refresh_active_count(&conn, &health);
            a.expect("raised")
        };
        assert_eq!(health.summary().fever_alerts_active, 2);
        let gate: crate::command_gate::CommandsConfig = toml::from_str("allow_unsigned = true").expect("parses");
        let gate = gate.load(std::path::Path::new(".")).expect("no keys to read");
        let stage = CommandStage { context: ctx, outbox, malformed: MalformedBudget::default(), gate, staff: None };
        let cmd = serde_json::json!({"alert_id": minji.alert_id, "by": "kim", "request_id": "r1"}).to_string();
        let result = stage.handle(Action::Silence, cmd.as_bytes()).expect("handle").expect("answered");
        assert!(result.ok, "{result:?}");
        assert_eq!(health.summary().fever_alerts_active, 1);
    }

    /// The gate in front of the command stage: a signed silence works once; the same message
    /// again, one ten minutes old, one signed with another key and an unsigned one are each
    /// answered with their reason and leave the alert as it was.
    #[test]
    fn signed_commands_work_once_and_every_refusal_says_why() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store, ctx) = setup();
        let key = dir.path().join("office.key");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef").expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let commands: crate::command_gate::CommandsConfig =
            toml::from_str("[[keys]]\nid = \"office\"\nfile = \"office.key\"").expect("parses");
        let gate = commands.load(dir.path()).expect("keys");
        let store = Arc::new(store);
        let health = Arc::new(crate::health::Health::default());
        let outbox = Outbox::new(store.clone(), 100, health).expect("outbox");
        let (a, b) = {
            let conn = store.lock().expect("lock");
            let a = ctx.raise(&conn, new("minji", "2026-11-25"), 0, &mut Tally::default()).expect("raise");
            let b = ctx.raise(&conn, new("jiwoo", "2026-11-25"), 0, &mut Tally::default()).expect("raise");
            (a.expect("raised"), b.expect("raised"))
        };
        let topic = ctx.site.topics.command(dolbom_contract::Command::Silence);
        let stage = CommandStage {
            context: ctx,
            outbox,
            malformed: MalformedBudget::default(),
            gate: gate.clone(),
            staff: None,
        };
        let now = Timestamp::now().as_millisecond();
        let body =
            |alert: &str, r: &str| serde_json::json!({"alert_id": alert, "by": "kim", "request_id": r}).to_string();
        let wire = |s: dolbom_contract::signed::SignedCommand| serde_json::to_vec(&s).expect("json");

        let ok = wire(gate.sign(&topic, &body(&a.alert_id, "r1"), now).expect("a key"));
        let r = stage.handle_message(&topic, Action::Silence, &ok).expect("handled").expect("answered");
        assert!(r.ok, "{r:?}");
        let r = stage.handle_message(&topic, Action::Silence, &ok).expect("handled").expect("answered");
        assert!(!r.ok && r.error.as_deref().unwrap_or("").starts_with("replayed"), "{r:?}");
        assert_eq!(r.request_id.as_deref(), Some("r1"), "the refusal names the request");

        let old = wire(gate.sign(&topic, &body(&b.alert_id, "r2"), now - 600_000).expect("a key"));
        let forged = wire(dolbom_contract::signed::sign(
            b"not the office key, but 32 bytes",
            "office",
            &topic,
            &body(&b.alert_id, "r3"),
            now,
            "forged-nonce-1",
        ));
        let unsigned = body(&b.alert_id, "r4").into_bytes();
        // Only the expired one's signature held, so only its ids are repeated: a forged or
        // unsigned body's ids are whatever its sender chose.
        for (what, payload, reason, named) in [
            ("10 minutes old", old, "expired", Some((b.alert_id.as_str(), "r2"))),
            ("forged", forged, "bad signature", None),
            ("unsigned", unsigned, "unsigned", None),
        ] {
            let r = stage.handle_message(&topic, Action::Silence, &payload).expect("handled").expect("answered");
            assert!(!r.ok && r.error.as_deref().unwrap_or("").starts_with(reason), "{what}: {r:?}");
            assert!(korean(r.error.as_deref().unwrap_or("")), "staff read it in Korean too: {what}: {r:?}");
            assert_eq!(r.alert_id.as_deref(), named.map(|n| n.0), "{what}");
            assert_eq!(r.request_id.as_deref(), named.map(|n| n.1), "{what}");
        }
        let states: Vec<(String, AlertStateKind)> =
            list(&store.lock().expect("lock")).expect("list").into_iter().map(|s| (s.alert_id, s.state)).collect();
        assert!(states.contains(&(a.alert_id, AlertStateKind::Silenced)), "{states:?}");
        assert!(states.contains(&(b.alert_id, AlertStateKind::Active)), "refusals changed nothing: {states:?}");
    }

    #[test]
    fn malformed_messages_are_answered_within_a_budget_per_minute() {
        let budget = MalformedBudget::default();
        let answered = (0..100).filter(|_| budget.take(1_000)).count();
        assert_eq!(answered as u32, MalformedBudget::PER_MINUTE);
        assert!(!budget.take(60_999), "still the same minute");
        assert!(budget.take(61_000), "a new minute, a new budget");
    }
}

//! Staff actions to a kiosk: the contract's command with `by` and a fresh request id, signed
//! with the console's key (`dolbom_contract::signed`, as `dolbom alerts` signs), published QoS 1
//! on the kiosk's `cmd/{name}`, and the `cmd/result` that answers it.

use std::time::Duration;

use dolbom_contract::{signed, Command, CommandResult, Topics};
use dolbom_mqtt::Outgoing5;
use serde::Serialize;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::Center;
use crate::lang::Lang;

/// How a staff action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The kiosk's answer (which may be a refusal).
    Done(CommandResult),
    /// Nothing came back within the wait.
    NoAnswer,
    /// The console could not send it (no such kiosk, a form that was not filled in).
    NotSent { ko: String, en: String },
}

impl Answer {
    pub fn ok(&self) -> bool {
        matches!(self, Answer::Done(r) if r.ok)
    }

    /// In words for staff.
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Answer::Done(r) if r.ok => {
                let done = lang.t("키오스크가 처리했습니다", "The kiosk did it");
                match &r.message {
                    Some(m) => format!("{done}: {}", pick(m, lang)),
                    None => format!("{done}."),
                }
            }
            Answer::Done(r) => format!(
                "{}: {}",
                lang.t("키오스크가 거절했습니다", "The kiosk refused"),
                r.error.as_deref().map(|e| pick(e, lang)).unwrap_or_default()
            ),
            Answer::NoAnswer => lang
                .t(
                    "키오스크가 응답하지 않았습니다. 키오스크가 켜져 있고 연결되어 있는지 확인하세요.",
                    "The kiosk did not answer. Check that it is on and connected.",
                )
                .to_string(),
            Answer::NotSent { ko, en } => lang.t(ko, en).to_string(),
        }
    }
}

/// Kiosk texts come as "English / Korean": the half in the page's language.
fn pick(text: &str, lang: Lang) -> &str {
    match text.split_once(" / ") {
        Some((en, ko)) => lang.t(ko.trim(), en.trim()),
        None => text,
    }
}

/// `cmd/silence` and `cmd/resolve`.
#[derive(Debug, Serialize)]
pub struct AlertCommand<'a> {
    pub alert_id: &'a str,
    pub by: &'a str,
    pub request_id: &'a str,
}

/// A fresh request id for one action.
pub fn request_id() -> String {
    dolbom_contract::new_event_id().simple().to_string()
}

impl Center {
    /// Sends `body` as `command` to `kiosk` and waits up to `wait` for its answer. `body` must
    /// carry `request_id`.
    pub async fn command<T: Serialize>(
        &self,
        kiosk: &str,
        command: Command,
        body: &T,
        request_id: &str,
        wait: Duration,
    ) -> Answer {
        let topic = Topics::new(&self.config.site.center_id, kiosk).command(command);
        let body = match serde_json::to_string(body) {
            Ok(b) => b,
            Err(e) => {
                return Answer::NotSent {
                    ko: format!("명령을 만들 수 없습니다: {e}"),
                    en: format!("cannot build the command: {e}"),
                }
            }
        };
        let now = jiff::Timestamp::now().as_millisecond();
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        let envelope = signed::sign(&self.key, &self.config.commands.key_id, &topic, &body, now, &nonce);
        let payload = match serde_json::to_vec(&envelope) {
            Ok(p) => p,
            Err(e) => {
                return Answer::NotSent {
                    ko: format!("명령을 만들 수 없습니다: {e}"),
                    en: format!("cannot build the command: {e}"),
                }
            }
        };
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(request_id.to_string(), tx);
        }
        let message = Outgoing5 {
            topic: topic.clone(),
            payload,
            retain: false,
            expiry_secs: Some(60),
            user_properties: Vec::new(),
        };
        info!(target: "audit", topic, request_id, command = command.name(), "staff command sent");
        if self.outgoing.send(message).is_err() {
            warn!(topic, "the broker connection has ended: command not sent");
        }
        let answer = match tokio::time::timeout(wait, rx).await {
            Ok(Ok(result)) => Answer::Done(result),
            _ => Answer::NoAnswer,
        };
        if let Ok(mut p) = self.pending.lock() {
            p.remove(request_id);
        }
        answer
    }

    /// A `cmd/result` came: wakes the action waiting for it (if any still is).
    pub(super) fn answered(&self, result: CommandResult) {
        let Some(id) = result.request_id.clone() else { return };
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(tx) = waiter {
            let _ = tx.send(result);
        }
    }

    /// The kiosk a person's action goes to: the one staff picked, else the only kiosk, else the
    /// one the person was last seen at, else the first whose roster knows them.
    pub fn kiosk_for(&self, person: &str, picked: Option<&str>) -> Option<String> {
        if let Some(k) = picked.filter(|k| !k.is_empty()) {
            return Some(k.to_string());
        }
        let rosters = self.store.rosters().unwrap_or_default();
        if rosters.len() == 1 {
            return rosters.first().map(|r| r.kiosk.clone());
        }
        if let Ok(Some(k)) = self.store.last_kiosk_of(person) {
            return Some(k);
        }
        rosters.iter().find(|r| r.people.iter().any(|p| p.id == person)).map(|r| r.kiosk.clone())
    }
}

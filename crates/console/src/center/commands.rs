//! Staff actions to a kiosk: the contract's command with `by` and a fresh request id, signed
//! with the console's key (`dolbom_contract::signed`, as `dolbom alerts` signs), published QoS 1
//! on the kiosk's `cmd/{name}`, and the `cmd/result` that answers it.

use std::time::{Duration, Instant};

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

/// Kiosk texts come as "English / Korean": the half in the page's language. The Korean half is
/// split off at the last " / ": the English half may quote an error that holds one.
fn pick(text: &str, lang: Lang) -> &str {
    match text.rsplit_once(" / ") {
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

/// A command on its way to the broker: sent only while connected and before its deadline (the
/// staff member was told "no answer" after it, and a late command would surprise them).
#[derive(Debug)]
pub struct Queued {
    pub message: Outgoing5,
    pub deadline: Instant,
}

/// A command sent and not yet answered: the kiosk it went to, and everyone waiting for its
/// answer (the same form sent twice waits for the one command).
pub struct Pending {
    kiosk: String,
    waiters: Vec<oneshot::Sender<CommandResult>>,
}

/// A request id a form carries (rendered with it, so a double click or a resend is the same
/// action and the kiosk answers it once), else a fresh one.
pub fn request_id_of(posted: Option<&str>) -> String {
    match posted {
        Some(id) if (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) => id.to_string(),
        _ => request_id(),
    }
}

impl Center {
    /// Sends `body` as `command` to `kiosk` and waits up to `wait` for its answer. `body` must
    /// carry `request_id`. While the same request id is still waiting for its answer, it is not
    /// sent again: this call waits for that answer too.
    pub async fn command<T: Serialize>(
        &self,
        kiosk: &str,
        command: Command,
        body: &T,
        request_id: &str,
        wait: Duration,
    ) -> Answer {
        let not_built = |e: serde_json::Error| Answer::NotSent {
            ko: format!("명령을 만들 수 없습니다: {e}"),
            en: format!("cannot build the command: {e}"),
        };
        let topic = Topics::new(&self.config.site.center_id, kiosk).command(command);
        let body = match serde_json::to_string(body) {
            Ok(b) => b,
            Err(e) => return not_built(e),
        };
        let now = jiff::Timestamp::now().as_millisecond();
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        let envelope = signed::sign(&self.key, &self.config.commands.key_id, &topic, &body, now, &nonce);
        let payload = match serde_json::to_vec(&envelope) {
            Ok(p) => p,
            Err(e) => return not_built(e),
        };
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match pending.get_mut(request_id) {
                Some(p) if p.kiosk == kiosk => {
                    p.waiters.push(tx);
                    false
                }
                Some(_) => {
                    return Answer::NotSent {
                        ko: "같은 요청이 다른 키오스크로 가는 중입니다. 페이지를 새로 고치세요.".into(),
                        en: "The same request is on its way to another kiosk. Reload the page.".into(),
                    }
                }
                None => {
                    pending.insert(request_id.to_string(), Pending { kiosk: kiosk.to_string(), waiters: vec![tx] });
                    true
                }
            }
        };
        if first {
            let message = Outgoing5 {
                topic: topic.clone(),
                payload,
                retain: false,
                expiry_secs: None,
                user_properties: Vec::new(),
            };
            info!(target: "audit", topic, request_id, command = command.name(), "staff command sent");
            if self.outgoing.send(Queued { message, deadline: Instant::now() + wait }).is_err() {
                warn!(topic, "the broker connection has ended: command not sent");
            }
        } else {
            info!(request_id, "the same action again: waiting for the answer to the one already sent");
        }
        let answer = match tokio::time::timeout(wait, rx).await {
            Ok(Ok(result)) => Answer::Done(result),
            _ => Answer::NoAnswer,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pending.get_mut(request_id) {
            p.waiters.retain(|w| !w.is_closed());
            if p.waiters.is_empty() {
                pending.remove(request_id);
            }
        }
        answer
    }

    /// Whether a command with this request id still waits for its answer.
    pub fn is_pending(&self, request_id: &str) -> bool {
        self.pending.lock().map(|p| p.contains_key(request_id)).unwrap_or(false)
    }

    /// A `cmd/result` came from `kiosk`: wakes the actions waiting for it (if any still are).
    /// Only the kiosk the command went to can answer it.
    pub(super) fn answered(&self, kiosk: &str, result: CommandResult) {
        let Some(id) = result.request_id.as_deref() else { return };
        let waiters = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match pending.get(id) {
                Some(p) if p.kiosk == kiosk => pending.remove(id).map(|p| p.waiters).unwrap_or_default(),
                Some(p) => {
                    warn!(request_id = id, from = kiosk, to = %p.kiosk, "an answer from another kiosk than the command's: ignored");
                    return;
                }
                None => return,
            }
        };
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }

    /// The kiosk a person's action goes to: the one staff picked, else the only kiosk, else the
    /// one the person was last seen at, else the first whose roster knows them.
    pub fn kiosk_for(&self, person: &str, picked: Option<&str>) -> Option<String> {
        let rosters = self.store.rosters().unwrap_or_default();
        if let Some(k) = picked.filter(|k| !k.is_empty()) {
            // Only a door that has reported: the id goes into a topic.
            let known = dolbom_contract::validate_id(k).is_ok() && rosters.iter().any(|r| r.kiosk == k);
            return known.then(|| k.to_string());
        }
        if rosters.len() == 1 {
            return rosters.first().map(|r| r.kiosk.clone());
        }
        if let Ok(Some(k)) = self.store.last_kiosk_of(person) {
            return Some(k);
        }
        rosters.iter().find(|r| r.people.iter().any(|p| p.id == person)).map(|r| r.kiosk.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_korean_half_is_after_the_last_separator() {
        let text = "the gallery cannot be read (sealed / wrong key); nothing was recorded / 갤러리를 읽을 수 없어 기록하지 않았습니다";
        assert_eq!(pick(text, Lang::Ko), "갤러리를 읽을 수 없어 기록하지 않았습니다");
        assert_eq!(pick(text, Lang::En), "the gallery cannot be read (sealed / wrong key); nothing was recorded");
        assert_eq!(pick("only one language", Lang::Ko), "only one language");
    }
}

//! The intake: kiosk events from MQTT in, planned texts committed to the store, then the message
//! acknowledged. The session is persistent (QoS 1, manual acknowledgements), so the broker
//! redelivers anything the relay did not finish taking in; the store dedupes on the event id.
//!
//! Events are read as the contract's types from the topics the contract parses: a payload that
//! does not fit its topic's type is dropped (and acknowledged), never guessed at.

use std::sync::Arc;
use std::time::Duration;

use dolbom_backoff::Backoff;
use dolbom_contract::{AttendanceEvent, AttendanceKind, FeverEvent, Kind, PersonRef, Role, Topic};
use dolbom_mqtt::{Protocol, Session, SessionEvent};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::Notify;
use tracing::{info, info_span, warn, Instrument};

use crate::config::{RelayFile, RelaySettings};
use crate::directory::{self, Directory, Notice};
use crate::store::{self, Delivery, RelayStore};
use crate::{now_ms, sms};

/// What an incoming event means for the relay: its id, an outcome for the record, and the texts.
#[derive(Debug)]
pub struct Plan {
    pub event_id: String,
    pub outcome: String,
    pub deliveries: Vec<Delivery>,
}

impl Plan {
    fn nothing(event_id: String, outcome: String) -> Self {
        Self { event_id, outcome, deliveries: Vec::new() }
    }
}

/// The part of an event the relay texts about.
struct Textable {
    event_id: String,
    notice: Notice,
    center: String,
    person: Option<PersonRef>,
    ts: String,
    temperature_c: Option<f32>,
}

/// Reads the payload as its topic's contract type. `Ok(Err(plan))` is an event the relay
/// records but does not text; `Err` is a message that is not an event at all.
fn read(topic: &Topic, payload: &[u8]) -> Result<Result<Textable, Plan>, String> {
    match topic.kind {
        Kind::Attendance => {
            let e: AttendanceEvent =
                serde_json::from_slice(payload).map_err(|e| format!("not an attendance event: {e}"))?;
            if e.schema != dolbom_contract::ATTENDANCE_SCHEMA {
                return Ok(Err(Plan::nothing(e.event_id.to_string(), format!("schema `{}` not understood", e.schema))));
            }
            let notice = match e.kind {
                AttendanceKind::Arrival => Notice::Arrival,
                AttendanceKind::Departure => Notice::Departure,
            };
            Ok(Ok(Textable {
                event_id: e.event_id.to_string(),
                notice,
                center: e.center,
                person: Some(e.person),
                ts: e.ts,
                temperature_c: e.temperature_c,
            }))
        }
        Kind::Fever => {
            let e: FeverEvent = serde_json::from_slice(payload).map_err(|e| format!("not a fever event: {e}"))?;
            if e.schema != dolbom_contract::FEVER_SCHEMA {
                return Ok(Err(Plan::nothing(e.event_id.to_string(), format!("schema `{}` not understood", e.schema))));
            }
            Ok(Ok(Textable {
                event_id: e.event_id.to_string(),
                notice: Notice::Fever,
                center: e.center,
                person: e.person,
                ts: e.ts,
                temperature_c: Some(e.temperature_c),
            }))
        }
        _ => {
            // Recorded by id, so a subscription that is too wide shows in the log, not in texts.
            #[derive(Deserialize)]
            struct AnyEvent {
                event_id: uuid::Uuid,
            }
            let e: AnyEvent = serde_json::from_slice(payload).map_err(|e| format!("no event_id: {e}"))?;
            Ok(Err(Plan::nothing(e.event_id.to_string(), "not an event the relay texts".into())))
        }
    }
}

/// Plans the texts for one message: who is told what, or why nobody is.
pub fn plan(
    topic: &str,
    payload: &[u8],
    dir: &Directory,
    settings: &RelaySettings,
    now_ms: i64,
) -> Result<Plan, String> {
    let topic = Topic::parse(topic).ok_or_else(|| format!("`{topic}` is not a dolbom topic"))?;
    let event = match read(&topic, payload)? {
        Ok(event) => event,
        Err(plan) => return Ok(plan),
    };
    let event_id = event.event_id;
    let Some(person) = event.person.filter(|p| p.role == Role::Child) else {
        return Ok(Plan::nothing(event_id, "not a child: nobody to text".into()));
    };
    // A payload naming another center than its topic is not believed: it could text that
    // center's parents from a kiosk allowed to publish only under its own.
    if event.center != topic.center {
        return Ok(Plan::nothing(
            event_id,
            format!("payload center `{}` is not the topic's `{}`", event.center, topic.center),
        ));
    }
    let Some(child) = dir.child(&event.center, &person.id) else {
        return Ok(Plan::nothing(
            event_id,
            format!("child `{}` of center `{}` is not in the directory", person.id, event.center),
        ));
    };
    let Some(center) = dir.center(&child.center) else {
        return Ok(Plan::nothing(event_id, format!("center `{}` is not in the directory", child.center)));
    };
    let ts: Timestamp = event.ts.parse().map_err(|_| "no valid ts".to_string())?;
    let tz = TimeZone::get(&center.timezone).map_err(|e| e.to_string())?;
    let time = ts.to_zoned_datetime(tz).time();
    let time = format!("{:02}:{:02}", time.hour(), time.minute());
    let stale = now_ms - ts.as_millisecond() > settings.max_event_age_minutes as i64 * 60_000;
    let title = format!("[{}] 알림", center.name);
    let notice = event.notice;
    let deliveries = child
        .guardians
        .iter()
        .filter(|g| g.notify.contains(&notice))
        .map(|g| {
            let body = directory::render(center, &g.lang, notice, &child.name, &time, event.temperature_c);
            let text = sms::compose(&body, &title);
            Delivery {
                id: 0,
                event_id: event_id.clone(),
                recipient: directory::normalize_phone(&g.phone),
                guardian: g.name.clone(),
                child: child.id.clone(),
                center: center.id.clone(),
                notice: format!("{notice:?}").to_lowercase(),
                event_ms: ts.as_millisecond(),
                sender: directory::normalize_phone(&center.sender),
                msg_type: text.kind.name().into(),
                subject: text.subject,
                body: text.body,
                status: if stale { "stale" } else { "pending" }.into(),
                attempts: 0,
                next_ms: now_ms,
                created_ms: now_ms,
                updated_ms: now_ms,
                detail: stale
                    .then(|| format!("event older than {} minutes when it arrived", settings.max_event_age_minutes)),
                instance: None,
            }
        })
        .collect::<Vec<_>>();
    let outcome = if stale { "stale" } else { "accepted" };
    Ok(Plan { event_id, outcome: format!("{outcome}: {} text(s)", deliveries.len()), deliveries })
}

/// The MQTT side, until the process is stopped: one persistent session at a time through the
/// shared session driver, reconnecting with backoff. A message is acknowledged only after its
/// deliveries are committed.
pub async fn consume(file: &RelayFile, store: Arc<dyn RelayStore>, directory: Arc<Directory>, wake: Arc<Notify>) {
    let filters: Vec<String> = file
        .relay
        .topics
        .iter()
        .map(|t| match &file.relay.share_group {
            Some(g) => format!("$share/{g}/{t}"),
            None => t.clone(),
        })
        .collect();
    let options = dolbom_mqtt::ConnectOptions { persistent: true, ..file.mqtt.connect_options(&file.instance()) };
    let (initial, max) = file.mqtt.reconnect_delays();
    let mut backoff = Backoff::new(initial, max);
    let span = info_span!("intake", host = %file.mqtt.host, port = file.mqtt.port);
    async {
        loop {
            // Persistent sessions are v3.1.1 here: the broker keeps what was not acknowledged.
            let mut session = Session::new(Protocol::V311, &options);
            loop {
                match session.poll().await {
                    Ok(SessionEvent::Connected) => {
                        backoff.reset();
                        info!(filters = ?filters, "connected; subscribing");
                        for f in &filters {
                            if let Err(e) = session.subscribe(f) {
                                warn!(error = %e, filter = %f, "subscribe failed");
                            }
                        }
                    }
                    Ok(SessionEvent::Subscribed { refused }) => {
                        if refused > 0 {
                            warn!(refused, "the broker refused a subscription (check its ACL)");
                        } else {
                            info!("subscribed");
                        }
                    }
                    Ok(SessionEvent::Message { topic, payload, ack }) => {
                        take_in(&topic, &payload, file, &store, &directory, &wake).await;
                        if let Some(ack) = ack {
                            if let Err(e) = session.ack(ack).await {
                                warn!(error = %e, "ack failed; the broker may redeliver (deduplicated)");
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(error = %e, "broker connection lost; reconnecting");
                        break;
                    }
                }
            }
            drop(session);
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
    .instrument(span)
    .await
}

/// Plans one message and records it, retrying in place until it is on disk: a broker does not
/// redeliver within a live session, and later acks must not overtake this one.
async fn take_in(
    topic: &str,
    payload: &[u8],
    file: &RelayFile,
    store: &Arc<dyn RelayStore>,
    directory: &Directory,
    wake: &Notify,
) {
    let now = now_ms();
    let plan = match plan(topic, payload, directory, &file.relay, now) {
        Ok(plan) => plan,
        Err(reason) => {
            warn!(topic, reason, "malformed event dropped");
            return;
        }
    };
    let mut retry = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let (event_id, outcome) = (plan.event_id.clone(), plan.outcome.clone());
    let taken = Arc::new(plan);
    loop {
        let t = taken.clone();
        match store::call(store, move |s| s.intake(&t.event_id, &t.outcome, &t.deliveries, now)).await {
            Ok(fresh) => {
                info!(event_id, fresh, outcome, "event taken in");
                wake.notify_one();
                return;
            }
            Err(e) => {
                warn!(error = %e, event_id, "event not recorded yet; retrying before acknowledging");
                tokio::time::sleep(retry.next_delay()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_skips_what_nobody_should_get() {
        let dir: Directory = toml::from_str(
            r#"
[[center]]
id = "c"
name = "C"
sender = "0212345678"
[[child]]
id = "minji"
center = "c"
name = "김민지"
[[child.guardian]]
name = "mom"
phone = "01012345678"
notify = ["arrival"]
"#,
        )
        .expect("directory");
        let settings: RelaySettings = toml::from_str("database = \"x\"\ndirectory = \"y\"").expect("settings");
        let now = Timestamp::now();
        let at = |center: &str, kind: &str, role: &str| {
            serde_json::json!({"schema": "dolbom.attendance/1", "event_id": "01a00000-0000-7000-8000-000000000001",
                               "kind": kind, "ts": now.to_string(), "center": center, "kiosk": "door-1",
                               "person": {"id": "minji", "role": role}, "confidence": 0.9, "temperature_c": null,
                               "temperature_status": "screening_off", "method": "face"})
            .to_string()
        };
        let topic = |center: &str| format!("dolbom/v1/{center}/door-1/event/attendance");
        let ev = |kind: &str, role: &str| at("c", kind, role);
        let now_ms = now.as_millisecond();
        let p = plan(&topic("c"), ev("arrival", "child").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert_eq!(p.deliveries.len(), 1);
        let p = plan(&topic("c"), ev("departure", "child").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty(), "mom did not ask for departures");
        let p = plan(&topic("c"), ev("arrival", "staff").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not a child"));
        let other = at("elsewhere", "arrival", "child");
        let p = plan(&topic("elsewhere"), other.as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty(), "another center's `minji` is another child: {}", p.outcome);
        assert!(plan(&topic("c"), b"{garbage", &dir, &settings, 0).is_err());
        let p = plan(&topic("elsewhere"), ev("arrival", "child").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty(), "a payload naming another center than its topic is not texted: {}", p.outcome);
    }

    #[test]
    fn payloads_are_read_as_their_topics_type() {
        let dir: Directory = toml::from_str("").expect("empty directory");
        let settings: RelaySettings = toml::from_str("database = \"x\"\ndirectory = \"y\"").expect("settings");
        let topic = "dolbom/v1/c/door-1/event/attendance";
        // An attendance topic carrying something else (a visitor event) is not an attendance event.
        let visitor = serde_json::json!({"schema": "dolbom.visitor/1", "event_id": "01a00000-0000-7000-8000-000000000002",
            "center": "c", "kiosk": "door-1", "ts": "2026-11-25T08:42:07+09:00", "track_id": 3,
            "temperature_c": null, "temperature_status": "screening_off"});
        assert!(plan(topic, visitor.to_string().as_bytes(), &dir, &settings, 0).is_err());
        // A visitor topic, if subscribed, is recorded by id and never texted.
        let p = plan("dolbom/v1/c/door-1/event/visitor", visitor.to_string().as_bytes(), &dir, &settings, 0)
            .expect("recorded");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not an event"), "{}", p.outcome);
        assert!(plan("elsewhere/c/door-1/event/attendance", b"{}", &dir, &settings, 0).is_err());
    }
}

//! Every door's topics in: one persistent MQTT session (QoS 1, manual acknowledgements), so the
//! broker redelivers what the console did not take in; the store dedupes on event ids. A
//! message is acknowledged after it is stored. The same session publishes the staff commands.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use dolbom_backoff::Backoff;
use dolbom_contract::{
    AirEvent, AirTelemetry, AlertState, AttendanceEvent, CommandResult, FeverEvent, Kind, Roster, StatusPayload,
    TemperatureEvent, Topic, VisitorEvent,
};
use dolbom_mqtt::{Protocol, Session, SessionEvent};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

use super::commands::Queued;
use super::store::StoreError;
use super::{Center, Change};

/// The subscriptions for one center: every kiosk's events, alerts, status, roster, air, answers.
pub fn filters(center_id: &str) -> Vec<String> {
    ["event/#", "alert/+", "status", "roster", "telemetry/air", "cmd/result"]
        .iter()
        .map(|t| format!("{}/{center_id}/+/{t}", dolbom_contract::topics::PREFIX))
        .collect()
}

/// The broker side, until the process ends: connect, subscribe, take messages in and send
/// commands; reconnect with backoff.
pub async fn run(center: Arc<Center>, mut outgoing: mpsc::UnboundedReceiver<Queued>) {
    let mqtt = &center.config.mqtt;
    let id = format!("dolbom-console-{}", center.config.site.center_id);
    let options = dolbom_mqtt::ConnectOptions { persistent: true, ..mqtt.connect_options(&id) };
    let filters = filters(&center.config.site.center_id);
    let (initial, max) = mqtt.reconnect_delays();
    let mut backoff = Backoff::new(initial, max);
    let span = info_span!("intake", host = %mqtt.host, port = mqtt.port);
    async {
        loop {
            // Persistent sessions are v3.1.1 here: the broker keeps what was not acknowledged.
            let mut session = Session::new(Protocol::V311, &options);
            // Commands wait in the channel until the broker has taken the connection.
            let mut connected = false;
            loop {
                tokio::select! {
                    ev = session.poll() => match ev {
                        Ok(SessionEvent::Connected) => {
                            backoff.reset();
                            connected = true;
                            info!(filters = ?filters, "connected; subscribing");
                            for f in &filters {
                                if let Err(e) = session.subscribe(f) {
                                    warn!(error = %e, filter = %f, "subscribe failed");
                                }
                            }
                        }
                        Ok(SessionEvent::Subscribed { refused }) if refused > 0 => {
                            warn!(refused, "the broker refused a subscription (check its ACL)");
                        }
                        Ok(SessionEvent::Message { topic, payload, ack, .. }) => {
                            if let Err(e) = take_in(&center, &topic, &payload) {
                                // Not acknowledged: after the reconnect the broker sends it again.
                                warn!(error = %e, "could not store a message; reconnecting so the broker redelivers it");
                                break;
                            }
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
                    },
                    Some(q) = outgoing.recv(), if connected => {
                        // A command not sent here is answered "the kiosk did not answer" by its waiter.
                        if q.deadline <= Instant::now() {
                            warn!(topic = %q.message.topic, "command not sent: the broker was away until after its wait");
                        } else if let Err(e) = session.publish(&q.message) {
                            warn!(error = %e, topic = %q.message.topic, "command not sent");
                        }
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

/// Why a message was not taken in.
#[derive(Debug)]
enum Refused {
    /// The message itself is wrong: skipped for good.
    Malformed(String),
    /// The console's database failed: the message must come again.
    Store(StoreError),
}

impl From<String> for Refused {
    fn from(reason: String) -> Self {
        Refused::Malformed(reason)
    }
}

impl From<&str> for Refused {
    fn from(reason: &str) -> Self {
        Refused::Malformed(reason.to_string())
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

/// Stores one message and tells the live pages; a malformed one is logged, counted, skipped.
/// `Err` when the database failed: the message is not taken in and must not be acknowledged.
pub fn take_in(center: &Center, topic: &str, payload: &[u8]) -> Result<(), StoreError> {
    match read(center, topic, payload) {
        Ok(Some(change)) => center.notify(change),
        Ok(None) => {}
        Err(Refused::Malformed(reason)) => {
            center.malformed.fetch_add(1, Ordering::Relaxed);
            warn!(topic = %dolbom_contract::text::visible(topic), reason, "malformed message skipped");
        }
        Err(Refused::Store(e)) => return Err(e),
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    serde_json::from_slice(payload).map_err(|e| e.to_string())
}

/// A payload that names the door it came from.
trait Origin {
    fn origin(&self) -> (&str, &str);
}

macro_rules! origin {
    ($($t:ty),*) => {$(
        impl Origin for $t {
            fn origin(&self) -> (&str, &str) {
                (&self.center, &self.kiosk)
            }
        }
    )*};
}
origin!(
    AttendanceEvent,
    TemperatureEvent,
    VisitorEvent,
    FeverEvent,
    AlertState,
    AirTelemetry,
    AirEvent,
    StatusPayload,
    Roster
);

/// Parses a payload and checks that it names the door of its topic: the broker's ACL lets a
/// kiosk write only under its own topics, so a payload naming another door is refused rather
/// than stored as that door's.
fn parse_from<T: DeserializeOwned + Origin>(payload: &[u8], topic: &Topic) -> Result<T, String> {
    let value: T = parse(payload)?;
    let (center, kiosk) = value.origin();
    if center != topic.center || kiosk != topic.kiosk {
        return Err(format!("the payload names {center}/{kiosk} but came on {}/{}'s topic", topic.center, topic.kiosk));
    }
    Ok(value)
}

/// What the message changed, if anything.
fn read(center: &Center, topic: &str, payload: &[u8]) -> Result<Option<Change>, Refused> {
    let t = Topic::parse(topic).ok_or("not a dolbom topic")?;
    if t.center != center.config.site.center_id {
        return Err(format!("another center's topic ({})", t.center).into());
    }
    // A retained message being cleared.
    if payload.is_empty() {
        return Ok(None);
    }
    let s = &center.store;
    let changed = |new: bool, c: Change| new.then_some(c);
    Ok(match t.kind {
        Kind::Attendance => changed(s.attendance(&parse_from::<AttendanceEvent>(payload, &t)?)?, Change::Attendance),
        Kind::Temperature => changed(s.temperature(&parse_from::<TemperatureEvent>(payload, &t)?)?, Change::Attendance),
        Kind::Visitor => changed(s.visitor(&parse_from::<VisitorEvent>(payload, &t)?)?, Change::Visitors),
        Kind::Fever => changed(s.fever(&parse_from::<FeverEvent>(payload, &t)?)?, Change::Alerts),
        Kind::Alert(_) => changed(s.alert(&parse_from::<AlertState>(payload, &t)?)?, Change::Alerts),
        Kind::AirTelemetry => changed(s.air(&parse_from::<AirTelemetry>(payload, &t)?)?, Change::Air),
        Kind::AirEvent => changed(s.air_event(&parse_from::<AirEvent>(payload, &t)?)?, Change::Air),
        Kind::Status => {
            let status: StatusPayload = parse_from(payload, &t)?;
            changed(s.status(&status, jiff::Timestamp::now().as_millisecond())?, Change::Health)
        }
        Kind::Roster => changed(s.roster(&parse_from::<Roster>(payload, &t)?)?, Change::Roster),
        Kind::CommandResult => {
            let result: CommandResult = parse(payload)?;
            center.answered(&t.kiosk, result);
            None
        }
        Kind::Command(_) => {
            debug!(topic, "a command topic: not the console's to read");
            None
        }
    })
}

//! Every door's topics in: one persistent MQTT session (QoS 1, manual acknowledgements), so the
//! broker redelivers what the console did not take in; the store dedupes on event ids. A
//! message is acknowledged after it is stored. The same session publishes the staff commands.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use dolbom_backoff::Backoff;
use dolbom_contract::{
    AirEvent, AirTelemetry, AlertState, AttendanceEvent, CommandResult, FeverEvent, Kind, Roster, StatusPayload,
    TemperatureEvent, Topic, VisitorEvent,
};
use dolbom_mqtt::{Outgoing5, Protocol, Session, SessionEvent};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

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
pub async fn run(center: Arc<Center>, mut outgoing: mpsc::UnboundedReceiver<Outgoing5>) {
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
            loop {
                tokio::select! {
                    ev = session.poll() => match ev {
                        Ok(SessionEvent::Connected) => {
                            backoff.reset();
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
                            take_in(&center, &topic, &payload);
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
                    Some(m) = outgoing.recv() => {
                        // A command lost here is answered "the kiosk did not answer" by its waiter.
                        if let Err(e) = session.publish(&m) {
                            warn!(error = %e, topic = %m.topic, "command not sent");
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

/// Stores one message and tells the live pages; a malformed one is logged, counted, skipped.
pub fn take_in(center: &Center, topic: &str, payload: &[u8]) {
    match read(center, topic, payload) {
        Ok(Some(change)) => center.notify(change),
        Ok(None) => {}
        Err(reason) => {
            center.malformed.fetch_add(1, Ordering::Relaxed);
            warn!(topic = %dolbom_contract::text::visible(topic), reason, "malformed message skipped");
        }
    }
}

fn parse<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    serde_json::from_slice(payload).map_err(|e| e.to_string())
}

/// What the message changed, if anything.
fn read(center: &Center, topic: &str, payload: &[u8]) -> Result<Option<Change>, String> {
    let t = Topic::parse(topic).ok_or("not a dolbom topic")?;
    if t.center != center.config.site.center_id {
        return Err(format!("another center's topic ({})", t.center));
    }
    // A retained message being cleared.
    if payload.is_empty() {
        return Ok(None);
    }
    let s = &center.store;
    let err = |e: super::store::StoreError| e.to_string();
    let changed = |new: bool, c: Change| new.then_some(c);
    Ok(match t.kind {
        Kind::Attendance => {
            changed(s.attendance(&parse::<AttendanceEvent>(payload)?).map_err(err)?, Change::Attendance)
        }
        Kind::Temperature => {
            changed(s.temperature(&parse::<TemperatureEvent>(payload)?).map_err(err)?, Change::Attendance)
        }
        Kind::Visitor => changed(s.visitor(&parse::<VisitorEvent>(payload)?).map_err(err)?, Change::Visitors),
        Kind::Fever => changed(s.fever(&parse::<FeverEvent>(payload)?).map_err(err)?, Change::Alerts),
        Kind::Alert(_) => changed(s.alert(&parse::<AlertState>(payload)?).map_err(err)?, Change::Alerts),
        Kind::AirTelemetry => changed(s.air(&parse::<AirTelemetry>(payload)?).map_err(err)?, Change::Air),
        Kind::AirEvent => changed(s.air_event(&parse::<AirEvent>(payload)?).map_err(err)?, Change::Air),
        Kind::Status => {
            let status: StatusPayload = parse(payload)?;
            changed(s.status(&status, jiff::Timestamp::now().as_millisecond()).map_err(err)?, Change::Health)
        }
        Kind::Roster => changed(s.roster(&parse::<Roster>(payload)?).map_err(err)?, Change::Roster),
        Kind::CommandResult => {
            let result: CommandResult = parse(payload)?;
            center.answered(result);
            None
        }
        Kind::Command(_) => {
            debug!(topic, "a command topic: not the console's to read");
            None
        }
    })
}

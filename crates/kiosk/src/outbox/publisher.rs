//! The publisher: drains the outbox to the broker in order, deletes each event only after its
//! PUBACK, keeps the retained status up to date, and reconnects with backoff for as long as the
//! daemon runs. MQTT v5 when the broker speaks it (message expiry, content type, user
//! properties), v3.1.1 otherwise.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{sleep, Instant};
use tracing::{debug, error, info, info_span, warn, Instrument};

use dolbom_backoff::Backoff;
use dolbom_contract::{self as contract, StatusPayload};
use dolbom_mqtt::{BrokerConfig, ConnectOptions, Outgoing5, Protocol, Session, SessionError, SessionEvent};

use crate::health::{write_status_file, Health};
use crate::outbox::Outbox;
use crate::site::Site;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ProtocolChoice {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "5")]
    V5,
    #[serde(rename = "3.1.1")]
    V311,
}

/// The kiosk's `[mqtt]` section: the broker keys every dolbom client shares, and the keys only
/// this publisher uses, in one table. Each half refuses keys that are neither.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "toml::Table")]
pub struct MqttSection {
    pub broker: BrokerConfig,
    pub publish: PublishConfig,
}

impl TryFrom<toml::Table> for MqttSection {
    type Error = String;

    fn try_from(mut table: toml::Table) -> Result<Self, Self::Error> {
        let mut publish = toml::Table::new();
        for key in PublishConfig::KEYS {
            if let Some(v) = table.remove(key) {
                publish.insert(key.to_string(), v);
            }
        }
        // The error's own text names the key (`in `port``); an unknown key also hears of the
        // publisher's keys, which the broker's list of expected ones leaves out.
        let broker = BrokerConfig::deserialize(table).map_err(|e| {
            let text = e.to_string().trim_end().replace('\n', " ");
            if text.contains("unknown field") {
                format!("[mqtt]: {text}; or one of the publisher's: {}", PublishConfig::KEYS.join(", "))
            } else {
                format!("[mqtt]: {text}")
            }
        })?;
        let publish =
            PublishConfig::deserialize(publish).map_err(|e| format!("[mqtt]: {}", e.to_string().trim_end()))?;
        Ok(Self { broker, publish })
    }
}

impl MqttSection {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.broker.validate()?;
        self.publish.validate()
    }
}

/// What only the kiosk's publisher needs to know.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    #[serde(default = "default_protocol")]
    pub protocol: ProtocolChoice,
    /// Events older than this are not worth delivering (an arrival texted hours late misleads).
    #[serde(default = "default_event_expiry_minutes")]
    pub event_expiry_minutes: u64,
    /// Unacknowledged publishes at a time.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    #[serde(default = "default_status_interval_secs")]
    pub status_interval_secs: u64,
    /// On shutdown, how long to keep trying to deliver what is queued before going offline.
    #[serde(default = "default_drain_timeout_secs")]
    pub drain_timeout_secs: u64,
}

fn default_protocol() -> ProtocolChoice {
    ProtocolChoice::Auto
}
fn default_event_expiry_minutes() -> u64 {
    12 * 60
}
fn default_inflight() -> u16 {
    16
}
fn default_status_interval_secs() -> u64 {
    30
}
fn default_drain_timeout_secs() -> u64 {
    10
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            protocol: default_protocol(),
            event_expiry_minutes: default_event_expiry_minutes(),
            inflight: default_inflight(),
            status_interval_secs: default_status_interval_secs(),
            drain_timeout_secs: default_drain_timeout_secs(),
        }
    }
}

impl PublishConfig {
    const KEYS: [&'static str; 5] =
        ["protocol", "event_expiry_minutes", "inflight", "status_interval_secs", "drain_timeout_secs"];

    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        use dolbom_face::config::in_range;
        // The largest sensible values, not the largest representable ones: each keeps a
        // duration far from overflowing a clock, and a human from waiting forever.
        in_range("mqtt.inflight", self.inflight, 1, 1000)?;
        // A week: an arrival texted later than that misleads more than it informs.
        in_range("mqtt.event_expiry_minutes", self.event_expiry_minutes, 1, 7 * 24 * 60)?;
        in_range("mqtt.status_interval_secs", self.status_interval_secs, 1, 3600)?;
        in_range("mqtt.drain_timeout_secs", self.drain_timeout_secs, 0, 600)
    }
}

/// The retained status payload: whether the kiosk is up, and its health.
pub fn status(site: &Site, state: &str, health: Option<&Health>) -> StatusPayload {
    StatusPayload {
        schema: contract::STATUS_SCHEMA.into(),
        state: state.into(),
        center: site.center.clone(),
        kiosk: site.kiosk.clone(),
        ts: site.now(),
        version: env!("CARGO_PKG_VERSION").into(),
        health: health.map(Health::summary),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Event(i64),
    Status {
        last: bool,
    },
    /// An empty retained message that clears what was retained on a command topic.
    Clear,
}

fn clear_retained(topic: &str) -> Outgoing5 {
    Outgoing5 { topic: topic.into(), payload: Vec::new(), retain: true, expiry_secs: None, user_properties: Vec::new() }
}

enum Outcome {
    Finished,
    /// `connected`: the handshake had succeeded; `refused`: the broker turned an event down.
    Lost {
        error: SessionError,
        connected: bool,
        refused: bool,
    },
}

pub struct Publisher {
    pub broker: BrokerConfig,
    pub config: PublishConfig,
    pub site: Site,
    pub outbox: Outbox,
    pub health: Arc<Health>,
    pub status_file: Option<std::path::PathBuf>,
    /// Where messages on the command topics go.
    pub commands: Option<tokio::sync::mpsc::Sender<(String, Vec<u8>)>>,
}

impl Publisher {
    /// Runs until `upstream_done` turns true and the outbox is drained (or the drain timeout
    /// passes), then publishes the offline status and disconnects.
    pub async fn run(self, mut upstream_done: watch::Receiver<bool>) {
        let span = info_span!("mqtt", host = %self.broker.host, port = self.broker.port);
        async move {
            let mut protocol = match self.config.protocol {
                ProtocolChoice::V311 => Protocol::V311,
                _ => Protocol::V5,
            };
            let (initial, max) = self.broker.reconnect_delays();
            let mut backoff = Backoff::new(initial, max);
            let mut deadline: Option<Instant> = None;
            loop {
                let mut session = Session::new(protocol, &self.connect_options());
                match self.serve(&mut session, &mut upstream_done, &mut deadline).await {
                    Outcome::Finished => break,
                    Outcome::Lost { error, connected, refused } => {
                        self.health.broker_connected.store(false, Ordering::Relaxed);
                        self.health.set_mqtt_protocol(None);
                        self.write_status("online");
                        // A connection that came up resets the backoff; one refused right away does not.
                        if connected && !refused {
                            backoff.reset();
                        }
                        let delay = backoff.next_delay();
                        let protocol_problem = !connected && matches!(error, SessionError::Connection(_));
                        if protocol_problem && self.config.protocol == ProtocolChoice::Auto {
                            protocol = if protocol == Protocol::V5 { Protocol::V311 } else { Protocol::V5 };
                            info!(error = %error, next = protocol.name(), "broker refused the handshake; trying the other MQTT version");
                        } else {
                            warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "broker connection lost");
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            warn!(left = self.outbox.depth().unwrap_or(0), "shutting down without a broker; queued events stay on disk");
                            break;
                        }
                        tokio::select! {
                            _ = sleep(delay) => {}
                            _ = upstream_done.changed(), if deadline.is_none() => {
                                deadline = Some(Instant::now() + Duration::from_secs(self.config.drain_timeout_secs));
                            }
                        }
                    }
                }
            }
            self.health.broker_connected.store(false, Ordering::Relaxed);
            self.write_status("offline");
        }
        .instrument(span)
        .await
    }

    fn connect_options(&self) -> ConnectOptions {
        let will = status(&self.site, "offline", None);
        ConnectOptions {
            will: Some(Outgoing5 {
                topic: self.site.topics.status(),
                payload: serde_json::to_vec(&will).unwrap_or_default(),
                retain: true,
                expiry_secs: None,
                user_properties: Vec::new(),
            }),
            inflight: self.config.inflight,
            ..self.broker.connect_options(&self.site.client_id())
        }
    }

    /// The status now: written to the status file and returned as the retained message, from
    /// one snapshot (two would let `dolbom status` and the broker disagree about the same moment).
    fn status_message(&self, state: &str) -> Outgoing5 {
        let status = status(&self.site, state, Some(&self.health));
        self.write_status_file(&status);
        Outgoing5 {
            topic: self.site.topics.status(),
            payload: serde_json::to_vec(&status).unwrap_or_default(),
            retain: true,
            expiry_secs: None,
            user_properties: vec![("schema".into(), contract::STATUS_SCHEMA.into())],
        }
    }

    fn write_status(&self, state: &str) {
        self.write_status_file(&status(&self.site, state, Some(&self.health)));
    }

    fn write_status_file(&self, status: &StatusPayload) {
        if let Some(path) = &self.status_file {
            if let Err(e) = write_status_file(path, status) {
                debug!(error = %e, "status file not written");
            }
        }
    }

    async fn serve(
        &self,
        session: &mut Session,
        upstream_done: &mut watch::Receiver<bool>,
        deadline: &mut Option<Instant>,
    ) -> Outcome {
        let window = usize::from(self.config.inflight);
        let mut requested: VecDeque<Pending> = VecDeque::new();
        let mut by_pkid: HashMap<u16, Pending> = HashMap::new();
        let mut connected = false;
        let mut last_sent = 0i64;
        // Set once the offline status is on its way; past it, stop waiting for its PUBACK.
        let mut offline_by: Option<Instant> = None;
        // The first status goes out on connect; the ticks refresh it.
        let period = Duration::from_secs(self.config.status_interval_secs);
        let mut status_tick = tokio::time::interval_at(Instant::now() + period, period);
        let queued = self.outbox.queued().clone();
        let mut outbox_poll = tokio::time::interval(Duration::from_secs(1));
        loop {
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                ev = session.poll() => match ev {
                    Err(error) => return Outcome::Lost { error, connected, refused: false },
                    Ok(SessionEvent::Connected) => {
                        connected = true;
                        info!(protocol = session.protocol().name(), "connected to broker");
                        self.health.broker_connected.store(true, Ordering::Relaxed);
                        self.health.set_mqtt_protocol(Some(session.protocol().name()));
                        if session.publish(&self.status_message("online")).is_ok() {
                            requested.push_back(Pending::Status { last: false });
                        }
                        // Every connection is a clean session: subscribe again each time.
                        if self.commands.is_some() {
                            for topic in self.site.topics.commands() {
                                if let Err(e) = session.subscribe(&topic) {
                                    warn!(error = %e, topic, "could not subscribe");
                                }
                            }
                        }
                    }
                    Ok(SessionEvent::Message { topic, payload, retain, .. }) => {
                        if retain {
                            // A command is an act of a staff member now; one the broker kept
                            // from some time ago is not, and garbage kept there would come
                            // back on every connection. Ignored, and cleared (we may publish
                            // under our own root).
                            self.health.mqtt_ignored.fetch_add(1, Ordering::Relaxed);
                            warn!(topic = %topic.escape_debug(), bytes = payload.len(), "retained message on a command topic ignored and cleared");
                            if !payload.is_empty() && session.publish(&clear_retained(&topic)).is_ok() {
                                requested.push_back(Pending::Clear);
                            }
                        } else if payload.is_empty() {
                            // What clearing a retained message sends to live subscribers.
                        } else if let Some(tx) = &self.commands {
                            if tx.try_send((topic, payload)).is_err() {
                                self.health.mqtt_ignored.fetch_add(1, Ordering::Relaxed);
                                warn!("command queue full; command dropped (the sender gets no result and may retry)");
                            }
                        }
                    }
                    Ok(SessionEvent::Refused { topic, retain, .. }) => {
                        // Logged by the session; v5 brokers do not even send these.
                        self.health.mqtt_ignored.fetch_add(1, Ordering::Relaxed);
                        if retain && session.publish(&clear_retained(&topic)).is_ok() {
                            requested.push_back(Pending::Clear);
                        }
                    }
                    Ok(SessionEvent::Sent(pkid)) => {
                        if let Some(p) = requested.pop_front() {
                            by_pkid.insert(pkid, p);
                        }
                    }
                    Ok(SessionEvent::Acked { pkid, ok, reason }) => match by_pkid.remove(&pkid) {
                        Some(Pending::Event(seq)) if ok => {
                            if let Err(e) = self.outbox.ack(seq) {
                                warn!(error = %e, seq, "acknowledged event could not be removed; it may be sent again");
                            }
                            self.health.events_published.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Pending::Event(seq)) => {
                            let reason = reason.unwrap_or_default();
                            if PERMANENT_REFUSALS.contains(&reason.as_str()) {
                                // Retrying cannot help and would block every event behind it.
                                error!(seq, reason, "broker refused the event for good; dropped (check the broker's ACL)");
                                let _ = self.outbox.discard_expired(seq);
                            } else {
                                // Keep the event; the next connection retries it from the outbox.
                                let error = SessionError::Connection(format!("broker refused event {seq}: {reason}"));
                                return Outcome::Lost { error, connected, refused: true };
                            }
                        }
                        Some(Pending::Status { last: true }) => {
                            finish(session).await;
                            info!("offline status published; disconnected");
                            return Outcome::Finished;
                        }
                        _ => {}
                    },
                    Ok(_) => {}
                },
                _ = queued.notified(), if connected => {}
                // Other processes (`dolbom alerts`) queue messages too: look every second.
                _ = outbox_poll.tick(), if connected => {}
                _ = status_tick.tick(), if offline_by.is_none() => {
                    if !connected {
                        self.write_status("online");
                    } else if session.publish(&self.status_message("online")).is_ok() {
                        requested.push_back(Pending::Status { last: false });
                    }
                }
                _ = upstream_done.changed(), if deadline.is_none() => {
                    *deadline = Some(Instant::now() + Duration::from_secs(self.config.drain_timeout_secs));
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && offline_by.is_none() => {
                    if !connected {
                        return Outcome::Lost {
                            error: SessionError::Network("drain timeout while disconnected".into()),
                            connected,
                            refused: false,
                        };
                    }
                    warn!(left = self.outbox.depth().unwrap_or(0), "drain timeout: going offline with events still queued");
                    if !self.go_offline(session, &mut requested, &mut offline_by) {
                        finish(session).await;
                        return Outcome::Finished;
                    }
                }
                _ = tokio::time::sleep_until(offline_by.unwrap_or(far)), if offline_by.is_some() => {
                    warn!("no acknowledgement for the offline status; disconnecting anyway");
                    finish(session).await;
                    return Outcome::Finished;
                }
            }
            if !connected || offline_by.is_some() {
                continue;
            }
            // Top up the in-flight window from the outbox, oldest first.
            let events_in_flight = |r: &VecDeque<Pending>, m: &HashMap<u16, Pending>| {
                r.iter().chain(m.values()).filter(|p| matches!(p, Pending::Event(_))).count()
            };
            let mut room = window.saturating_sub(requested.len() + by_pkid.len());
            while room > 0 {
                let batch = match self.outbox.pending_after(last_sent, room) {
                    Ok(b) => b,
                    Err(e) => {
                        warn!(error = %e, "outbox unreadable");
                        break;
                    }
                };
                if batch.is_empty() {
                    break;
                }
                let now_ms = Timestamp::now().as_millisecond();
                for m in batch {
                    if m.expires_ms.is_some_and(|e| e <= now_ms) {
                        warn!(seq = m.seq, kind = %m.kind, "event expired while queued; dropped");
                        let _ = self.outbox.discard_expired(m.seq);
                        last_sent = m.seq;
                        continue;
                    }
                    let out = Outgoing5 {
                        topic: m.topic.clone(),
                        payload: m.payload.clone(),
                        retain: m.retain,
                        expiry_secs: m
                            .expires_ms
                            .map(|e| (((e - now_ms) / 1000).max(1)).min(i64::from(u32::MAX)) as u32),
                        user_properties: vec![("kind".into(), m.kind.clone())],
                    };
                    if session.publish(&out).is_err() {
                        room = 0;
                        break;
                    }
                    requested.push_back(Pending::Event(m.seq));
                    last_sent = m.seq;
                    room -= 1;
                }
            }
            let drained = deadline.is_some()
                && events_in_flight(&requested, &by_pkid) == 0
                && self.outbox.depth().map(|d| d == 0).unwrap_or(false);
            if drained && !self.go_offline(session, &mut requested, &mut offline_by) {
                finish(session).await;
                return Outcome::Finished;
            }
        }
    }

    /// Queues the retained offline status; false when it could not even be queued.
    fn go_offline(
        &self,
        session: &Session,
        requested: &mut VecDeque<Pending>,
        offline_by: &mut Option<Instant>,
    ) -> bool {
        *offline_by = Some(Instant::now() + OFFLINE_ACK_TIMEOUT);
        if session.publish(&self.status_message("offline")).is_ok() {
            requested.push_back(Pending::Status { last: true });
            true
        } else {
            false
        }
    }
}

/// v5 PUBACK reasons after which sending the same message again cannot succeed.
const PERMANENT_REFUSALS: [&str; 3] = ["NotAuthorized", "TopicNameInvalid", "PayloadFormatInvalid"];

const OFFLINE_ACK_TIMEOUT: Duration = Duration::from_secs(3);

/// Sends DISCONNECT and gives the event loop a moment to write it, so the broker does not
/// publish the Last Will over the offline status just sent.
async fn finish(session: &mut Session) {
    session.disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(ev) = session.poll().await {
            if matches!(ev, SessionEvent::Disconnected) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that once panicked a stage (a huge status interval at start, a huge drain timeout
    /// at SIGTERM) or expired every event at once (a huge expiry) are refused by name.
    #[test]
    fn every_publisher_number_is_bounded_and_the_error_names_its_key() {
        // TOML integers are i64: the largest a file can hold.
        let huge = i64::MAX.to_string();
        for (toml, key) in [
            ("inflight = 0".to_string(), "mqtt.inflight"),
            ("inflight = 65535".to_string(), "mqtt.inflight"),
            ("event_expiry_minutes = 0".to_string(), "mqtt.event_expiry_minutes"),
            (format!("event_expiry_minutes = {huge}"), "mqtt.event_expiry_minutes"),
            (format!("event_expiry_minutes = {}", i64::MAX as u64 / 60_000 + 1), "mqtt.event_expiry_minutes"),
            ("status_interval_secs = 0".to_string(), "mqtt.status_interval_secs"),
            (format!("status_interval_secs = {huge}"), "mqtt.status_interval_secs"),
            (format!("drain_timeout_secs = {huge}"), "mqtt.drain_timeout_secs"),
            ("port = 0".to_string(), "mqtt.port"),
            ("max_message_kib = 0".to_string(), "mqtt.max_message_kib"),
        ] {
            let section: MqttSection = toml::from_str(&toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
            assert_eq!(section.validate().map_err(|e| e.0), Err(key), "{toml}");
        }
        let defaults: MqttSection = toml::from_str("").expect("defaults");
        assert!(defaults.validate().is_ok());
    }
}

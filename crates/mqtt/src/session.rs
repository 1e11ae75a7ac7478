//! One MQTT connection, v5 or v3.1.1, behind one small interface. A new session (client and
//! event loop) is made for every connection attempt, so no state of rumqttc's survives a
//! reconnect: the kiosk's outbox alone decides what is sent again, and a subscriber with a
//! persistent session relies on the broker, which redelivers what was not acknowledged.
//!
//! The event loop runs in its own task and reports over a channel: rumqttc's `poll()` is not
//! safe to cancel mid-write, and the publisher waits on several things at once.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWillProperties, PubAckReason, PublishProperties};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::{v5, ConnectionError, Event, Incoming, Outgoing, QoS};
use tracing::warn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V311,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V5 => "5",
            Protocol::V311 => "3.1.1",
        }
    }
}

/// What a message looks like on the wire, whatever the protocol.
#[derive(Debug, Clone)]
pub struct Outgoing5 {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// Seconds the broker may hold the message (v5 only).
    pub expiry_secs: Option<u32>,
    pub user_properties: Vec<(String, String)>,
}

#[derive(Debug)]
pub enum SessionEvent {
    Connected,
    /// A QoS 1 publish went out with this packet id (in the order they were requested).
    Sent(u16),
    /// The broker acknowledged a publish; `ok` is false when it refused it (v5 reason code).
    Acked {
        pkid: u16,
        ok: bool,
        reason: Option<String>,
    },
    Message {
        topic: String,
        payload: Vec<u8>,
        /// The broker held it as the topic's retained message (sent on subscribing).
        retain: bool,
        /// For a session with manual acknowledgements: hand it to [`Session::ack`] once the
        /// message is safely taken in.
        ack: Option<AckToken>,
    },
    /// A message bigger than [`ConnectOptions::max_message_bytes`]: already acknowledged and
    /// dropped by the session (logged there); reported so the client can count it.
    Refused {
        topic: String,
        bytes: usize,
        retain: bool,
    },
    /// The broker answered a SUBSCRIBE; `refused` counts the filters it turned down.
    Subscribed {
        refused: usize,
    },
    /// Our DISCONNECT went out.
    Disconnected,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Connection(String),
    #[error("client request queue is full")]
    QueueFull,
    /// The TCP connection itself failed: nothing to learn about the broker's protocol.
    #[error("{0}")]
    Network(String),
    /// The TLS handshake failed (certificate, name, or a plain listener), explained.
    #[error("{0}")]
    Tls(String),
}

pub struct ConnectOptions {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub keep_alive: Duration,
    pub credentials: Option<(String, String)>,
    pub will: Option<Outgoing5>,
    pub inflight: u16,
    /// A persistent session (v3.1.1 only) with manual acknowledgements: what was delivered but
    /// not acknowledged comes again on the next connection. Otherwise a clean session.
    pub persistent: bool,
    /// The largest payload a subscriber takes in. A bigger message is acknowledged and dropped
    /// by the session itself, so no message can stop a client (see [`Session::new`]).
    pub max_message_bytes: usize,
    /// MQTT over TLS with these settings (see [`crate::TlsConfig`]); None: plain TCP.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// Room for a PUBLISH packet's topic and properties on top of its payload.
const HEADER_ALLOWANCE: usize = 4096;

/// The largest packet MQTT can carry (a 4-byte remaining length, plus the fixed header).
const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// What acknowledges one received message of a persistent session (opaque: the packet itself).
#[derive(Debug)]
pub struct AckToken(rumqttc::Publish);

enum Client {
    V5(v5::AsyncClient),
    V311(rumqttc::AsyncClient),
}

pub struct Session {
    client: Client,
    events: Events,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    /// One connection attempt. Oversized messages never reach the client and never end the
    /// connection: under v5 the CONNECT announces a maximum packet size, so the broker does not
    /// send them at all; v3.1.1 has no such field, so its reader accepts any packet the protocol
    /// allows (a refused read would drop the connection, and a persistent session would get the
    /// same message again forever) and the driver acknowledges and drops what is too big.
    /// A broker's own `max_packet_size` bounds that read.
    pub fn new(protocol: Protocol, o: &ConnectOptions) -> Self {
        let cap = usize::from(o.inflight) * 2 + 8;
        let limit = o.max_message_bytes;
        match protocol {
            Protocol::V5 => {
                let mut opts = v5::MqttOptions::new(&o.client_id, &o.host, o.port);
                opts.set_keep_alive(o.keep_alive).set_clean_start(true);
                opts.set_max_packet_size(Some(u32::try_from(limit + HEADER_ALLOWANCE).unwrap_or(u32::MAX)));
                if let Some((u, p)) = &o.credentials {
                    opts.set_credentials(u, p);
                }
                if let Some(will) = &o.will {
                    opts.set_last_will(last_will_v5(will));
                }
                opts.set_outgoing_inflight_upper_limit(o.inflight.max(1));
                if let Some(tls) = &o.tls {
                    opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(tls.clone())));
                }
                let (c, e) = v5::AsyncClient::new(opts, cap);
                let (events, driver) = spawn_driver(e, Policy { limit, acker: None, tls: o.tls.is_some() });
                Session { client: Client::V5(c), events, driver }
            }
            Protocol::V311 => {
                let mut opts = rumqttc::MqttOptions::new(&o.client_id, &o.host, o.port);
                opts.set_keep_alive(o.keep_alive)
                    .set_clean_session(!o.persistent)
                    .set_manual_acks(o.persistent)
                    .set_inflight(o.inflight.max(1))
                    .set_max_packet_size(MQTT_MAX_PACKET, limit + HEADER_ALLOWANCE);
                if let Some((u, p)) = &o.credentials {
                    opts.set_credentials(u, p);
                }
                if let Some(will) = &o.will {
                    opts.set_last_will(rumqttc::LastWill::new(
                        &will.topic,
                        will.payload.clone(),
                        QoS::AtLeastOnce,
                        will.retain,
                    ));
                }
                if let Some(tls) = &o.tls {
                    opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(tls.clone())));
                }
                let (c, e) = rumqttc::AsyncClient::new(opts, cap);
                let acker = o.persistent.then(|| c.clone());
                let (events, driver) = spawn_driver(e, Policy { limit, acker, tls: o.tls.is_some() });
                Session { client: Client::V311(c), events, driver }
            }
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self.client {
            Client::V5(_) => Protocol::V5,
            Client::V311(_) => Protocol::V311,
        }
    }

    /// Queues a QoS 1 publish without waiting.
    pub fn publish(&self, m: &Outgoing5) -> Result<(), SessionError> {
        match &self.client {
            Client::V5(c) => {
                let props = PublishProperties {
                    payload_format_indicator: Some(1),
                    message_expiry_interval: m.expiry_secs,
                    content_type: Some(dolbom_contract::CONTENT_TYPE.into()),
                    user_properties: m.user_properties.clone(),
                    ..Default::default()
                };
                c.try_publish_with_properties(&m.topic, QoS5::AtLeastOnce, m.retain, m.payload.clone(), props)
                    .map_err(|_| SessionError::QueueFull)
            }
            Client::V311(c) => c
                .try_publish(&m.topic, QoS::AtLeastOnce, m.retain, m.payload.clone())
                .map_err(|_| SessionError::QueueFull),
        }
    }

    pub fn subscribe(&self, filter: &str) -> Result<(), SessionError> {
        match &self.client {
            Client::V5(c) => c.try_subscribe(filter, QoS5::AtLeastOnce).map_err(|_| SessionError::QueueFull),
            Client::V311(c) => c.try_subscribe(filter, QoS::AtLeastOnce).map_err(|_| SessionError::QueueFull),
        }
    }

    /// Acknowledges a message of a persistent session (see [`ConnectOptions::persistent`]).
    /// Waits for room in the request queue rather than lose an acknowledgement.
    pub async fn ack(&self, token: AckToken) -> Result<(), SessionError> {
        match &self.client {
            Client::V311(c) => c.ack(&token.0).await.map_err(|e| SessionError::Connection(e.to_string())),
            // Persistent sessions are v3.1.1; a v5 session acknowledges by itself.
            Client::V5(_) => Ok(()),
        }
    }

    pub fn disconnect(&self) {
        let _ = match &self.client {
            Client::V5(c) => c.try_disconnect().is_ok(),
            Client::V311(c) => c.try_disconnect().is_ok(),
        };
    }

    /// The next thing that happened on the connection. Safe to cancel.
    pub async fn poll(&mut self) -> Result<SessionEvent, SessionError> {
        match self.events.recv().await {
            Some(ev) => ev,
            None => Err(SessionError::Connection("MQTT event loop ended".into())),
        }
    }
}

/// Either protocol's event loop, mapped to [`SessionEvent`]s.
trait EventSource: Send + 'static {
    fn next(&mut self) -> impl std::future::Future<Output = Result<SessionEvent, SessionError>> + Send;
}

impl EventSource for v5::EventLoop {
    async fn next(&mut self) -> Result<SessionEvent, SessionError> {
        map_v5(self.poll().await)
    }
}

impl EventSource for rumqttc::EventLoop {
    async fn next(&mut self) -> Result<SessionEvent, SessionError> {
        map_v311(self.poll().await)
    }
}

type Events = tokio::sync::mpsc::UnboundedReceiver<Result<SessionEvent, SessionError>>;

/// What the driver does with a message too big to take in.
struct Policy {
    limit: usize,
    /// A persistent session's client, to acknowledge a dropped message (a clean session's
    /// messages are acknowledged by rumqttc).
    acker: Option<rumqttc::AsyncClient>,
    /// Whether the connection is TLS, to explain a broker that hangs up before CONNACK.
    tls: bool,
}

impl Policy {
    fn apply(&self, ev: SessionEvent) -> SessionEvent {
        match ev {
            SessionEvent::Message { topic, payload, retain, ack } if payload.len() > self.limit => {
                warn!(
                    topic = %printable(&topic),
                    bytes = payload.len(),
                    limit = self.limit,
                    retain,
                    "MQTT message too big: acknowledged and dropped"
                );
                if let (Some(client), Some(AckToken(publish))) = (&self.acker, ack) {
                    // Queued from its own task: the driver must not wait for room in the request
                    // queue it alone drains.
                    let client = client.clone();
                    tokio::spawn(async move {
                        let _ = client.ack(&publish).await;
                    });
                }
                SessionEvent::Refused { topic, bytes: payload.len(), retain }
            }
            ev => ev,
        }
    }
}

/// An error that means the peer closed or reset the connection.
fn hung_up(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    ["reset by peer", "connection closed", "unexpected eof", "broken pipe", "aborted"].iter().any(|w| e.contains(w))
}

/// A topic as it may be logged: control characters escaped, long ones cut.
fn printable(topic: &str) -> String {
    dolbom_contract::text::visible_cut(topic, 200)
}

/// Polls the event loop in its own task until the connection fails or the session is dropped.
///
/// The channel is unbounded in type on purpose: requests (publishes, acknowledgements) only
/// leave while the loop is polled, so a driver waiting for room in a full channel while its
/// consumer waits to queue an acknowledgement would deadlock both. It is bounded in practice by
/// the in-flight windows: the broker's for QoS 1 deliveries not yet acknowledged, ours for
/// publishes.
fn spawn_driver(mut source: impl EventSource, policy: Policy) -> (Events, tokio::task::JoinHandle<()>) {
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut connected = false;
        loop {
            let ev = source.next().await.map(|ev| policy.apply(ev));
            connected |= matches!(ev, Ok(SessionEvent::Connected));
            let ev = match ev {
                // A TLS listener hangs up on a plain CONNECT without a word; say what it may be.
                Err(SessionError::Network(e) | SessionError::Connection(e))
                    if !connected && !policy.tls && hung_up(&e) =>
                {
                    Err(SessionError::Network(format!(
                        "{e}: the broker closed the connection before answering CONNECT; if mqtt.port is a TLS \
                         listener, configure [mqtt.tls] (or check the broker's log for why it refused us)"
                    )))
                }
                ev => ev,
            };
            let end = ev.is_err();
            if tx.send(ev).is_err() || end {
                break;
            }
        }
    });
    (events, driver)
}

fn map_v5(r: Result<v5::Event, v5::ConnectionError>) -> Result<SessionEvent, SessionError> {
    match r {
        Ok(v5::Event::Incoming(p)) => Ok(match p {
            v5::mqttbytes::v5::Packet::ConnAck(_) => SessionEvent::Connected,
            v5::mqttbytes::v5::Packet::PubAck(ack) => {
                let ok = matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers);
                let reason = (!ok).then(|| format!("{:?}", ack.reason));
                SessionEvent::Acked { pkid: ack.pkid, ok, reason }
            }
            v5::mqttbytes::v5::Packet::Publish(p) => SessionEvent::Message {
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: p.payload.to_vec(),
                retain: p.retain,
                // v5 sessions here are clean, acknowledged by rumqttc itself.
                ack: None,
            },
            v5::mqttbytes::v5::Packet::SubAck(ack) => SessionEvent::Subscribed {
                refused: ack
                    .return_codes
                    .iter()
                    .filter(|c| !matches!(c, v5::mqttbytes::v5::SubscribeReasonCode::Success(_)))
                    .count(),
            },
            _ => SessionEvent::Other,
        }),
        Ok(v5::Event::Outgoing(Outgoing::Publish(pkid))) => Ok(SessionEvent::Sent(pkid)),
        Ok(v5::Event::Outgoing(Outgoing::Disconnect)) => Ok(SessionEvent::Disconnected),
        Ok(v5::Event::Outgoing(_)) => Ok(SessionEvent::Other),
        Err(v5::ConnectionError::Io(e)) => Err(SessionError::Network(e.to_string())),
        Err(v5::ConnectionError::Tls(e)) => Err(SessionError::Tls(crate::tls::explain(&e))),
        Err(e) => Err(SessionError::Connection(e.to_string())),
    }
}

fn map_v311(r: Result<Event, ConnectionError>) -> Result<SessionEvent, SessionError> {
    match r {
        Ok(Event::Incoming(p)) => Ok(match p {
            Incoming::ConnAck(_) => SessionEvent::Connected,
            Incoming::PubAck(ack) => SessionEvent::Acked { pkid: ack.pkid, ok: true, reason: None },
            Incoming::Publish(p) => SessionEvent::Message {
                topic: p.topic.clone(),
                payload: p.payload.to_vec(),
                retain: p.retain,
                // Only a session with manual acknowledgements waits for this.
                ack: Some(AckToken(p)),
            },
            Incoming::SubAck(ack) => SessionEvent::Subscribed {
                refused: ack.return_codes.iter().filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)).count(),
            },
            _ => SessionEvent::Other,
        }),
        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Ok(SessionEvent::Sent(pkid)),
        Ok(Event::Outgoing(Outgoing::Disconnect)) => Ok(SessionEvent::Disconnected),
        Ok(Event::Outgoing(_)) => Ok(SessionEvent::Other),
        Err(ConnectionError::Io(e)) => Err(SessionError::Network(e.to_string())),
        Err(ConnectionError::Tls(e)) => Err(SessionError::Tls(crate::tls::explain(&e))),
        Err(e) => Err(SessionError::Connection(e.to_string())),
    }
}

fn last_will_v5(will: &Outgoing5) -> v5::mqttbytes::v5::LastWill {
    let props = LastWillProperties {
        delay_interval: None,
        payload_format_indicator: Some(1),
        message_expiry_interval: None,
        content_type: Some(dolbom_contract::CONTENT_TYPE.into()),
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    v5::mqttbytes::v5::LastWill::new(&will.topic, will.payload.clone(), QoS5::AtLeastOnce, will.retain, Some(props))
}

//! One MQTT connection, v5 or v3.1.1, behind one small interface. A new session (client and
//! event loop) is made for every connection attempt, so no state of rumqttc's survives a
//! reconnect: the outbox alone decides what is sent again.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWillProperties, PubAckReason, PublishProperties};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::{v5, ConnectionError, Event, Incoming, Outgoing, QoS};

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
    },
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
}

pub struct ConnectOptions {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub keep_alive: Duration,
    pub credentials: Option<(String, String)>,
    pub will: Outgoing5,
    pub inflight: u16,
}

// One session lives at a time; boxing the event loops would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Session {
    V5(v5::AsyncClient, v5::EventLoop),
    V311(rumqttc::AsyncClient, rumqttc::EventLoop),
}

impl Session {
    pub fn new(protocol: Protocol, o: &ConnectOptions) -> Self {
        let cap = usize::from(o.inflight) * 2 + 8;
        match protocol {
            Protocol::V5 => {
                let mut opts = v5::MqttOptions::new(&o.client_id, &o.host, o.port);
                opts.set_keep_alive(o.keep_alive).set_clean_start(true);
                if let Some((u, p)) = &o.credentials {
                    opts.set_credentials(u, p);
                }
                let props = LastWillProperties {
                    delay_interval: None,
                    payload_format_indicator: Some(1),
                    message_expiry_interval: None,
                    content_type: Some(crate::contract::CONTENT_TYPE.into()),
                    response_topic: None,
                    correlation_data: None,
                    user_properties: Vec::new(),
                };
                opts.set_last_will(v5::mqttbytes::v5::LastWill::new(
                    &o.will.topic,
                    o.will.payload.clone(),
                    QoS5::AtLeastOnce,
                    o.will.retain,
                    Some(props),
                ));
                let (c, e) = v5::AsyncClient::new(opts, cap);
                Session::V5(c, e)
            }
            Protocol::V311 => {
                let mut opts = rumqttc::MqttOptions::new(&o.client_id, &o.host, o.port);
                opts.set_keep_alive(o.keep_alive).set_clean_session(true).set_inflight(o.inflight.max(1));
                if let Some((u, p)) = &o.credentials {
                    opts.set_credentials(u, p);
                }
                opts.set_last_will(rumqttc::LastWill::new(
                    &o.will.topic,
                    o.will.payload.clone(),
                    QoS::AtLeastOnce,
                    o.will.retain,
                ));
                let (c, e) = rumqttc::AsyncClient::new(opts, cap);
                Session::V311(c, e)
            }
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            Session::V5(..) => Protocol::V5,
            Session::V311(..) => Protocol::V311,
        }
    }

    /// Queues a QoS 1 publish without waiting.
    pub fn publish(&self, m: &Outgoing5) -> Result<(), SessionError> {
        match self {
            Session::V5(c, _) => {
                let props = PublishProperties {
                    payload_format_indicator: Some(1),
                    message_expiry_interval: m.expiry_secs,
                    content_type: Some(crate::contract::CONTENT_TYPE.into()),
                    user_properties: m.user_properties.clone(),
                    ..Default::default()
                };
                c.try_publish_with_properties(&m.topic, QoS5::AtLeastOnce, m.retain, m.payload.clone(), props)
                    .map_err(|_| SessionError::QueueFull)
            }
            Session::V311(c, _) => c
                .try_publish(&m.topic, QoS::AtLeastOnce, m.retain, m.payload.clone())
                .map_err(|_| SessionError::QueueFull),
        }
    }

    pub fn subscribe(&self, filter: &str) -> Result<(), SessionError> {
        match self {
            Session::V5(c, _) => c.try_subscribe(filter, QoS5::AtLeastOnce).map_err(|_| SessionError::QueueFull),
            Session::V311(c, _) => c.try_subscribe(filter, QoS::AtLeastOnce).map_err(|_| SessionError::QueueFull),
        }
    }

    pub fn disconnect(&self) {
        let _ = match self {
            Session::V5(c, _) => c.try_disconnect().is_ok(),
            Session::V311(c, _) => c.try_disconnect().is_ok(),
        };
    }

    pub async fn poll(&mut self) -> Result<SessionEvent, SessionError> {
        match self {
            Session::V5(_, e) => match e.poll().await {
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
                    },
                    _ => SessionEvent::Other,
                }),
                Ok(v5::Event::Outgoing(Outgoing::Publish(pkid))) => Ok(SessionEvent::Sent(pkid)),
                Ok(v5::Event::Outgoing(_)) => Ok(SessionEvent::Other),
                Err(v5::ConnectionError::Io(e)) => Err(SessionError::Network(e.to_string())),
                Err(e) => Err(SessionError::Connection(e.to_string())),
            },
            Session::V311(_, e) => match e.poll().await {
                Ok(Event::Incoming(p)) => Ok(match p {
                    Incoming::ConnAck(_) => SessionEvent::Connected,
                    Incoming::PubAck(ack) => SessionEvent::Acked { pkid: ack.pkid, ok: true, reason: None },
                    Incoming::Publish(p) => SessionEvent::Message { topic: p.topic, payload: p.payload.to_vec() },
                    _ => SessionEvent::Other,
                }),
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Ok(SessionEvent::Sent(pkid)),
                Ok(Event::Outgoing(_)) => Ok(SessionEvent::Other),
                Err(ConnectionError::Io(e)) => Err(SessionError::Network(e.to_string())),
                Err(e) => Err(SessionError::Connection(e.to_string())),
            },
        }
    }
}

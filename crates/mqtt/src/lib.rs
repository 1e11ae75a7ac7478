//! One MQTT connection for every dolbom client (the kiosk's publisher, the relay, and the
//! clients to come): broker options as a config section, and a session that hides whether
//! the broker speaks v5 or v3.1.1.

pub mod broker;
pub mod session;
pub mod tls;

pub use broker::{BrokerConfig, LoadError};
pub use session::{AckToken, ConnectOptions, Outgoing5, Protocol, Session, SessionError, SessionEvent};
pub use tls::{TlsConfig, TlsError};

//! The durable outbox: every message is committed to disk before it is published ([`queue`]),
//! and the publisher drains it to the broker in order, deleting each only after its PUBACK
//! ([`publisher`]).

pub mod publisher;
pub mod queue;

pub use publisher::{PublishConfig, Publisher};
pub use queue::*;

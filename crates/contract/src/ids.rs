//! Who appears in messages: people by id and role, centers and kiosks by id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Child,
    Guardian,
    Staff,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Child => "child",
            Role::Guardian => "guardian",
            Role::Staff => "staff",
        })
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "child" => Ok(Role::Child),
            "guardian" => Ok(Role::Guardian),
            "staff" => Ok(Role::Staff),
            other => Err(format!("unknown role `{other}` (expected child, guardian or staff)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonRef {
    pub id: String,
    pub role: Role,
}

/// An id that is not plain enough for a topic level, a file name or a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id `{0}`: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")]
pub struct BadId(pub String);

/// Ids end up in MQTT topics and payloads, file names and log lines; keep them plain.
pub fn validate_id(id: &str) -> Result<(), BadId> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(BadId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain() {
        assert!(validate_id("child-001_a.b").is_ok());
        for bad in ["", "../etc", "a b", "김민지", ".hidden", &"x".repeat(65), "a/b", "+", "#"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}

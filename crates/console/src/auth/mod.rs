//! Staff accounts and sessions. OWNED BY THE WEB/AUTH WORK: the users file (Argon2id hashes,
//! written by `dolbom console passwd`), sessions, the login rate limit.

use crate::ConsoleConfig;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("staff accounts file {path}: {message}")]
    Users { path: std::path::PathBuf, message: String },
}

pub struct Auth {}

impl Auth {
    /// Reads the accounts file named by `web.users_file`. A missing file is no error (no one
    /// can log in until `dolbom console passwd` adds someone, and the daemon says so); an
    /// unreadable or malformed one is.
    pub fn open(config: &ConsoleConfig) -> Result<Auth, AuthError> {
        let _ = config;
        Ok(Auth {})
    }
}

//! Staff accounts and sessions: the users file (Argon2id hashes, written by `dolbom console
//! passwd`), sessions in memory, the login rate limit.

pub mod limiter;
pub mod sessions;
pub mod users;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

pub use limiter::LoginLimiter;
pub use sessions::{Session, Sessions};
pub use users::{User, Users, UsersError};

use crate::ConsoleConfig;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("staff accounts file {path}: {message}")]
    Users { path: PathBuf, message: String },
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Wrong password or unknown account: the same answer for both.
    Wrong,
    /// Too many wrong passwords for this account or from this address; try again after this.
    TooMany(Duration),
}

/// The file as last read, and how it looked then (to notice `dolbom console passwd` changing it
/// while the console runs).
struct Loaded {
    stamp: Option<(SystemTime, u64, u64)>,
    users: Arc<Users>,
}

pub struct Auth {
    users_file: PathBuf,
    loaded: RwLock<Loaded>,
    pub sessions: Sessions,
    pub limiter: LoginLimiter,
    /// Verified against for an unknown id: the same Argon2 cost as a real account.
    decoy: String,
    /// Password checks running at once, at most.
    verifying: tokio::sync::Semaphore,
}

/// Password checks run at once, at most: a burst of logins waits rather than taking every core
/// and 19 MiB each.
const PARALLEL_VERIFIES: usize = 2;

/// A login id as it goes to the log: what was typed in the id box may be a password typed in
/// the wrong box, so only an existing account's id is written out.
fn logged(users: &Users, id: &str) -> String {
    if users.get(id).is_some() {
        id.to_string()
    } else {
        format!("(no such account, {} chars)", id.chars().count())
    }
}

/// When, how long and which file: every save is a new file renamed into place (a new inode),
/// so a password changed within one mtime tick (PHC strings have one length) is still seen.
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

impl Auth {
    /// Reads the accounts file named by `web.users_file`. A missing file is no error (no one
    /// can log in until `dolbom console passwd` adds someone, and the daemon says so); an
    /// unreadable or malformed one is.
    pub fn open(config: &ConsoleConfig) -> Result<Auth, AuthError> {
        let path = config.web.users_file.clone();
        let users = match Users::load(&path) {
            Ok(Some(u)) => u,
            Ok(None) => {
                tracing::error!(
                    file = %path.display(),
                    "no staff accounts file: no one can log in until `dolbom console passwd` adds an account \
                     (직원 계정 파일이 없습니다: `dolbom console passwd`로 계정을 만들기 전에는 아무도 로그인할 수 없습니다)"
                );
                Users::default()
            }
            Err(e) => return Err(AuthError::Users { path, message: e.to_string() }),
        };
        if users.users.is_empty() {
            tracing::warn!(file = %path.display(), "the staff accounts file lists no account");
        } else {
            tracing::info!(file = %path.display(), accounts = users.users.len(), "staff accounts read");
        }
        let w = &config.web;
        Ok(Auth {
            loaded: RwLock::new(Loaded { stamp: stamp(&path), users: Arc::new(users) }),
            users_file: path,
            sessions: Sessions::new(w.session_idle, w.session_max),
            limiter: LoginLimiter::new(w.login_attempts, w.login_window),
            decoy: users::decoy_hash(),
            verifying: tokio::sync::Semaphore::new(PARALLEL_VERIFIES),
        })
    }

    /// The accounts, re-read when the file changed since (a malformed new file keeps the last
    /// good one and says so).
    pub fn users(&self) -> Arc<Users> {
        let now = stamp(&self.users_file);
        {
            let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
            if loaded.stamp == now {
                return loaded.users.clone();
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        match Users::load(&self.users_file) {
            Ok(users) => {
                let users = users.unwrap_or_default();
                tracing::info!(accounts = users.users.len(), "staff accounts file changed: read again");
                // A removed account or a changed password ends the account's sessions: a
                // password is changed because someone else may know it.
                for old in &loaded.users.users {
                    if users.get(&old.id).is_none_or(|new| new.hash != old.hash) {
                        self.sessions.remove_user(&old.id);
                    }
                }
                loaded.users = Arc::new(users);
            }
            Err(e) => {
                tracing::error!(error = %e, "staff accounts file changed but cannot be read: keeping the last one")
            }
        }
        loaded.stamp = now;
        loaded.users.clone()
    }

    /// Checks the password (off the async threads: Argon2 is made to be slow) and, when right,
    /// opens a session: its id (the cookie) and the account.
    pub async fn login(
        &self,
        id: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<(String, Session, User), LoginRefused> {
        let users = self.users();
        let attempt = match self.limiter.begin(id, client) {
            Ok(a) => a,
            Err(wait) => {
                tracing::warn!(account = %logged(&users, id), client = ?client, "login refused: too many wrong passwords");
                return Err(LoginRefused::TooMany(wait));
            }
        };
        let user = users.get(id).cloned();
        let hash = user.as_ref().map(|u| u.hash.clone()).unwrap_or_else(|| self.decoy.clone());
        let password = password.to_string();
        // A few hashes at a time: each takes 19 MiB and most of a core for a while.
        let right = match self.verifying.acquire().await {
            Ok(_slot) => tokio::task::spawn_blocking(move || users::verify(&hash, &password)).await.unwrap_or(false),
            Err(_) => false,
        };
        match user {
            Some(user) if right => {
                self.limiter.succeeded(id, attempt);
                let (sid, session) = self.sessions.create(id);
                tracing::info!(account = id, client = ?client, "staff logged in");
                Ok((sid, session, user))
            }
            Some(_) => {
                tracing::warn!(account = id, client = ?client, "login refused: wrong password");
                Err(LoginRefused::Wrong)
            }
            None => {
                tracing::warn!(account = %logged(&users, id), client = ?client, "login refused: no such account");
                Err(LoginRefused::Wrong)
            }
        }
    }

    /// The session with this cookie value and its account, when both are still there. `used`:
    /// staff did something (the idle time starts again), not a page refreshing itself.
    pub fn session(&self, sid: &str, used: bool) -> Option<(Session, User)> {
        // The accounts first: a file changed since may end this very session.
        let users = self.users();
        let session = if used { self.sessions.touch(sid)? } else { self.sessions.peek(sid)? };
        let user = users.get(&session.user).cloned();
        match user {
            Some(u) => Some((session, u)),
            None => {
                self.sessions.remove(sid);
                None
            }
        }
    }
}

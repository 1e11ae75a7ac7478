//! Logged-in sessions: a random 256-bit id (the cookie) to the account, its CSRF token and its
//! times. Held in memory only: a restart of the console logs everyone out, which is the safe
//! side for a LAN service (docs/console.md says so).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a live session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// Every form of this session carries this token as the field `csrf`.
    pub csrf: String,
}

struct Entry {
    session: Session,
    started: Instant,
    last_seen: Instant,
}

pub struct Sessions {
    idle: Duration,
    max: Duration,
    live: Mutex<HashMap<String, Entry>>,
}

/// 256 random bits from the thread's cryptographic generator, as hex.
fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    pub fn new(idle: Duration, max: Duration) -> Sessions {
        Sessions { idle, max, live: Mutex::new(HashMap::new()) }
    }

    /// A new session for `user`: its id (the cookie's value) and the session.
    pub fn create(&self, user: &str) -> (String, Session) {
        self.create_at(user, Instant::now())
    }

    fn create_at(&self, user: &str, now: Instant) -> (String, Session) {
        let id = token();
        let session = Session { user: user.to_string(), csrf: token() };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        // Expired entries go whenever someone logs in, so the map never outgrows the staff.
        let (idle, max) = (self.idle, self.max);
        live.retain(|_, e| now.duration_since(e.last_seen) < idle && now.duration_since(e.started) < max);
        live.insert(id.clone(), Entry { session: session.clone(), started: now, last_seen: now });
        (id, session)
    }

    /// The live session with this id, its idle time refreshed; an expired one is removed.
    pub fn touch(&self, id: &str) -> Option<Session> {
        self.touch_at(id, Instant::now(), true)
    }

    /// The live session with this id, its idle time left as it is: a page refreshing itself is
    /// not staff using it.
    pub fn peek(&self, id: &str) -> Option<Session> {
        self.touch_at(id, Instant::now(), false)
    }

    fn touch_at(&self, id: &str, now: Instant, used: bool) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let entry = live.get_mut(id)?;
        if now.duration_since(entry.last_seen) >= self.idle || now.duration_since(entry.started) >= self.max {
            live.remove(id);
            return None;
        }
        if used {
            entry.last_seen = now;
        }
        Some(entry.session.clone())
    }

    /// Ends the session (logout).
    pub fn remove(&self, id: &str) -> bool {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(id).is_some()
    }

    /// Ends every session of `user` (the account was removed).
    pub fn remove_user(&self, user: &str) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, e| e.session.user != user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tokens_are_256_bits_and_distinct() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (a, sa) = s.create("kim");
        let (b, sb) = s.create("kim");
        assert_eq!((a.len(), sa.csrf.len()), (64, 64));
        assert!(a != b && sa.csrf != sb.csrf && a != sa.csrf);
        assert_eq!(s.touch(&a), Some(sa));
        assert_eq!(s.touch("0000"), None);
    }

    #[test]
    fn idle_time_is_refreshed_by_use_and_the_max_lifetime_holds_regardless() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(150));
        let t0 = Instant::now();
        let (id, _) = s.create_at("kim", t0);
        assert!(s.touch_at(&id, t0 + Duration::from_secs(50), true).is_some());
        assert!(s.touch_at(&id, t0 + Duration::from_secs(100), true).is_some(), "idle counted from the last use");
        assert!(s.touch_at(&id, t0 + Duration::from_secs(149), true).is_some());
        assert!(s.touch_at(&id, t0 + Duration::from_secs(151), true).is_none(), "max lifetime");
        let (id, _) = s.create_at("kim", t0);
        assert!(s.touch_at(&id, t0 + Duration::from_secs(61), true).is_none(), "idle");
        assert!(s.touch_at(&id, t0 + Duration::from_secs(62), true).is_none(), "and gone");
    }

    #[test]
    fn a_page_refreshing_itself_does_not_keep_the_session_alive() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let t0 = Instant::now();
        let (id, _) = s.create_at("kim", t0);
        for t in [20, 40, 59] {
            assert!(s.touch_at(&id, t0 + Duration::from_secs(t), false).is_some(), "{t}");
        }
        assert!(s.touch_at(&id, t0 + Duration::from_secs(61), false).is_none(), "idle since the login");
    }

    #[test]
    fn logout_and_account_removal_end_sessions() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (a, _) = s.create("kim");
        let (b, _) = s.create("lee");
        assert!(s.remove(&a));
        assert!(!s.remove(&a));
        assert!(s.touch(&a).is_none());
        s.remove_user("lee");
        assert!(s.touch(&b).is_none());
    }
}

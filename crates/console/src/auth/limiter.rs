//! Wrong passwords counted per account and per client address within `web.login_window`. Past
//! `web.login_attempts` of either, logins are refused, even with the right password, until the
//! oldest counted failure leaves the window: guessing costs a window per few tries.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginLimiter {
    attempts: u32,
    window: Duration,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Client(IpAddr),
}

/// Keys kept at most; past it, keys with no failure in the window are dropped.
const MAX_KEYS: usize = 10_000;

impl LoginLimiter {
    pub fn new(attempts: u32, window: Duration) -> LoginLimiter {
        LoginLimiter { attempts, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Some(wait)` when a login for `account` from `client` is refused now; `wait` is how long
    /// until the next one may be tried.
    pub fn refused(&self, account: &str, client: Option<IpAddr>) -> Option<Duration> {
        self.refused_at(account, client, Instant::now())
    }

    fn refused_at(&self, account: &str, client: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys(account, client)
            .filter_map(|k| {
                let times = failures.get_mut(&k)?;
                self.forget_old(times, now);
                if times.len() as u32 >= self.attempts {
                    times.front().map(|first| self.window.saturating_sub(now.duration_since(*first)))
                } else {
                    None
                }
            })
            .max()
    }

    /// Counts a wrong password (or an unknown account) against both keys.
    pub fn failed(&self, account: &str, client: Option<IpAddr>) {
        self.failed_at(account, client, Instant::now())
    }

    fn failed_at(&self, account: &str, client: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_KEYS {
            let window = self.window;
            failures.retain(|_, t| t.back().is_some_and(|last| now.duration_since(*last) < window));
        }
        for k in keys(account, client) {
            let times = failures.entry(k).or_default();
            self.forget_old(times, now);
            times.push_back(now);
        }
    }

    /// A right password clears the account's count (not the client's: one address guessing
    /// many accounts stays counted).
    pub fn succeeded(&self, account: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&Key::Account(account.to_string()));
    }

    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
    }
}

fn keys(account: &str, client: Option<IpAddr>) -> impl Iterator<Item = Key> {
    std::iter::once(Key::Account(account.to_string())).chain(client.map(Key::Client))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 7)));
    const OTHER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 8)));

    #[test]
    fn past_the_attempts_an_account_is_refused_until_the_window_passes() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.refused_at("kim", IP, t0).is_none(), "try {i}");
            l.failed_at("kim", IP, t0 + Duration::from_secs(i));
        }
        let wait = l.refused_at("kim", OTHER, t0 + Duration::from_secs(10)).expect("account refused from anywhere");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.refused_at("lee", IP, t0 + Duration::from_secs(10)).is_some(), "the address is refused too");
        assert!(l.refused_at("lee", OTHER, t0 + Duration::from_secs(10)).is_none());
        assert!(l.refused_at("kim", IP, t0 + Duration::from_secs(60)).is_none(), "the first failure left the window");
    }

    #[test]
    fn a_right_password_clears_the_account_but_not_the_address() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        l.failed_at("kim", IP, t0);
        l.succeeded("kim");
        l.failed_at("lee", IP, t0);
        assert!(l.refused_at("kim", OTHER, t0).is_none());
        assert!(l.refused_at("kim", IP, t0).is_some(), "two failures from this address");
    }
}

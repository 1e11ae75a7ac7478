//! Wrong passwords counted per account and per client address within `web.login_window`. Past
//! `web.login_attempts` of either, logins are refused, even with the right password, until the
//! oldest counted failure leaves the window: guessing costs a window per few tries. Each login
//! counts as a failure from its start until its password proves right.

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

/// One login under way, counted as a failure until [`LoginLimiter::succeeded`] takes it back.
#[derive(Debug)]
pub struct Attempt {
    at: Instant,
    client: Option<IpAddr>,
}

/// Keys kept at most; past it, keys with no failure in the window are dropped.
const MAX_KEYS: usize = 10_000;

impl LoginLimiter {
    pub fn new(attempts: u32, window: Duration) -> LoginLimiter {
        LoginLimiter { attempts, window, failures: Mutex::new(HashMap::new()) }
    }

    /// A login for `account` from `client` is starting: `Err(wait)` when it is refused now
    /// (`wait` is how long until the next may be tried), else it is counted as a failure at
    /// once, under the same lock, so parallel guesses cannot all pass the check before any of
    /// them is counted. A right password takes it back with [`LoginLimiter::succeeded`].
    pub fn begin(&self, account: &str, client: Option<IpAddr>) -> Result<Attempt, Duration> {
        self.begin_at(account, client, Instant::now())
    }

    fn begin_at(&self, account: &str, client: Option<IpAddr>, now: Instant) -> Result<Attempt, Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let refused = keys(account, client)
            .filter_map(|k| {
                let times = failures.get_mut(&k)?;
                self.forget_old(times, now);
                if times.len() as u32 >= self.attempts {
                    times.front().map(|first| self.window.saturating_sub(now.duration_since(*first)))
                } else {
                    None
                }
            })
            .max();
        if let Some(wait) = refused {
            return Err(wait);
        }
        if failures.len() >= MAX_KEYS {
            let window = self.window;
            failures.retain(|_, t| t.back().is_some_and(|last| now.duration_since(*last) < window));
        }
        for k in keys(account, client) {
            let times = failures.entry(k).or_default();
            times.push_back(now);
        }
        Ok(Attempt { at: now, client })
    }

    /// A right password clears the account's count and takes back this attempt's count against
    /// the address (earlier failures from it stay counted: one address guessing many accounts
    /// stays limited).
    pub fn succeeded(&self, account: &str, attempt: Attempt) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&Key::Account(account.to_string()));
        if let Some(times) = attempt.client.and_then(|c| failures.get_mut(&Key::Client(c))) {
            if let Some(i) = times.iter().rposition(|t| *t == attempt.at) {
                times.remove(i);
            }
        }
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
            assert!(l.begin_at("kim", IP, t0 + Duration::from_secs(i)).is_ok(), "try {i}");
        }
        let wait = l.begin_at("kim", OTHER, t0 + Duration::from_secs(10)).expect_err("account refused from anywhere");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.begin_at("lee", IP, t0 + Duration::from_secs(10)).is_err(), "the address is refused too");
        assert!(l.begin_at("lee", OTHER, t0 + Duration::from_secs(10)).is_ok());
        assert!(l.begin_at("kim", IP, t0 + Duration::from_secs(60)).is_ok(), "the first failure left the window");
    }

    #[test]
    fn a_right_password_clears_the_account_but_not_the_address() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        l.begin_at("kim", IP, t0).expect("first try");
        let right = l.begin_at("kim", IP, t0 + Duration::from_secs(1)).expect("second try");
        l.succeeded("kim", right);
        assert!(l.begin_at("kim", OTHER, t0 + Duration::from_secs(2)).is_ok(), "the account was cleared");
        // The address keeps its one wrong try (the right one was taken back): one more fills it.
        l.begin_at("lee", IP, t0 + Duration::from_secs(3)).expect("the address has one failure");
        assert!(l.begin_at("park", IP, t0 + Duration::from_secs(4)).is_err(), "two failures from this address");
    }

    #[test]
    fn parallel_guesses_are_counted_before_any_is_checked() {
        // Tries that all start before any password is verified: only `attempts` get through.
        let l = std::sync::Arc::new(LoginLimiter::new(3, Duration::from_secs(60)));
        let started: Vec<bool> = std::thread::scope(|s| {
            let tries: Vec<_> = (0..16).map(|_| s.spawn(|| l.begin("kim", IP).is_ok())).collect();
            tries.into_iter().map(|t| t.join().expect("thread")).collect()
        });
        assert_eq!(started.iter().filter(|ok| **ok).count(), 3, "{started:?}");
    }
}

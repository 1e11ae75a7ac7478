//! The one shutdown signal every stage holds: threads poll it or sleep on it, async tasks await
//! it. Triggered by SIGTERM/SIGINT (or by a test); it never goes back.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    /// For threads: the flag and a condvar to wake sleepers.
    flag: Mutex<bool>,
    woken: Condvar,
    /// For tasks.
    tx: watch::Sender<bool>,
    /// Stages that ended by a panic, in the order they did.
    crashed: Mutex<Vec<&'static str>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                flag: Mutex::new(false),
                woken: Condvar::new(),
                tx,
                crashed: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn trigger(&self) {
        *self.inner.flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.inner.woken.notify_all();
        self.inner.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.inner.flag.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps on a thread for `d`, or less when shutdown comes first. True when it did.
    pub fn sleep(&self, d: Duration) -> bool {
        let flag = self.inner.flag.lock().unwrap_or_else(|p| p.into_inner());
        let (flag, _) = self.inner.woken.wait_timeout_while(flag, d, |stop| !*stop).unwrap_or_else(|p| p.into_inner());
        *flag
    }

    /// A guard for the stage `name` to hold for as long as it runs (thread or task): if the
    /// stage panics, the guard records it and stops the whole daemon, which then exits failing
    /// (systemd restarts it). A kiosk must never run on with a stage missing.
    pub fn guard(&self, name: &'static str) -> StageGuard {
        StageGuard { name, shutdown: self.clone() }
    }

    /// The stages that crashed.
    pub fn crashed(&self) -> Vec<&'static str> {
        self.inner.crashed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Resolves once shutdown is triggered (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.inner.tx.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

pub struct StageGuard {
    name: &'static str,
    shutdown: Shutdown,
}

impl Drop for StageGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(stage = self.name, "stage crashed: stopping the kiosk (queued events are kept)");
            self.shutdown.inner.crashed.lock().unwrap_or_else(|p| p.into_inner()).push(self.name);
            self.shutdown.trigger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_thread_wakes_at_shutdown() {
        let s = Shutdown::new();
        assert!(!s.sleep(Duration::from_millis(10)), "not triggered: slept the whole time");
        let t = {
            let s = s.clone();
            std::thread::spawn(move || s.sleep(Duration::from_secs(60)))
        };
        std::thread::sleep(Duration::from_millis(50));
        s.trigger();
        assert!(t.join().expect("thread"), "woken by the trigger, not the 60 s");
        assert!(s.is_triggered());
    }

    #[tokio::test]
    async fn tasks_see_a_trigger_that_came_first_or_later() {
        let s = Shutdown::new();
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        s.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken").expect("task");
        tokio::time::timeout(Duration::from_secs(1), s.wait()).await.expect("already triggered");
    }

    #[test]
    fn a_stage_that_panics_stops_everything_and_is_named() {
        let shutdown = Shutdown::new();
        let quiet = shutdown.guard("quiet");
        drop(quiet);
        assert!(!shutdown.is_triggered(), "a stage that ends normally stops nothing");
        let s = shutdown.clone();
        let crashed = std::thread::spawn(move || {
            let _guard = s.guard("thermal");
            panic!("decoder bug");
        })
        .join();
        assert!(crashed.is_err());
        assert!(shutdown.is_triggered());
        assert_eq!(shutdown.crashed(), vec!["thermal"]);
    }
}

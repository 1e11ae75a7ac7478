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
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Self { inner: Arc::new(Inner { flag: Mutex::new(false), woken: Condvar::new(), tx }) }
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

    /// Resolves once shutdown is triggered (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.inner.tx.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|stop| *stop).await;
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
}

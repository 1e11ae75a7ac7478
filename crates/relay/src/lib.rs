//! `dolbom relay`: kiosk events from MQTT in, texts to parents out, exactly once.
//!
//! ```text
//! broker ──(QoS 1, persistent session, manual ack)──► intake ──► store ──► sender ──► SMS gateway
//!                                                     (dedupe on event_id,  (quiet hours, rate limit,
//!                                                      ack after commit)      retries, stale check)
//! ```
//!
//! The store is SQLite for one relay, PostgreSQL for several: they then split the events through
//! an MQTT shared subscription and share the dedupe and the delivery claims. The relay knows
//! the kiosk only through the contract (topics and payload types) and the broker only through
//! the shared MQTT session: it builds without OpenCV or ONNX Runtime.

pub mod config;
pub mod directory;
pub mod intake;
pub mod phone;
pub mod provider;
pub mod quiet;
pub mod reload;
pub mod sender;
pub mod sms;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dolbom_backoff::Backoff;
use jiff::Timestamp;
use tokio::sync::Notify;
use tracing::{info, warn};

pub use config::{RelayFile, RelaySettings};
pub use intake::{plan, Plan};
pub use quiet::quiet_until;
pub use sender::Sender;
use store::{RelayStore, StoreConfig, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("relay database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot start: {0}")]
    Start(String),
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// Runs the relay until SIGTERM/SIGINT.
pub fn run(file: RelayFile) -> Result<(), RelayError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (directory, print) = reload::load_at_start(&file.relay.directory).map_err(RelayError::Start)?;
    let directory = Arc::new(directory);
    let instance = file.instance();
    let store = open_store(&file.store(), &instance)?;
    let gateway = provider::build(&file.provider).map_err(RelayError::Start)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RelayError::Start(e.to_string()))?;
    // Texts under way get this long to finish at shutdown: one gateway timeout and some.
    let grace = Duration::from_millis(file.provider.timeout_ms().unwrap_or(0)) + Duration::from_secs(5);
    let keep = store.clone();
    runtime.block_on(async move {
        let wake = Arc::new(Notify::new());
        let sender = Arc::new(Sender {
            store: store.clone(),
            instance,
            gateway,
            settings: file.relay.clone(),
            directory: directory.clone(),
            wake: wake.clone(),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..file.relay.senders {
            workers.spawn(sender.clone().run(w, stopped.clone()));
        }
        let watcher = tokio::spawn(reload::watch(
            file.relay.directory.clone(),
            print,
            directory.clone(),
            store.clone(),
            file.relay.clone(),
            wake.clone(),
        ));
        tokio::select! {
            _ = intake::consume(&file, store, directory, wake) => {}
            _ = shutdown_signal() => info!("shutdown requested"),
        }
        watcher.abort();
        let _ = stop.send(true);
        if tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await.is_err() {
            warn!("texts still under way at shutdown; they will show as unknown, not re-sent");
        }
        workers.abort_all();
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    // The PostgreSQL client closes on its own runtime: dropped here, outside tokio's.
    drop(keep);
    Ok(())
}

/// Opens the store and settles the last run's interrupted deliveries, waiting for a database that
/// is not up yet (a relay and its PostgreSQL server booting together); other errors end the start.
fn open_store(config: &StoreConfig, instance: &str) -> Result<Arc<dyn RelayStore>, RelayError> {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let opened = store::open(config, Some(instance)).and_then(|store| {
            let now = now_ms();
            let recovered = store.recover(instance, now - store::CLAIM_LEASE_MS, now)?;
            Ok((store, recovered))
        });
        match opened {
            Ok((store, recovered)) => {
                if recovered.unknown > 0 {
                    warn!(
                        unknown = recovered.unknown,
                        "deliveries interrupted by the last stop were not re-sent; see `dolbom relay log`"
                    );
                }
                if recovered.requeued > 0 {
                    info!(requeued = recovered.requeued, "claimed but unsent texts from the last stop queued again");
                }
                return Ok(store);
            }
            Err(e) if e.is_transient() => {
                let wait = backoff.next_delay();
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "relay database not reachable yet");
                std::thread::sleep(wait);
            }
            // Another process under this name (or the database still holds a dead session's
            // lock until its keepalives end it): wait, loudly, rather than exit into a restart loop.
            Err(e @ StoreError::InstanceTaken(_)) => {
                let wait = backoff.next_delay();
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot start yet");
                std::thread::sleep(wait);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    if let (Ok(mut t), Ok(mut i)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        tokio::select! {
            _ = t.recv() => {}
            _ = i.recv() => {}
        }
    } else {
        std::future::pending::<()>().await
    }
}

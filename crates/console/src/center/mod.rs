//! The center as the console knows it. OWNED BY THE CENTER/PAGES WORK: the broker intake of
//! every door's topics, console.db, change notifications for live pages, and staff commands
//! to the kiosks with their answers.

pub mod attendance;
pub mod commands;
pub mod csv;
pub mod intake;
pub mod plot;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

pub use commands::Answer;
pub use store::Store;

use crate::ConsoleConfig;

#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    #[error("console database: {0}")]
    Db(String),
    /// The signing key could not be read (the message names `commands.key_file`).
    #[error("{0}")]
    Key(String),
}

/// What changed, for the live pages to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Attendance,
    Alerts,
    Visitors,
    Air,
    Health,
    Roster,
}

impl Change {
    /// The SSE event name.
    pub fn name(self) -> &'static str {
        match self {
            Change::Attendance => "attendance",
            Change::Alerts => "alerts",
            Change::Visitors => "visitors",
            Change::Air => "air",
            Change::Health => "health",
            Change::Roster => "roster",
        }
    }
}

/// The staff actions' answers kept for the page the action redirects to.
const ANSWERS_KEPT: usize = 256;

pub struct Center {
    pub config: Arc<ConsoleConfig>,
    pub store: Store,
    changes: broadcast::Sender<Change>,
    outgoing: mpsc::UnboundedSender<commands::Queued>,
    /// Commands sent and not yet answered, by request id.
    pending: Mutex<HashMap<String, commands::Pending>>,
    /// (request id, staff id, answer), newest last.
    answers: Mutex<VecDeque<(String, String, Answer)>>,
    key: Vec<u8>,
    /// Messages that were not what their topic carries: logged, counted, skipped.
    pub malformed: AtomicU64,
}

impl Center {
    /// Opens console.db (creating the state directory) and starts the broker intake as a task
    /// on the current runtime; the MQTT secrets are already loaded into `config.mqtt`.
    pub async fn start(config: Arc<ConsoleConfig>) -> Result<Arc<Center>, CenterError> {
        let (center, rx) = Center::open(config)?;
        tokio::spawn(intake::run(center.clone(), rx));
        tokio::spawn(prune_daily(center.clone()));
        Ok(center)
    }

    /// The center without its broker connection: what the intake needs to run.
    fn open(
        config: Arc<ConsoleConfig>,
    ) -> Result<(Arc<Center>, mpsc::UnboundedReceiver<commands::Queued>), CenterError> {
        std::fs::create_dir_all(&config.state.dir)
            .map_err(|e| CenterError::Db(format!("`state.dir` {}: {e}", config.state.dir.display())))?;
        let store = Store::open(&config.db_file(), config.timezone())
            .map_err(|e| CenterError::Db(format!("{}: {e}", config.db_file().display())))?;
        let key = dolbom_secret::read("commands.key_file", &config.commands.key_file, Path::new("."))
            .map_err(|e| CenterError::Key(e.to_string()))?;
        if key.len() < dolbom_contract::signed::MIN_KEY_LEN {
            return Err(CenterError::Key(format!(
                "`commands.key_file`: the key is {} bytes; it must be at least {} (e.g. `openssl rand -hex 32`)",
                key.len(),
                dolbom_contract::signed::MIN_KEY_LEN
            )));
        }
        let (changes, _) = broadcast::channel(64);
        let (outgoing, rx) = mpsc::unbounded_channel();
        let center = Arc::new(Center {
            config,
            store,
            changes,
            outgoing,
            pending: Mutex::new(HashMap::new()),
            answers: Mutex::new(VecDeque::new()),
            key: key.into_bytes(),
            malformed: AtomicU64::new(0),
        });
        Ok((center, rx))
    }

    /// Live pages listen here.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// How many live pages are listening.
    pub fn subscribe_count(&self) -> usize {
        self.changes.receiver_count()
    }

    fn notify(&self, change: Change) {
        // No page listening is no error.
        let _ = self.changes.send(change);
    }

    /// Keeps a staff action's answer for the page that shows it.
    pub fn remember(&self, request_id: &str, staff: &str, answer: Answer) {
        if let Ok(mut a) = self.answers.lock() {
            a.push_back((request_id.to_string(), staff.to_string(), answer));
            while a.len() > ANSWERS_KEPT {
                a.pop_front();
            }
        }
    }

    /// The answer to an action `staff` took; another member's request id shows nothing.
    pub fn answer(&self, request_id: &str, staff: &str) -> Option<Answer> {
        let a = self.answers.lock().ok()?;
        a.iter().rev().find(|(r, s, _)| r == request_id && s == staff).map(|(_, _, answer)| answer.clone())
    }
}

/// Forgets what is older than `state.keep_days`, at start and then daily.
async fn prune_daily(center: Arc<Center>) {
    loop {
        let today = center.config.timezone().to_datetime(jiff::Timestamp::now()).date();
        match center.store.prune(today, center.config.state.keep_days) {
            Ok(0) => {}
            Ok(n) => info!(rows = n, keep_days = center.config.state.keep_days, "pruned console.db"),
            Err(e) => warn!(error = %e, "pruning console.db failed; retried tomorrow"),
        }
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    }
}

#[cfg(test)]
mod broker_tests;
#[cfg(test)]
pub(crate) mod testing;

//! The center as the console knows it. OWNED BY THE CENTER/PAGES WORK: the broker intake of
//! every door's topics, console.db, change notifications for live pages, and staff commands
//! to the kiosks with their answers.

use std::sync::Arc;

use crate::ConsoleConfig;

#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    #[error("console database: {0}")]
    Db(String),
}

pub struct Center {}

impl Center {
    /// Opens console.db (creating the state directory) and starts the broker intake as a task
    /// on the current runtime; the MQTT secrets are already loaded into `config.mqtt`.
    pub async fn start(config: Arc<ConsoleConfig>) -> Result<Arc<Center>, CenterError> {
        let _ = config;
        Ok(Arc::new(Center {}))
    }
}

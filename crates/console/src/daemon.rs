//! `dolbom console`: wiring only. Loads the secrets, opens the accounts, starts the center's
//! broker intake, then serves the web pages until SIGTERM or ctrl-c.

use std::path::Path;
use std::sync::Arc;

use crate::auth::{Auth, AuthError};
use crate::center::{Center, CenterError};
use crate::web::{self, tls::TlsError, App};
use crate::ConsoleConfig;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("console config: {0}")]
    Secrets(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Center(#[from] CenterError),
    #[error("console config: {0}")]
    Tls(#[from] TlsError),
    #[error("`web.listen` = {addr}: cannot listen there: {error}")]
    Bind { addr: std::net::SocketAddr, error: std::io::Error },
    #[error("web server: {0}")]
    Serve(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// [`run`] on a runtime of its own (two worker threads, like the relay): what `dolbom console`
/// calls.
pub fn run_blocking(config: ConsoleConfig, config_dir: &Path) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(run(config, config_dir))
}

/// Runs the console until SIGTERM/SIGINT. `config_dir` is the config file's directory (the MQTT
/// password and certificate paths are relative to it).
pub async fn run(mut config: ConsoleConfig, config_dir: &Path) -> Result<(), DaemonError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    config.mqtt.load_secrets(config_dir).map_err(|e| DaemonError::Secrets(e.to_string()))?;
    let tls = config.web.tls.as_ref().map(|t| web::tls::load(t, config_dir)).transpose()?;
    let auth = Arc::new(Auth::open(&config)?);
    let config = Arc::new(config);
    let center = Center::start(config.clone()).await?;
    let addr = config.web.listen;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| DaemonError::Bind { addr, error })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(center = %config.site.center_id, "staff console at {scheme}://{bound} (직원 콘솔 주소)");
    if tls.is_none() && !bound.ip().is_loopback() {
        tracing::warn!(
            "plain HTTP on the LAN: passwords and session cookies cross the network readable; set [web.tls] \
             (암호화되지 않은 HTTP입니다: [web.tls]를 설정하세요)"
        );
    }
    let router = web::router(App { config: config.clone(), auth, center });
    web::serve(listener, router, tls, shutdown_signal()).await.map_err(DaemonError::Serve)?;
    tracing::info!("staff console stopped");
    Ok(())
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_sample_config_for_integrators_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/console.toml");
        let c = crate::ConsoleConfig::load(&path).expect("config/console.toml loads");
        assert!(c.web.tls.is_some());
        assert_eq!(c.classes.len(), 2);
    }
}

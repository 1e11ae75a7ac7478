//! HTTPS: the certificate chain and key from `[web.tls]`, and a listener that hands axum only
//! connections whose TLS handshake finished (each handshake in its own task, so a slow or
//! silent client cannot hold up the others).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::HttpsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{key}` = {path}: cannot read a PEM {what}: {message}")]
    Read { key: &'static str, path: PathBuf, what: &'static str, message: String },
    #[error("`web.tls`: the certificate and key do not go together: {0}")]
    Config(String),
}

/// How long a client may take to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The server's TLS settings from `[web.tls]` (HTTP/1.1, ring). Either path may be a systemd
/// credential (`$CREDENTIALS_DIRECTORY/NAME`); the key, like every secret, must not be readable
/// by every user. `base` is the config file's directory.
pub fn load(https: &HttpsConfig, base: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |key: &'static str, path: &Path, what: &'static str, message: String| TlsError::Read {
        key,
        path: path.to_path_buf(),
        what,
        message,
    };
    let cert_path = dolbom_secret::locate("web.tls.cert", &https.cert, base)
        .map_err(|e| read("web.tls.cert", &https.cert, "certificate chain", e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read("web.tls.cert", &https.cert, "certificate chain", e.to_string()))?;
    if certs.is_empty() {
        return Err(read("web.tls.cert", &https.cert, "certificate chain", "no CERTIFICATE in it".into()));
    }
    let key_text = dolbom_secret::read("web.tls.key", &https.key, base)
        .map_err(|e| read("web.tls.key", &https.key, "private key", e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_text.as_bytes())
        .map_err(|e| read("web.tls.key", &https.key, "private key", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections come out TLS-wrapped.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, rather than spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local, accepting })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task ended (it does not, but for it to end quietly): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_are_named_by_their_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let https = HttpsConfig { cert: dir.path().join("none.crt"), key: dir.path().join("none.key") };
        let e = load(&https, dir.path()).expect_err("missing").to_string();
        assert!(e.contains("web.tls.cert") && e.contains("none.crt"), "{e}");
        std::fs::write(dir.path().join("none.crt"), "not pem").expect("write");
        let e = load(&https, dir.path()).expect_err("no cert").to_string();
        assert!(e.contains("web.tls.cert") && e.contains("no CERTIFICATE"), "{e}");
    }
}

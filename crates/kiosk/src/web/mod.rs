//! The kiosk's HTTP layer, on loopback. One router per page, each in its own file ([`door`]:
//! the door screen; a staff console would sit beside it), served by one server on the
//! daemon's tokio runtime that stops with the daemon's [`Shutdown`].

pub mod door;

use std::net::SocketAddr;

use tracing::{info, warn};

use crate::shutdown::Shutdown;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {addr} (door_screen.listen): {error} / {addr}에서 연결을 받을 수 없습니다")]
    Bind { addr: SocketAddr, error: std::io::Error },
}

/// A bound listening socket, made before the runtime starts so a port in use is a start-up
/// error, not a log line.
pub struct Bound {
    listener: std::net::TcpListener,
    pub addr: SocketAddr,
}

pub fn bind(addr: SocketAddr) -> Result<Bound, WebError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|error| WebError::Bind { addr, error })?;
    listener.set_nonblocking(true).map_err(|error| WebError::Bind { addr, error })?;
    // Port 0 (tests) becomes the port the system chose.
    let addr = listener.local_addr().unwrap_or(addr);
    Ok(Bound { listener, addr })
}

/// Serves `router` until shutdown. Open event streams end at shutdown too (see
/// [`door::router`]), so the graceful stop does not wait for a browser that never leaves.
pub async fn serve(bound: Bound, router: axum::Router, shutdown: Shutdown) {
    let listener = match tokio::net::TcpListener::from_std(bound.listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, addr = %bound.addr, "door screen not served / 문 화면을 열 수 없습니다");
            return;
        }
    };
    info!(addr = %bound.addr, "door screen at http://{} / 문 화면 주소", bound.addr);
    let stop = shutdown.clone();
    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(async move { stop.wait().await }).await {
        warn!(error = %e, "door screen server stopped / 문 화면 서버가 멈췄습니다");
    }
}

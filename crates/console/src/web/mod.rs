//! The console's HTTP layer: the server (HTTP or HTTPS), the router that merges
//! [`pages::router`], login/logout, the session and CSRF checks, the page layout.

pub mod app;
pub mod form;
pub mod layout;
pub mod login;
pub mod pages;
pub mod session;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::IncomingStream;
use axum::Router;
use tokio::net::TcpListener;

pub use app::{App, Staff};

/// The client's address, for the login limiter and the logs (plain HTTP and HTTPS alike).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

const CONSOLE_CSS: &str = include_str!("../../static/console.css");

async fn console_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CONSOLE_CSS).into_response()
}

/// Unknown paths: a page in the layout for staff (so the navigation is still there).
async fn not_found(req: axum::extract::Request) -> Response {
    match req.extensions().get::<Staff>().cloned() {
        Some(staff) => {
            let lang = staff.lang;
            let body = format!(
                "<p id=\"not-found\">{}</p>",
                crate::lang::esc(lang.t("이 주소에는 페이지가 없습니다.", "There is no page at this address."))
            );
            (StatusCode::NOT_FOUND, layout::page(&staff, lang.t("없는 페이지", "Not found"), "", &body)).into_response()
        }
        None => (StatusCode::NOT_FOUND, "없는 페이지입니다.\nNot found.\n").into_response(),
    }
}

/// Everything the console answers: login, /static/console.css, the pages, all behind the
/// session layer and with the security headers.
pub fn router(app: App) -> Router {
    Router::new()
        .merge(login::router())
        .route("/static/console.css", get(console_css))
        .merge(pages::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), session::guard))
        .layer(axum::middleware::from_fn(session::headers))
        .with_state(app)
}

/// Serves `router` on `listener` (HTTPS when `tls` is given) until `shutdown` completes; then
/// requests under way get a few seconds (live pages hold a connection open: they are not
/// waited for longer).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let (mut a, mut b) = (stopping.clone(), stopping);
    let graceful = async move {
        let _ = a.wait_for(|s| *s).await;
    };
    let served = async move {
        let service = router.into_make_service_with_connect_info::<Peer>();
        match tls {
            None => axum::serve(listener, service).with_graceful_shutdown(graceful).await,
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config)?;
                axum::serve(listener, service).with_graceful_shutdown(graceful).await
            }
        }
    };
    let deadline = async move {
        let _ = b.wait_for(|s| *s).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    tokio::select! {
        r = served => r,
        _ = deadline => Ok(()),
    }
}

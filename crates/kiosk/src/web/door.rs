//! The door screen's routes: `GET /` the page (one file, inline CSS and JS, nothing fetched
//! from elsewhere), `GET /events` the state as Server-Sent Events, `GET /state` the state now
//! as JSON. Words and names only: no image is ever served.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::Stream;
use tokio::sync::watch;

use crate::door::DoorState;
use crate::shutdown::Shutdown;

const PAGE: &str = include_str!("door.html");

#[derive(Clone)]
struct Door {
    state: watch::Receiver<DoorState>,
    shutdown: Shutdown,
}

pub fn router(state: watch::Receiver<DoorState>, shutdown: Shutdown) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/state", get(now))
        .with_state(Door { state, shutdown })
        .layer(axum::middleware::from_fn(loopback_host))
}

/// Answers only requests addressed to this machine by name: a web page elsewhere that points its
/// own DNS name at 127.0.0.1 (DNS rebinding) could otherwise read the children's names shown at
/// the door through the kiosk's browser.
async fn loopback_host(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if is_loopback_host(host) {
        next.run(request).await
    } else {
        (StatusCode::MISDIRECTED_REQUEST, "the door screen answers 127.0.0.1, [::1] and localhost only\n")
            .into_response()
    }
}

fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(addr, _)| addr),
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "::1")
}

async fn page() -> Response {
    let mut r = PAGE.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // The page loads nothing from elsewhere, and may not.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json(state: &DoorState) -> String {
    // A plain struct of strings and numbers: serialising cannot fail.
    serde_json::to_string(state).unwrap_or_default()
}

async fn now(axum::extract::State(door): axum::extract::State<Door>) -> Response {
    let body = json(&door.state.borrow());
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

/// The state at once, then every change; ends at shutdown (the browser's EventSource then
/// reconnects by itself to the next daemon).
async fn events(
    axum::extract::State(door): axum::extract::State<Door>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = door.state.clone();
    rx.mark_changed();
    let stream = futures_util::stream::unfold((rx, door.shutdown), |(mut rx, shutdown)| async move {
        tokio::select! {
            _ = shutdown.wait() => None,
            changed = rx.changed() => {
                changed.ok()?;
                let data = json(&rx.borrow_and_update());
                // A short retry: the page comes back soon after the daemon restarts.
                let event = Event::default().event("state").retry(Duration::from_secs(1)).data(data);
                Some((Ok(event), (rx, shutdown)))
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_names_of_this_machine_are_answered() {
        for ok in ["127.0.0.1:8480", "127.0.0.1", "localhost:8480", "LOCALHOST", "[::1]:8480"] {
            assert!(super::is_loopback_host(ok), "{ok}");
        }
        for no in ["", "evil.example:8480", "127.0.0.1.evil.example", "[::2]:8480", "10.0.0.5:8480", "localhost.evil"] {
            assert!(!super::is_loopback_host(no), "{no}");
        }
    }
}

//! `GET /live`: Server-Sent Events, one per change in the center; console.js reloads the page's
//! `<main>` on each.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::web::{App, Staff};

pub async fn events(_staff: Staff, State(app): State<App>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.center.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(change) => Some((Ok(Event::default().event("change").data(change.name())), rx)),
            // Missed some: one reload covers them all.
            Err(RecvError::Lagged(_)) => Some((Ok(Event::default().event("change").data("many")), rx)),
            Err(RecvError::Closed) => None,
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

//! The staff pages. OWNED BY THE CENTER/PAGES WORK: board, alerts, visitors, air, health,
//! CSV, check-in by hand, enrolment; each page in its own file.
//!
//! An action (a POST) sends its command, waits for the kiosk's answer, keeps it, and answers
//! 303 to `{page}?done={request_id}`; the page shows the answer in `<p id="result">`.

mod air;
mod alerts;
mod assets;
mod attendance;
mod board;
mod enrol;
mod form;
mod health;
mod live;
mod visitors;

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use dolbom_contract::Command;
use serde::Serialize;

use super::{App, Staff};
use crate::center::commands::request_id;
use crate::center::Answer;
use crate::lang::esc;

/// The pages' routes; the web layer puts its session and CSRF checks in front of them.
pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(board::page))
        .route("/checkin", post(board::checkin))
        .route("/alerts", get(alerts::page))
        .route("/alerts/silence", post(alerts::silence))
        .route("/alerts/resolve", post(alerts::resolve))
        .route("/visitors", get(visitors::page))
        .route("/air", get(air::page))
        .route("/health", get(health::page))
        .route("/attendance", get(attendance::page))
        .route("/attendance.csv", get(attendance::csv))
        .route("/enrol", get(enrol::page))
        .route("/enrol/consent", post(enrol::consent))
        .route("/enrol/capture", post(enrol::capture))
        .route("/enrol/erase", post(enrol::erase))
        .route("/live", get(live::events))
        .route("/static/console.js", get(assets::script))
        .route("/static/pages.css", get(assets::style))
}

/// The kiosk's answer to the action `done` names, as `<p id="result">`; nothing without one.
fn result_block(app: &App, staff: &Staff, done: Option<&str>) -> String {
    let Some(answer) = done.and_then(|id| app.center.answer(id, &staff.id)) else { return String::new() };
    format!("<p id=\"result\" data-ok=\"{}\" role=\"status\">{}</p>", answer.ok(), esc(&answer.text(staff.lang)))
}

/// How long an action waits for its answer.
fn wait(app: &App) -> Duration {
    Duration::from_secs(app.config.commands.answer_timeout_secs)
}

/// Sends an action to `kiosk` (None: the console could not tell which), keeps the answer, and
/// sends staff back to `page` to read it.
async fn act<T: Serialize>(
    app: &App,
    staff: &Staff,
    page: &str,
    kiosk: Option<String>,
    command: Command,
    body: &T,
    request_id: &str,
) -> Response {
    // A capture at the door answers once the kiosk has looked for the face.
    let extra = if command == Command::Enroll { u64::from(enrol::CAPTURE_SECS) } else { 0 };
    let wait = wait(app) + Duration::from_secs(extra);
    let answer = match kiosk {
        Some(kiosk) => app.center.command(&kiosk, command, body, request_id, wait).await,
        None => Answer::NotSent {
            ko: "어느 키오스크로 보낼지 알 수 없습니다: 키오스크를 고르세요.".into(),
            en: "No kiosk to send it to: pick one.".into(),
        },
    };
    done(app, staff, page, request_id, answer)
}

/// Keeps `answer` and redirects to `page` with it.
fn done(app: &App, staff: &Staff, page: &str, request_id: &str, answer: Answer) -> Response {
    app.center.remember(request_id, &staff.id, answer);
    let sep = if page.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{page}{sep}done={request_id}")).into_response()
}

/// A form that is missing what the action needs: said on the page, nothing sent.
fn refuse(app: &App, staff: &Staff, page: &str, ko: &str, en: &str) -> Response {
    done(app, staff, page, &request_id(), Answer::NotSent { ko: ko.into(), en: en.into() })
}

/// The database failed: a plain page saying so (the error is logged).
fn trouble(staff: &Staff, error: impl std::fmt::Display) -> Response {
    tracing::error!(error = %error, "console page failed");
    let text = staff.lang.t(
        "콘솔 데이터베이스를 읽지 못했습니다. 잠시 후 다시 시도하세요.",
        "The console database could not be read. Try again shortly.",
    );
    (StatusCode::INTERNAL_SERVER_ERROR, super::layout::page(staff, text, "", &format!("<p>{}</p>", esc(text))))
        .into_response()
}

/// Person id → name, from every kiosk's roster.
fn names(app: &App) -> HashMap<String, String> {
    app.center.store.rosters().unwrap_or_default().into_iter().flat_map(|r| r.people).map(|p| (p.id, p.name)).collect()
}

/// A `<select name="kiosk">` of the kiosks with a roster; the first option lets the console pick.
fn kiosk_picker(app: &App, staff: &Staff, id: &str) -> String {
    let mut out = format!(
        "<label>{} <select name=\"kiosk\" id=\"{}\"><option value=\"\">{}</option>",
        staff.lang.t("키오스크", "Kiosk"),
        esc(id),
        staff.lang.t("자동 (마지막으로 본 곳)", "automatic (where last seen)")
    );
    for r in app.center.store.rosters().unwrap_or_default() {
        out.push_str(&format!("<option value=\"{0}\">{0}</option>", esc(&r.kiosk)));
    }
    out.push_str("</select></label>");
    out
}

fn temperature(t: Option<f32>) -> String {
    t.map(|t| format!("{t:.1} °C")).unwrap_or_else(|| "—".into())
}

#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod tests;

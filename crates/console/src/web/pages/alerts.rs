//! `GET /alerts`: fever alerts, active first, with silence and resolve.

use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use dolbom_contract::Command;

use super::form::Form;
use super::{act, names, refuse, result_block, trouble};
use crate::center::attendance::stamp;
use crate::center::commands::{request_id_of, AlertCommand};
use crate::lang::esc;
use crate::web::layout::{action_fields, page as layout};
use crate::web::{App, Staff};

pub async fn page(staff: Staff, State(app): State<App>, uri: Uri) -> Response {
    let q = Form::query(&uri);
    let alerts = match app.center.store.alerts() {
        Ok(a) => a,
        Err(e) => return trouble(&staff, e),
    };
    let l = staff.lang;
    let names = names(&app);
    let tz = app.center.store.tz();
    let rows: Vec<String> = alerts
        .iter()
        .map(|a| {
            let who = match &a.person {
                Some(p) => names.get(p).cloned().unwrap_or_else(|| p.clone()),
                None => l.t("방문자", "visitor").to_string(),
            };
            let state = match a.state.as_str() {
                "active" => l.t("진행 중", "active"),
                "silenced" => l.t("알림 끔", "silenced"),
                _ => l.t("해결됨", "resolved"),
            };
            let button = |action: &str, class: &str, text: &str| {
                format!(
                    "<form method=\"post\" action=\"/alerts/{action}\">{}<input type=\"hidden\" name=\"alert_id\" \
                     value=\"{}\"><button type=\"submit\" class=\"{class}\">{text}</button></form>",
                    action_fields(&staff),
                    esc(&a.alert_id)
                )
            };
            let mut actions = String::new();
            if a.state == "active" {
                actions.push_str(&button("silence", "silence", l.t("알림 끄기", "Silence")));
            }
            if a.state != "resolved" {
                actions.push_str(&button("resolve", "resolve", l.t("해결", "Resolve")));
            }
            format!(
                "<tr class=\"alert\" data-alert=\"{}\" data-state=\"{}\"><td>{}</td><td>{}</td><td>{:.1} °C</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td class=\"actions\">{actions}</td></tr>",
                esc(&a.alert_id),
                esc(&a.state),
                esc(&stamp(a.raised_ms, tz)),
                esc(&who),
                a.temperature_c,
                esc(state),
                esc(&a.kiosk),
                esc(a.changed_by.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        format!("<p id=\"no-alerts\">{}</p>", l.t("발열 알림이 없습니다.", "No fever alerts."))
    } else {
        format!(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead>\
             <tbody>{}</tbody></table>",
            l.t("시각", "When"),
            l.t("누구", "Who"),
            l.t("체온", "Temperature"),
            l.t("상태", "State"),
            l.t("키오스크", "Kiosk"),
            l.t("처리한 사람", "Changed by"),
            rows.join("")
        )
    };
    let note = l.t(
        "발열 선별 결과입니다. 진단이 아니니 체온계로 확인하세요.",
        "Screening readings, not a diagnosis: confirm with a thermometer.",
    );
    let body = format!("{}<p class=\"note\">{note}</p>{table}", result_block(&app, &staff, q.get("done")));
    layout(&staff, l.t("발열 알림", "Fever alerts"), "alerts", &body).into_response()
}

pub async fn silence(staff: Staff, State(app): State<App>, body: String) -> Response {
    alert_action(staff, app, body, Command::Silence).await
}

pub async fn resolve(staff: Staff, State(app): State<App>, body: String) -> Response {
    alert_action(staff, app, body, Command::Resolve).await
}

/// The alert's own kiosk gets the command.
async fn alert_action(staff: Staff, app: App, body: String, command: Command) -> Response {
    let f = Form::parse(&body);
    let Some(alert_id) = f.get("alert_id") else {
        return refuse(&app, &staff, "/alerts", "알림을 고르세요.", "Choose an alert.");
    };
    let kiosk = match app.center.store.alert_kiosk(alert_id) {
        Ok(Some(k)) => k,
        Ok(None) => return refuse(&app, &staff, "/alerts", "그런 알림이 없습니다.", "There is no such alert."),
        Err(e) => return trouble(&staff, e),
    };
    let id = request_id_of(f.get("request_id"));
    let cmd = AlertCommand { alert_id, by: &staff.id, request_id: &id };
    act(&app, &staff, "/alerts", Some(kiosk), command, &cmd, &id).await
}

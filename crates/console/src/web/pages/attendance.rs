//! `GET /attendance`: a month's attendance, and `GET /attendance.csv?month=YYYY-MM` to download it.

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::form::Form;
use super::{names, temperature, trouble};
use crate::center::attendance::hhmm;
use crate::center::csv::{self, month_range};
use crate::lang::esc;
use crate::web::layout::page as layout;
use crate::web::{App, Staff};

pub async fn page(staff: Staff, State(app): State<App>, uri: Uri) -> Response {
    let q = Form::query(&uri);
    let store = &app.center.store;
    let this_month = store.today().get(..7).unwrap_or_default().to_string();
    let month = q.get("month").filter(|m| month_range(m).is_some()).unwrap_or(&this_month).to_string();
    let Some((first, last)) = month_range(&month) else { return trouble(&staff, "no month") };
    let records = match store.records(&first.to_string(), &last.to_string()) {
        Ok(r) => r,
        Err(e) => return trouble(&staff, e),
    };
    let l = staff.lang;
    let names = names(&app);
    let rows: String = records
        .iter()
        .map(|r| {
            format!(
                "<tr class=\"day\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.day),
                esc(names.get(&r.person).unwrap_or(&r.person)),
                esc(&r.arrival_ms.map(|t| hhmm(t, store.tz())).unwrap_or_default()),
                esc(&r.departure_ms.map(|t| hhmm(t, store.tz())).unwrap_or_default()),
                esc(&r.methods.join(" ")),
                esc(&temperature(r.temperature_c)),
            )
        })
        .collect();
    let body = format!(
        "<form method=\"get\" action=\"/attendance\"><label>{} <input type=\"month\" id=\"month\" name=\"month\" \
         value=\"{m}\"></label> <button type=\"submit\">{}</button></form>\
         <p><a id=\"download\" href=\"/attendance.csv?month={m}\" download>{}</a></p>\
         <table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        l.t("월", "Month"),
        l.t("보기", "Show"),
        l.t("CSV 내려받기 (엑셀)", "Download CSV (Excel)"),
        l.t("날짜", "Date"),
        l.t("이름", "Name"),
        l.t("등원", "Arrival"),
        l.t("하원", "Departure"),
        l.t("방법", "Method"),
        l.t("체온", "Temperature"),
        m = esc(&month),
    );
    layout(&staff, l.t("출석부", "Attendance"), "attendance", &body).into_response()
}

pub async fn csv(staff: Staff, State(app): State<App>, uri: Uri) -> Response {
    let q = Form::query(&uri);
    let month = q.get("month").unwrap_or_default().to_string();
    match csv::month(&app.center, &month) {
        Ok(Some(file)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"attendance-{month}.csv\"")),
            ],
            file,
        )
            .into_response(),
        Ok(None) => (
            StatusCode::BAD_REQUEST,
            staff.lang.t("month=YYYY-MM 형식으로 월을 주세요.", "Give the month as month=YYYY-MM.").to_string(),
        )
            .into_response(),
        Err(e) => trouble(&staff, e),
    }
}

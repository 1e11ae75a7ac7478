//! `GET /visitors`: today's unknown faces at the doors (time, door, temperature; never an image).

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{temperature, trouble};
use crate::center::attendance::hhmm;
use crate::lang::esc;
use crate::web::layout::page as layout;
use crate::web::{App, Staff};

pub async fn page(staff: Staff, State(app): State<App>) -> Response {
    let store = &app.center.store;
    let visitors = match store.visitors(&store.today()) {
        Ok(v) => v,
        Err(e) => return trouble(&staff, e),
    };
    let l = staff.lang;
    let rows: String = visitors
        .iter()
        .map(|v| {
            format!(
                "<tr class=\"visitor\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&hhmm(v.ts_ms, store.tz())),
                esc(&v.kiosk),
                esc(&temperature(v.temperature_c))
            )
        })
        .collect();
    let body = if visitors.is_empty() {
        format!("<p id=\"no-visitors\">{}</p>", l.t("오늘은 방문자가 없습니다.", "No visitors today."))
    } else {
        format!(
            "<p><span id=\"count-visitors\">{}</span> {}</p><table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr>\
             </thead><tbody>{rows}</tbody></table>",
            visitors.len(),
            l.t("명", "visitors"),
            l.t("시각", "Time"),
            l.t("키오스크", "Kiosk"),
            l.t("체온", "Temperature"),
        )
    };
    layout(&staff, l.t("오늘 방문자", "Visitors today"), "visitors", &body).into_response()
}

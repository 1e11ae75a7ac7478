//! `GET /`: today's board. Every child on the rosters in three groups (present, left, not
//! arrived), classes in `[[classes]]` order; a check-in by hand per row.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use dolbom_contract::{AttendanceKind, CheckinCommand, Command};

use super::form::Form;
use super::{act, refuse, result_block, temperature, trouble};
use crate::center::attendance::{children, hhmm, State as Presence};
use crate::center::commands::request_id_of;
use crate::lang::esc;
use crate::web::layout::{action_fields, page as layout};
use crate::web::{App, Staff};

pub async fn page(staff: Staff, State(app): State<App>, uri: Uri) -> Response {
    let q = Form::query(&uri);
    let store = &app.center.store;
    let (rosters, records) = match (store.rosters(), store.records(&store.today(), &store.today())) {
        (Ok(r), Ok(d)) => (r, d),
        (Err(e), _) | (_, Err(e)) => return trouble(&staff, e),
    };
    let today: HashMap<&str, _> = records.iter().map(|r| (r.person.as_str(), r)).collect();
    let kids = children(&app.config, &rosters);
    let l = staff.lang;
    let groups = [
        (Presence::Present, l.t("등원", "Present")),
        (Presence::Left, l.t("하원", "Left")),
        (Presence::Absent, l.t("아직 안 옴", "Not arrived")),
    ];
    let mut counts = String::new();
    let mut sections = String::new();
    for (state, title) in groups {
        let rows: Vec<String> = kids
            .iter()
            .filter(|c| Presence::of(today.get(c.id.as_str()).copied()) == state)
            .map(|c| {
                let r = today.get(c.id.as_str());
                let time = |ms: Option<i64>| ms.map(|t| hhmm(t, store.tz())).unwrap_or_else(|| "—".into());
                format!(
                    "<tr class=\"child\" data-person=\"{id}\" data-state=\"{st}\"><td class=\"name\">{name}</td>\
                     <td class=\"class\">{class}</td><td class=\"arrival\">{arr}</td><td class=\"departure\">{dep}</td>\
                     <td class=\"temperature\">{temp}</td><td><form method=\"post\" action=\"/checkin\">{csrf}\
                     <input type=\"hidden\" name=\"person\" value=\"{id}\">\
                     <button type=\"submit\" name=\"kind\" value=\"arrival\" class=\"checkin-arrival\">{a}</button>\
                     <button type=\"submit\" name=\"kind\" value=\"departure\" class=\"checkin-departure\">{d}</button>\
                     </form></td></tr>",
                    id = esc(&c.id),
                    st = state.code(),
                    name = esc(&c.name),
                    class = esc(c.class.as_deref().unwrap_or("")),
                    arr = esc(&time(r.and_then(|r| r.arrival_ms))),
                    dep = esc(&time(r.and_then(|r| r.departure_ms))),
                    temp = match r {
                        Some(r) if r.remeasure => esc(l.t("재측정 필요", "re-measure")),
                        _ => esc(&temperature(r.and_then(|r| r.temperature_c))),
                    },
                    csrf = action_fields(&staff),
                    a = l.t("등원 처리", "Arrived"),
                    d = l.t("하원 처리", "Left"),
                )
            })
            .collect();
        counts.push_str(&format!("<li>{title} <strong id=\"count-{}\">{}</strong></li>", state.code(), rows.len()));
        sections.push_str(&format!(
            "<section class=\"group\" id=\"group-{}\"><h2>{title}</h2><table><thead><tr><th>{}</th><th>{}</th>\
             <th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>{}</tbody></table></section>",
            state.code(),
            l.t("이름", "Name"),
            l.t("반", "Class"),
            l.t("등원", "Arrival"),
            l.t("하원", "Departure"),
            l.t("체온", "Temperature"),
            rows.join("")
        ));
    }
    let empty = if rosters.is_empty() {
        format!(
            "<p id=\"no-roster\">{}</p>",
            l.t("아직 키오스크의 명단이 없습니다.", "No kiosk has sent its roster yet.")
        )
    } else {
        String::new()
    };
    let body =
        format!("{}{empty}<ul class=\"counts\">{counts}</ul>{sections}", result_block(&app, &staff, q.get("done")));
    layout(&staff, l.t("오늘 출석", "Today"), "board", &body).into_response()
}

/// `POST /checkin`: `person`, `kind` (arrival|departure), optional `kiosk`.
pub async fn checkin(staff: Staff, State(app): State<App>, body: String) -> Response {
    let f = Form::parse(&body);
    let kind = match f.get("kind") {
        Some("arrival") => AttendanceKind::Arrival,
        Some("departure") => AttendanceKind::Departure,
        _ => return refuse(&app, &staff, "/", "등원인지 하원인지 고르세요.", "Choose arrival or departure."),
    };
    let Some(person) = f.get("person") else {
        return refuse(&app, &staff, "/", "아이를 고르세요.", "Choose a child.");
    };
    // One form holds both buttons: each kind its own request id.
    let posted = f.get("request_id").map(|r| format!("{r}{}", if kind == AttendanceKind::Arrival { "a" } else { "d" }));
    let id = request_id_of(posted.as_deref());
    let command =
        CheckinCommand { person: person.to_string(), kind, by: staff.id.clone(), request_id: Some(id.clone()) };
    let kiosk = app.center.kiosk_for(person, f.get("kiosk"));
    act(&app, &staff, "/", kiosk, Command::Checkin, &command, &id).await
}

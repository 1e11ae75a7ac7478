//! `GET /health`: each door in plain words, from its retained `status` (which carries its health).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use dolbom_contract::{CameraState, SensorState};

use super::trouble;
use crate::center::attendance::stamp;
use crate::center::store::parse_ms;
use crate::lang::{esc, Lang};
use crate::web::layout::page as layout;
use crate::web::{App, Staff};

/// A status older than this makes the kiosk count as offline.
const SILENT_MS: i64 = 5 * 60 * 1000;

fn sensor(state: SensorState, l: Lang) -> &'static str {
    match state {
        SensorState::Off => l.t("없음", "not fitted"),
        SensorState::Starting => l.t("시작 중", "starting"),
        SensorState::Ok => l.t("정상", "working"),
        SensorState::Retrying => l.t("다시 연결 중", "reconnecting"),
        SensorState::Faulty => l.t("고장 의심", "faulty"),
    }
}

pub async fn page(staff: Staff, State(app): State<App>) -> Response {
    let kiosks = match app.center.store.kiosks() {
        Ok(k) => k,
        Err(e) => return trouble(&staff, e),
    };
    let l = staff.lang;
    let tz = app.center.store.tz();
    let mut body = String::new();
    if kiosks.is_empty() {
        body.push_str(&format!(
            "<p id=\"no-kiosks\">{}</p>",
            l.t("아직 소식을 보낸 키오스크가 없습니다.", "No kiosk has reported yet.")
        ));
    }
    let now = jiff::Timestamp::now().as_millisecond();
    for k in &kiosks {
        let s = &k.status;
        // A kiosk repeats its status every 30 s by default; a retained "online" long unrepeated
        // is a kiosk that went quiet (or a console that lost the broker).
        let sent = parse_ms(&s.ts).unwrap_or(k.seen_ms);
        let quiet = now - sent > SILENT_MS;
        let online = s.state == "online" && !quiet;
        let connection = match (s.state == "online", quiet) {
            (true, false) => l.t("켜져 있음", "online"),
            (true, true) => l.t("5분 넘게 소식 없음", "silent for over 5 minutes"),
            _ => l.t("꺼져 있음 (연결 끊김)", "offline (gone)"),
        };
        let mut rows = vec![(l.t("연결", "Connection"), connection.to_string())];
        if let Some(h) = &s.health {
            let camera = match h.camera {
                CameraState::Ok => l.t("정상", "working"),
                CameraState::Starting => l.t("시작 중", "starting"),
                CameraState::Retrying => l.t("영상이 안 들어옴, 다시 시도 중", "no picture, retrying"),
                CameraState::Finished => l.t("끝남", "finished"),
            };
            rows.push((l.t("카메라", "Camera"), camera.to_string()));
            rows.push((l.t("체온 센서", "Thermal sensor"), sensor(h.thermal, l).to_string()));
            for (name, st) in &h.sensors {
                if name != "thermal" {
                    rows.push((l.t("센서", "Sensor"), format!("{name}: {}", sensor(st.state, l))));
                }
            }
            rows.push((
                l.t("브로커", "Broker"),
                if h.broker_connected { l.t("연결됨", "connected") } else { l.t("끊김", "disconnected") }.to_string(),
            ));
            rows.push((l.t("보내지 못한 이벤트", "Events waiting to send"), h.outbox_depth.to_string()));
            if h.degraded {
                rows.push((l.t("확인 필요", "Needs attention"), h.reasons.join("; ")));
            }
        }
        rows.push((l.t("마지막 소식", "Last seen"), stamp(sent, tz)));
        let dl: String = rows.iter().map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v))).collect();
        let degraded = s.health.as_ref().is_some_and(|h| h.degraded);
        body.push_str(&format!(
            "<section class=\"door-health\" data-kiosk=\"{}\" data-online=\"{online}\" data-degraded=\"{degraded}\">\
             <h2>{}</h2><dl>{dl}</dl></section>",
            esc(&k.kiosk),
            esc(&k.kiosk)
        ));
    }
    layout(&staff, l.t("키오스크 상태", "Door health"), "health", &body).into_response()
}

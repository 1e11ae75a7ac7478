//! The pages over real HTTP on loopback, with the center's store filled as the intake fills it.

use dolbom_contract::AttendanceKind::{Arrival, Departure};
use dolbom_contract::ConsentState;

use crate::center::testing::{attendance, config, http, now_ts, offline, roster, serve};

#[tokio::test]
async fn the_board_groups_children_and_counts_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "board", 1, 1));
    let s = &center.store;
    s.roster(&roster(
        "board",
        "door-1",
        &[
            ("minji", "김민지", true, ConsentState::InForce),
            ("jun", "<b>준</b>", true, ConsentState::InForce),
            ("seoyun", "이서윤", false, ConsentState::None),
        ],
    ))
    .expect("roster");
    s.attendance(&attendance("board", "door-1", "minji", &now_ts(), Arrival, Some(36.7))).expect("arrival");
    s.attendance(&attendance("board", "door-1", "jun", &now_ts(), Arrival, Some(36.2))).expect("arrival");
    s.attendance(&attendance("board", "door-1", "jun", &now_ts(), Departure, None)).expect("departure");
    let addr = serve(center.clone()).await;
    let page = http(addr, "GET", "/", "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    assert!(b.contains("<tr class=\"child\" data-person=\"minji\" data-state=\"present\">"), "{b}");
    assert!(b.contains("data-person=\"jun\" data-state=\"left\""), "{b}");
    assert!(b.contains("data-person=\"seoyun\" data-state=\"absent\""), "{b}");
    for (id, n) in [("present", 1), ("left", 1), ("absent", 1)] {
        assert!(b.contains(&format!("id=\"count-{id}\">{n}<")), "{id} {b}");
    }
    assert!(b.contains("36.7 °C") && b.contains("해님반"));
    assert!(b.contains("&lt;b&gt;준&lt;/b&gt;") && !b.contains("<b>준"), "names are escaped");
    assert!(b.contains("class=\"checkin-arrival\"") && b.contains("name=\"csrf\" value=\"token\""));
    // The class comes first: minji (해님반) before anyone in no class within a group.
    assert!(b.contains("action=\"/checkin\""));
}

#[tokio::test]
async fn an_action_with_no_kiosk_to_answer_says_so() {
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "quiet", 1, 1));
    center
        .store
        .roster(&roster("quiet", "door-1", &[("minji", "김민지", true, ConsentState::InForce)]))
        .expect("roster");
    let addr = serve(center).await;
    let sent = http(addr, "POST", "/checkin", "csrf=token&person=minji&kind=arrival").await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let to = sent.header("location").expect("location");
    assert!(to.starts_with("/?done="), "{to}");
    let page = http(addr, "GET", &to, "").await;
    assert!(page.body.contains("<p id=\"result\" data-ok=\"false\""), "{}", page.body);
    assert!(page.body.contains("키오스크가 응답하지 않았습니다"), "{}", page.body);
    // Another request id (or none) shows nothing.
    let other = http(addr, "GET", "/?done=nothing", "").await;
    assert!(!other.body.contains("id=\"result\""));
    // A form without its kind sends nothing and says why.
    let bad = http(addr, "POST", "/checkin", "csrf=token&person=minji").await;
    let page = http(addr, "GET", &bad.header("location").expect("location"), "").await;
    assert!(page.body.contains("등원인지 하원인지"), "{}", page.body);
}

#[tokio::test]
async fn the_csv_downloads_with_its_name_and_a_bad_month_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "csvh", 1, 1));
    center
        .store
        .attendance(&attendance("csvh", "door-1", "minji", "2026-11-03T08:40:00+09:00", Arrival, Some(36.6)))
        .expect("arrival");
    let addr = serve(center).await;
    let page = http(addr, "GET", "/attendance?month=2026-11", "").await;
    assert!(
        page.body.contains("id=\"month\"")
            && page.body.contains("id=\"download\" href=\"/attendance.csv?month=2026-11\"")
    );
    assert!(page.body.contains("2026-11-03"), "{}", page.body);
    let csv = http(addr, "GET", "/attendance.csv?month=2026-11", "").await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").is_some_and(|c| c.starts_with("text/csv")));
    assert!(csv.header("content-disposition").is_some_and(|c| c.contains("attendance-2026-11.csv")));
    assert!(csv.bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM");
    assert!(csv.body.contains("2026-11-03,minji,"));
    assert_eq!(http(addr, "GET", "/attendance.csv?month=2026-1", "").await.status, 400);
}

#[tokio::test]
async fn pages_without_data_say_so_and_the_assets_are_served() {
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "empty", 1, 1));
    let addr = serve(center).await;
    for (path, id) in [
        ("/air", "no-air"),
        ("/health", "no-kiosks"),
        ("/visitors", "no-visitors"),
        ("/alerts", "no-alerts"),
        ("/enrol", "no-roster"),
        ("/", "no-roster"),
    ] {
        let page = http(addr, "GET", path, "").await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{path}: {}", page.body);
    }
    let js = http(addr, "GET", "/static/console.js", "").await;
    assert!(js.header("content-type").is_some_and(|c| c.contains("javascript")) && js.body.contains("EventSource"));
    let css = http(addr, "GET", "/static/pages.css", "").await;
    assert!(css.header("content-type").is_some_and(|c| c.contains("text/css")));
}

#[tokio::test]
async fn erase_needs_its_confirmation() {
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "erase", 1, 1));
    center
        .store
        .roster(&roster("erase", "door-1", &[("minji", "김민지", true, ConsentState::InForce)]))
        .expect("roster");
    let addr = serve(center).await;
    let page = http(addr, "GET", "/enrol?person=minji", "").await;
    for id in ["consent-form", "capture-form", "erase-form", "erase-confirm", "roster-state"] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page.body.contains("data-face=\"true\" data-consent=\"in_force\""), "{}", page.body);
    let sent = http(addr, "POST", "/enrol/erase", "csrf=token&person=minji&reason=x").await;
    let to = sent.header("location").expect("location");
    assert!(to.starts_with("/enrol?person=minji&done="), "{to}");
    let page = http(addr, "GET", &to, "").await;
    assert!(page.body.contains("data-ok=\"false\"") && page.body.contains("확인 칸"), "{}", page.body);
}

#[tokio::test]
async fn live_events_follow_what_the_doors_report() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "live", 1, 1));
    let addr = serve(center.clone()).await;
    let reader = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
        s.write_all(format!("GET /live HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
            .expect("write");
        let mut seen = String::new();
        let mut buf = [0u8; 1024];
        while !seen.contains("data: attendance") {
            let n = s.read(&mut buf).expect("an event within 10 s");
            assert!(n > 0, "stream ended: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        seen
    });
    // Keep announcing until the reader is connected and has heard one.
    let topic = dolbom_contract::Topics::new("live", "door-1").attendance();
    for _ in 0..100 {
        if reader.is_finished() {
            break;
        }
        let e = attendance("live", "door-1", "minji", &now_ts(), Arrival, Some(36.5));
        crate::center::intake::take_in(&center, &topic, &serde_json::to_vec(&e).expect("json")).expect("stored");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seen = reader.await.expect("reader");
    assert!(seen.contains("text/event-stream") && seen.contains("event: change"), "{seen}");
}

#[tokio::test]
async fn health_air_and_visitors_show_what_the_doors_report() {
    use dolbom_contract::{AirTelemetry, DustGrade, DustReading, IndoorAir, OutdoorAirReport, Reading, Topics};
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "doors", 1, 1));
    let (t1, t2) = (Topics::new("doors", "door-1"), Topics::new("doors", "door-2"));
    let health = serde_json::json!({
        "degraded": true, "reasons": ["camera not delivering frames"], "camera": "retrying", "camera_error": "gone",
        "models": "ok", "broker_connected": true, "mqtt_protocol": "5", "outbox_depth": 7, "outbox_dropped": 0,
        "frames_read": 1, "frames_processed": 1, "frames_dropped": 0, "active_tracks": 0, "events_queued": 0,
        "events_published": 0, "thermal": "ok", "thermal_error": null, "thermal_frames": 5,
        "thermal_checksum_errors": 0, "thermal_malformed": 0
    });
    let status_at = |kiosk: &str, state: &str, health: Option<&serde_json::Value>, ts: &str| {
        let mut s = serde_json::json!({"schema": "dolbom.status/1", "state": state, "center": "doors", "kiosk": kiosk,
            "ts": ts, "version": "0.1.0"});
        if let Some(h) = health {
            s["health"] = h.clone();
        }
        serde_json::to_vec(&s).expect("json")
    };
    let take = |topic: &str, payload: &[u8]| crate::center::intake::take_in(&center, topic, payload).expect("stored");
    let status =
        |kiosk: &str, state: &str, health: Option<&serde_json::Value>| status_at(kiosk, state, health, &now_ts());
    take(&t1.status(), &status("door-1", "online", Some(&health)));
    take(&t2.status(), &status("door-2", "offline", None));
    // Retained "online", but from an hour ago: the kiosk went quiet.
    let t3 = Topics::new("doors", "door-3");
    take(&t3.status(), &status_at("door-3", "online", Some(&health), "2026-01-01T09:00:00+09:00"));
    let reading = |v: f32| Reading { value: v, at: now_ts(), age_secs: 0 };
    let dust = |v: f32| DustReading {
        value: v,
        at: now_ts(),
        age_secs: 0,
        grade: DustGrade::pm25(v).expect("a grade").label(),
    };
    let air = AirTelemetry {
        schema: dolbom_contract::AIR_TELEMETRY_SCHEMA.into(),
        center: "doors".into(),
        kiosk: "door-1".into(),
        ts: now_ts(),
        indoor: IndoorAir { pm25: Some(dust(12.0)), co2_ppm: Some(reading(850.0)), ..Default::default() },
        outdoor: OutdoorAirReport { pm25: Some(dust(40.0)), ..Default::default() },
    };
    take(&t1.air_telemetry(), &serde_json::to_vec(&air).expect("json"));
    let visitor = serde_json::json!({"schema": "dolbom.visitor/1", "event_id": dolbom_contract::new_event_id(),
        "center": "doors", "kiosk": "door-2", "ts": now_ts(), "track_id": 3, "temperature_c": 36.8,
        "temperature_status": "normal"});
    take(&t2.visitor(), &serde_json::to_vec(&visitor).expect("json"));
    take(&t2.visitor(), b"not json");
    assert_eq!(center.malformed.load(std::sync::atomic::Ordering::Relaxed), 1);
    // A door writing under its own topic cannot speak for another door or center.
    let foreign = roster("doors", "door-1", &[("minji", "김민지", true, ConsentState::InForce)]);
    take(&t2.roster(), &serde_json::to_vec(&foreign).expect("json"));
    let elsewhere = attendance("other-center", "door-2", "minji", &now_ts(), Arrival, Some(36.5));
    take(&t2.attendance(), &serde_json::to_vec(&elsewhere).expect("json"));
    assert_eq!(center.malformed.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert!(center.store.rosters().expect("rosters").is_empty(), "a roster from the wrong topic was stored");

    let addr = serve(center.clone()).await;
    let page = http(addr, "GET", "/health", "").await.body;
    assert!(page.contains("data-kiosk=\"door-1\" data-online=\"true\" data-degraded=\"true\""), "{page}");
    assert!(page.contains("data-kiosk=\"door-2\" data-online=\"false\""), "{page}");
    assert!(page.contains("영상이 안 들어옴") && page.contains("<dd>7</dd>"), "{page}");
    assert!(page.contains("data-kiosk=\"door-3\" data-online=\"false\"") && page.contains("5분 넘게"), "{page}");
    let page = http(addr, "GET", "/air", "").await.body;
    assert!(page.contains("850 ppm") && page.contains("12 µg/m³") && page.contains("40 µg/m³"), "{page}");
    assert!(page.contains("<svg id=\"plot-co2\"") && !page.contains("no-air"), "{page}");
    let page = http(addr, "GET", "/visitors", "").await.body;
    assert!(page.contains("id=\"count-visitors\">1<") && page.contains("36.8 °C") && !page.contains("<img"), "{page}");
}

#[tokio::test]
async fn only_the_kiosk_a_command_went_to_can_answer_it() {
    use dolbom_contract::{Command, CommandResult, Topics};
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "answers", 1, 1));
    let waiter = {
        let center = center.clone();
        tokio::spawn(async move {
            let body = serde_json::json!({"person": "minji", "request_id": "req-1"});
            center.command("door-1", Command::Checkin, &body, "req-1", Duration::from_secs(5)).await
        })
    };
    let answer = |kiosk: &str| {
        let r = CommandResult {
            schema: dolbom_contract::COMMAND_RESULT_SCHEMA.into(),
            request_id: Some("req-1".into()),
            command: "checkin".into(),
            ok: true,
            alert_id: None,
            state: None,
            error: None,
            ts: now_ts(),
            person: Some("minji".into()),
            message: Some(format!("checked in at {kiosk} / {kiosk}에서 등원 처리")),
        };
        serde_json::to_vec(&r).expect("json")
    };
    // Wait until the command is pending, then answer from the wrong door first.
    while !center.is_pending("req-1") {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let take = |kiosk: &str| {
        crate::center::intake::take_in(&center, &Topics::new("answers", kiosk).command_result(), &answer(kiosk))
            .expect("stored")
    };
    take("door-2");
    assert!(center.is_pending("req-1"), "an answer from door-2 settled door-1's command");
    take("door-1");
    match waiter.await.expect("waiter") {
        crate::center::commands::Answer::Done(r) => assert!(r.message.as_deref().is_some_and(|m| m.contains("door-1"))),
        other => panic!("{other:?}"),
    }
}

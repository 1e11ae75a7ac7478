//! Against the real Mosquitto on 127.0.0.1:1883, a test playing the kiosk: what a door
//! publishes reaches console.db and the board, and a staff action goes to the door signed and
//! comes back with the door's answer. Each test has its own center id.

use std::sync::Arc;
use std::time::Duration;

use dolbom_contract::signed::{self, Window};
use dolbom_contract::{
    AlertState, AlertStateKind, AttendanceKind, CommandResult, ConsentState, PersonRef, Role, Topics,
};
use dolbom_mqtt::{BrokerConfig, Outgoing5, Protocol, Session, SessionEvent};
use tokio::sync::mpsc;

use super::testing::{attendance, center_id, config, http, now_ts, roster, serve, KEY};
use super::Center;

/// A kiosk's MQTT connection, connected.
async fn kiosk(name: &str) -> Session {
    let options = BrokerConfig::default().connect_options(name);
    let mut s = Session::new(Protocol::V311, &options);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.poll().await {
                Ok(SessionEvent::Connected) => return,
                Ok(_) => {}
                Err(e) => panic!("the test broker on 127.0.0.1:1883: {e}"),
            }
        }
    })
    .await
    .expect("connected to the broker");
    s
}

fn message(topic: String, payload: Vec<u8>, retain: bool) -> Outgoing5 {
    Outgoing5 { topic, payload, retain, expiry_secs: None, user_properties: Vec::new() }
}

/// Waits (up to 10 s) for `check` to hold.
async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 10 s for {what}");
}

/// Clears the retained messages a test left on the broker.
async fn clear(s: &mut Session, topics: &[String]) {
    for t in topics {
        s.publish(&message(t.clone(), Vec::new(), true)).expect("clear");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn start(center: &str, answer_secs: u64) -> (tempfile::TempDir, Arc<Center>) {
    let dir = tempfile::tempdir().expect("tmp");
    let c = Center::start(Arc::new(config(dir.path(), center, 1883, answer_secs))).await.expect("center starts");
    (dir, c)
}

#[tokio::test]
async fn a_doors_roster_and_arrival_reach_the_store_and_the_board() {
    let id = center_id();
    let (_dir, center) = start(&id, 2).await;
    let mut changes = center.subscribe();
    let mut door = kiosk(&format!("{id}-door-1")).await;
    let t = Topics::new(&id, "door-1");
    let r = roster(
        &id,
        "door-1",
        &[("minji", "김민지", true, ConsentState::InForce), ("seoyun", "이서윤", false, ConsentState::None)],
    );
    door.publish(&message(t.roster(), serde_json::to_vec(&r).expect("json"), true)).expect("roster");
    until("the roster", || center.store.rosters().is_ok_and(|r| r.len() == 1)).await;
    // Subscribed (the retained roster came): events now reach the console.
    let arrival = attendance(&id, "door-1", "minji", &now_ts(), AttendanceKind::Arrival, Some(36.5));
    let wire = serde_json::to_vec(&arrival).expect("json");
    door.publish(&message(t.attendance(), wire.clone(), false)).expect("arrival");
    door.publish(&message(t.attendance(), wire, false)).expect("the same arrival again");
    door.publish(&message(t.attendance(), b"{\"not\": \"an event\"}".to_vec(), false)).expect("junk");
    // Another center's event is not this console's.
    let other = attendance("elsewhere", "door-1", "seoyun", &now_ts(), AttendanceKind::Arrival, Some(36.4));
    door.publish(&message(
        Topics::new("elsewhere", "door-1").attendance(),
        serde_json::to_vec(&other).expect("json"),
        false,
    ))
    .expect("other center");
    until("the junk counted", || center.malformed.load(std::sync::atomic::Ordering::Relaxed) == 1).await;
    let today = center.store.today();
    let records = center.store.records(&today, &today).expect("records");
    assert_eq!(records.len(), 1, "one arrival, delivered twice: {records:?}");
    assert_eq!((records[0].person.as_str(), records[0].temperature_c), ("minji", Some(36.5)));
    // Live pages heard of it.
    let mut heard = Vec::new();
    while let Ok(c) = changes.try_recv() {
        heard.push(c);
    }
    assert!(heard.contains(&super::Change::Roster) && heard.contains(&super::Change::Attendance), "{heard:?}");

    let addr = serve(center.clone()).await;
    let board = http(addr, "GET", "/", "").await.body;
    assert!(board.contains("data-person=\"minji\" data-state=\"present\""), "{board}");
    assert!(board.contains("data-person=\"seoyun\" data-state=\"absent\""), "{board}");
    assert!(board.contains("id=\"count-present\">1<") && board.contains("36.5 °C"), "{board}");
    clear(&mut door, &[t.roster()]).await;
}

/// The door's side of a command: takes one signed command on `cmd/{name}`, checks it as the
/// kiosk's gate does, and answers on `cmd/result`. Reports the body it verified.
async fn answer_one(
    mut door: Session,
    topic: String,
    result_topic: String,
    verified: mpsc::UnboundedSender<serde_json::Value>,
) {
    door.subscribe(&topic).expect("subscribe");
    loop {
        match door.poll().await {
            Ok(SessionEvent::Message { topic: got, payload, .. }) if got == topic => {
                let cmd = signed::parse(&payload).expect("an envelope").expect("signed");
                let key = |id: &str| (id == "console").then_some(KEY.as_bytes());
                let now = jiff::Timestamp::now().as_millisecond();
                signed::verify(&cmd, &topic, key, now, Window { max_age_secs: 120, max_skew_secs: 30 })
                    .expect("signed with the console's key for this topic");
                let body: serde_json::Value = serde_json::from_str(&cmd.body).expect("json body");
                let name = topic.rsplit('/').next().unwrap_or_default();
                let alert = name == "silence";
                let result = CommandResult {
                    schema: dolbom_contract::COMMAND_RESULT_SCHEMA.into(),
                    request_id: body["request_id"].as_str().map(str::to_string),
                    command: name.into(),
                    ok: true,
                    alert_id: body["alert_id"].as_str().map(str::to_string),
                    state: alert.then_some(AlertStateKind::Silenced),
                    error: None,
                    ts: now_ts(),
                    person: body["person"].as_str().map(str::to_string),
                    message: Some(
                        if alert {
                            "alert silenced / 알림을 껐습니다"
                        } else {
                            "consent recorded / 동의를 기록했습니다"
                        }
                        .into(),
                    ),
                };
                door.publish(&message(result_topic.clone(), serde_json::to_vec(&result).expect("json"), false))
                    .expect("answer");
                let _ = verified.send(body);
            }
            Ok(SessionEvent::Subscribed { .. }) => {
                let _ = verified.send(serde_json::Value::Null);
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

#[tokio::test]
async fn silence_goes_to_the_alerts_door_signed_and_the_page_shows_its_answer() {
    let id = center_id();
    let (_dir, center) = start(&id, 5).await;
    let mut door = kiosk(&format!("{id}-door-2")).await;
    let t = Topics::new(&id, "door-2");
    let alert = AlertState {
        schema: dolbom_contract::ALERT_SCHEMA.into(),
        alert_id: "a1".into(),
        center: id.clone(),
        kiosk: "door-2".into(),
        state: AlertStateKind::Active,
        person: Some(PersonRef { id: "minji".into(), role: Role::Child }),
        temperature_c: 38.2,
        message: dolbom_contract::FEVER_MESSAGE.into(),
        raised_at: now_ts(),
        silenced_by: None,
        silenced_at: None,
        resolved_by: None,
        resolved_at: None,
        updated_at: now_ts(),
    };
    door.publish(&message(t.alert("a1"), serde_json::to_vec(&alert).expect("json"), true)).expect("alert");
    until("the alert", || center.store.alerts().is_ok_and(|a| a.len() == 1)).await;
    let addr = serve(center.clone()).await;
    let page = http(addr, "GET", "/alerts", "").await.body;
    assert!(page.contains("<tr class=\"alert\" data-alert=\"a1\" data-state=\"active\">"), "{page}");
    assert!(page.contains("class=\"silence\"") && page.contains("class=\"resolve\""));

    let (tx, mut rx) = mpsc::unbounded_channel();
    let responder = kiosk(&format!("{id}-door-2-cmd")).await;
    tokio::spawn(answer_one(responder, t.command(dolbom_contract::Command::Silence), t.command_result(), tx));
    assert_eq!(rx.recv().await, Some(serde_json::Value::Null), "the door listens");

    let sent = http(addr, "POST", "/alerts/silence", "csrf=token&alert_id=a1").await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let body = rx.recv().await.expect("the door got the command");
    assert_eq!((body["alert_id"].as_str(), body["by"].as_str()), (Some("a1"), Some("kim")));
    let to = sent.header("location").expect("location");
    assert_eq!(to, format!("/alerts?done={}", body["request_id"].as_str().expect("a request id")));
    let page = http(addr, "GET", &to, "").await.body;
    assert!(page.contains("<p id=\"result\" data-ok=\"true\""), "{page}");
    assert!(page.contains("알림을 껐습니다") && !page.contains("alert silenced"), "Korean half only: {page}");
    clear(&mut door, &[t.alert("a1")]).await;
}

#[tokio::test]
async fn a_door_that_does_not_answer_is_reported_after_the_timeout() {
    let id = center_id();
    let (_dir, center) = start(&id, 1).await;
    let mut door = kiosk(&format!("{id}-door-3")).await;
    let t = Topics::new(&id, "door-3");
    let r = roster(&id, "door-3", &[("minji", "김민지", true, ConsentState::InForce)]);
    door.publish(&message(t.roster(), serde_json::to_vec(&r).expect("json"), true)).expect("roster");
    until("the roster", || center.store.rosters().is_ok_and(|r| r.len() == 1)).await;
    // The door hears the command but never answers.
    door.subscribe(&t.command(dolbom_contract::Command::Checkin)).expect("subscribe");
    tokio::time::timeout(Duration::from_secs(5), async {
        while !matches!(door.poll().await, Ok(SessionEvent::Subscribed { .. })) {}
    })
    .await
    .expect("subscribed");
    let addr = serve(center.clone()).await;
    let started = std::time::Instant::now();
    let sent = http(addr, "POST", "/checkin", "csrf=token&person=minji&kind=departure").await;
    assert!(started.elapsed() >= Duration::from_secs(1), "waited answer_timeout_secs");
    let mut got = None;
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_millis(500), door.poll()).await {
        if let SessionEvent::Message { topic, payload, .. } = ev {
            got = Some((topic, payload));
        }
    }
    let (topic, payload) = got.expect("the command reached the door");
    assert_eq!(topic, t.command(dolbom_contract::Command::Checkin));
    let body: dolbom_contract::CheckinCommand =
        serde_json::from_str(&signed::parse(&payload).expect("envelope").expect("signed").body).expect("checkin");
    assert_eq!((body.person.as_str(), body.kind, body.by.as_str()), ("minji", AttendanceKind::Departure, "kim"));
    let page = http(addr, "GET", &sent.header("location").expect("location"), "").await.body;
    assert!(page.contains("data-ok=\"false\"") && page.contains("키오스크가 응답하지 않았습니다"), "{page}");
    clear(&mut door, &[t.roster()]).await;
}

#[tokio::test]
async fn consent_from_the_enrol_page_reaches_the_childs_door_and_its_answer_shows() {
    let id = center_id();
    let (_dir, center) = start(&id, 5).await;
    let mut door = kiosk(&format!("{id}-door-4")).await;
    let t = Topics::new(&id, "door-4");
    let r = roster(&id, "door-4", &[("minji", "김민지", false, ConsentState::None)]);
    door.publish(&message(t.roster(), serde_json::to_vec(&r).expect("json"), true)).expect("roster");
    until("the roster", || center.store.rosters().is_ok_and(|r| r.len() == 1)).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let responder = kiosk(&format!("{id}-door-4-cmd")).await;
    tokio::spawn(answer_one(responder, t.command(dolbom_contract::Command::Consent), t.command_result(), tx));
    assert_eq!(rx.recv().await, Some(serde_json::Value::Null), "the door listens");
    let addr = serve(center.clone()).await;
    let form = "csrf=token&person=minji&guardian=%EA%B9%80%EC%97%84%EB%A7%88&relation=%EC%96%B4%EB%A8%B8%EB%8B%88\
                &verified=signed+form&given_on=2026-12-01&until=2027-02-28&purposes=face-attendance\
                &purposes=template-refresh&kiosk=";
    let sent = http(addr, "POST", "/enrol/consent", form).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let body = rx.recv().await.expect("the door got the command");
    let consent: dolbom_contract::ConsentCommand = serde_json::from_value(body).expect("a consent command");
    assert_eq!(
        (consent.person.as_str(), consent.guardian.as_str(), consent.relation.as_str(), consent.by.as_str()),
        ("minji", "김엄마", "어머니", "kim")
    );
    assert_eq!(consent.purposes, vec!["face-attendance", "template-refresh"]);
    assert_eq!((consent.until.as_str(), consent.given_on.as_deref()), ("2027-02-28", Some("2026-12-01")));
    let to = sent.header("location").expect("location");
    assert!(to.starts_with("/enrol?person=minji&done="), "{to}");
    let page = http(addr, "GET", &to, "").await.body;
    assert!(page.contains("data-ok=\"true\"") && page.contains("동의를 기록했습니다"), "{page}");
    assert!(page.contains("data-face=\"false\" data-consent=\"none\""), "{page}");
    clear(&mut door, &[t.roster()]).await;
}

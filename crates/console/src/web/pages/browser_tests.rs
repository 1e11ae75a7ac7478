//! The pages in headless Chromium (the tests' shared WebDriver helper): the board refreshes
//! itself when a door reports (SSE, console.js swapping `<main>`), and a check-in button posts
//! its form and lands on the page with the answer.

use std::time::Duration;

use dolbom_contract::AttendanceKind::Arrival;
use dolbom_contract::{ConsentState, Topics};

use crate::center::testing::{attendance, config, now_ts, offline, roster, serve};

#[path = "../../../../../tests/common/browser.rs"]
mod browser;
#[path = "../../../../../tests/common/http.rs"]
mod http;

/// What the shared browser helper expects beside it.
mod broker {
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + timeout;
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_refreshes_itself_and_a_checkin_shows_its_answer() {
    let dir = tempfile::tempdir().expect("tmp");
    let center = offline(config(dir.path(), "browser", 1, 1));
    center
        .store
        .roster(&roster("browser", "door-1", &[("minji", "김민지", true, ConsentState::InForce)]))
        .expect("roster");
    let addr = serve(center.clone()).await;
    tokio::task::spawn_blocking(move || {
        let b = browser::Browser::start();
        b.goto(&format!("http://{addr}/"));
        b.wait_text("#count-absent", "one child not arrived", Duration::from_secs(10), |t| t == "1");
        assert_eq!(b.text("#count-present").as_deref(), Some("0"));
        // The door reports an arrival: the open page follows without a reload.
        b.run("window.__same_page = true; return null;", serde_json::json!([]));
        wait_until("the live stream to open", Duration::from_secs(10), || center.subscribe_count() > 0);
        let e = attendance("browser", "door-1", "minji", &now_ts(), Arrival, Some(36.6));
        let topic = Topics::new("browser", "door-1").attendance();
        crate::center::intake::take_in(&center, &topic, &serde_json::to_vec(&e).expect("json")).expect("stored");
        b.wait_text("#count-present", "the arrival on the board", Duration::from_secs(10), |t| t == "1");
        let row = b.text("tr.child[data-person=\"minji\"]").expect("minji's row");
        assert!(row.contains("36.6"), "{row}");
        assert_eq!(b.run("return window.__same_page === true;", serde_json::json!([])), serde_json::json!(true));
        // A button posts its form (with the CSRF field) and the page shows the kiosk's answer:
        // nobody answers here, so staff are told so.
        b.run(
            "document.querySelector('tr.child[data-person=\"minji\"] .checkin-departure').click(); return null;",
            serde_json::json!([]),
        );
        let result = b.wait_text("#result", "the answer", Duration::from_secs(15), |t| !t.is_empty());
        assert!(result.contains("응답하지 않았습니다"), "{result}");
        assert_eq!(
            b.run("return document.querySelector('#result').dataset.ok;", serde_json::json!([])),
            serde_json::json!("false")
        );
    })
    .await
    .expect("browser steps");
}

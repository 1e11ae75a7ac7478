//! The staff console end to end, in a real browser: the real kiosk daemon on the walk-up clip
//! (a feverish visitor, then Obama enrolled as a child) with the simulated thermal array on a
//! pty, real Mosquitto, the real relay texting through the gateway double, and `dolbom
//! console` driven by Debian's Chromium over WebDriver. A teacher logs in, sees the child
//! arrive on the board without reloading, silences the visitor's fever alert (the kiosk's
//! retained alert state changes), checks the child out by hand (the guardians get the
//! departure text, method "staff"), and downloads the month's attendance.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use common::broker::{system_broker_port, Subscriber};
use common::browser::Browser;
use common::console::{Console, ConsoleSetup};
use common::gateway::Gateway;
use common::kiosk::{enrol_child_obama, fever_toml, kiosk_config, spawn_kiosk, thermal_sensor, KioskOptions};
use common::relay::Relay;
use common::wait_until;
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

const SCENE: WalkUp = WalkUp { width: 640, height: 480, fps: 10.0, approach_secs: 2.0, stay_secs: 1.5, gap_secs: 1.5 };
const KIM: (&str, &str, &str) = ("kim", "김선생", "correct horse battery staple");
const WAIT: Duration = Duration::from_secs(60);

fn screenshot(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("DOLBOM_SCREENSHOTS") {
        browser.screenshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(name));
    }
}

fn click(browser: &Browser, css: &str) {
    let found = browser.run(
        "const e = document.querySelector(arguments[0]); if (!e) return false; e.click(); return true;",
        json!([css]),
    );
    assert_eq!(found, json!(true), "no `{css}` to click");
}

#[test]
fn a_teacher_follows_the_door_silences_an_alert_checks_a_child_out_and_exports_the_month() {
    let port = system_broker_port();
    let console = Console::start(ConsoleSetup { broker_port: port, ..ConsoleSetup::default() }, &[KIM]);
    let center = console.center.clone();
    let dir = tempfile::tempdir().expect("tempdir");

    // The door: a visitor at 38.4 °C, then Obama (a child here) at 36.6 °C; the clip loops so
    // the kiosk stays up to answer the console's commands.
    let people = vec![
        Walker { photo: common::photo("unknowns/Female_42_7.jpg"), skin_c: 38.4, far: false },
        Walker { photo: common::photo("face_recognition/obama.jpg"), skin_c: 36.6, far: false },
    ];
    let clip = dir.path().join("clip.avi");
    write_walk_up(&clip, &people, SCENE).expect("clip");
    let extra = format!(
        "{}\n[commands]\n[[commands.keys]]\nid = \"console\"\nfile = \"{}\"\n",
        fever_toml(dir.path()),
        console.dir.path().join("console.key").display()
    );
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: &clip, pace: "realtime", at_end: "loop", mqtt: "", extra: &extra },
    );
    enrol_child_obama(&config);

    let gateway = Gateway::start();
    let relay = Relay::start(dir.path(), &center, port, &gateway.url());
    let alerts = Subscriber::start(port, &format!("dolbom/v1/{center}/+/alert/#"));

    // Log in before anything happens at the door.
    let browser = Browser::start();
    let base = format!("http://127.0.0.1:{}", console.port);
    log_in(&browser, &console);

    let sensor = thermal_sensor(dir.path(), &config, people, SCENE);
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    let kiosk_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The roster arrives, then the child: the page changes without being reloaded.
    browser.wait_js(
        "return !!document.querySelector('tr.child[data-person=\"obama\"]');",
        "Obama on the board (the kiosk's roster)",
        WAIT,
    );
    browser.run("window.__notReloaded = true; return true;", json!([]));
    browser.wait_js(
        "return !!document.querySelector('tr.child[data-person=\"obama\"][data-state=\"present\"]');",
        "Obama present on the board",
        WAIT,
    );
    assert_eq!(browser.run("return window.__notReloaded === true;", json!([])), json!(true), "live, not reloaded");
    assert_eq!(browser.text("#count-present").as_deref(), Some("1"));
    screenshot(&browser, "console-board.png");

    // The visitor's fever alert: silence it from the alerts page.
    browser.goto(&format!("{base}/alerts"));
    browser.wait_js("return !!document.querySelector('tr.alert[data-state=\"active\"]');", "an active alert", WAIT);
    let alert_id = browser
        .run("return document.querySelector('tr.alert[data-state=\"active\"]').dataset.alert;", json!([]))
        .as_str()
        .expect("alert id")
        .to_string();
    click(&browser, &format!("tr.alert[data-alert=\"{alert_id}\"] .silence"));
    browser.wait_js("return document.querySelector('#result')?.dataset.ok === 'true';", "the kiosk's answer", WAIT);
    browser.wait_js(
        &format!("return !!document.querySelector('tr.alert[data-alert=\"{alert_id}\"][data-state=\"silenced\"]');"),
        "the alert silenced on the page",
        WAIT,
    );
    let silenced = |m: &[common::broker::Received]| {
        m.iter().any(|r| {
            r.topic.ends_with(&format!("alert/{alert_id}"))
                && r.payload["state"] == "silenced"
                && r.payload["silenced_by"] == "kim"
        })
    };
    alerts.wait_for(WAIT, "the alert state silenced by kim", |m| silenced(m));
    // What a phone connecting later finds: the retained state.
    let later = Subscriber::start(port, &format!("dolbom/v1/{center}/+/alert/{alert_id}"));
    later.wait_for(WAIT, "the retained alert state", |m| m.iter().any(|r| r.retained) && silenced(m));
    screenshot(&browser, "console-alerts.png");

    // Check Obama out by hand: the same departure event, the guardians' text.
    browser.goto(&format!("{base}/"));
    click(&browser, "tr.child[data-person=\"obama\"] .checkin-departure");
    browser.wait_js("return document.querySelector('#result')?.dataset.ok === 'true';", "the kiosk's answer", WAIT);
    browser.wait_js(
        "return !!document.querySelector('tr.child[data-person=\"obama\"][data-state=\"left\"]');",
        "Obama gone home on the board",
        WAIT,
    );
    wait_until("an arrival and a departure text to each guardian", WAIT, || gateway.received().len() >= 4);
    let texts: Vec<String> =
        gateway.received().iter().map(|r| r.body["text"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(texts.len(), 4, "exactly once each: {texts:#?}");

    // The month's attendance, downloaded with the session.
    let month = jiff::Timestamp::now().in_tz("Asia/Seoul").expect("tz").strftime("%Y-%m").to_string();
    let csv = browser.run_async(
        "const done = arguments[arguments.length - 1];\
         fetch('/attendance.csv?month=' + arguments[0]).then(r => r.text()).then(done);",
        json!([month]),
    );
    let csv = csv.as_str().expect("csv text").to_string();
    let row = csv.lines().find(|l| l.contains("obama")).unwrap_or_else(|| panic!("obama in the CSV:\n{csv}"));
    assert!(row.contains("staff"), "the departure's method: {row}");

    drop(browser);
    let _ = kiosk.kill();
    let _ = kiosk.wait();
    let _ = sensor.join();
    let relay_log = relay.stop();
    assert!(!kiosk_log().contains("panicked"), "{}", kiosk_log());
    assert!(relay_log.contains("sent"), "{relay_log}");
}

/// The console's login in Chromium, shared by the tests.
fn log_in(browser: &Browser, console: &Console) {
    browser.goto(&format!("http://127.0.0.1:{}/login", console.port));
    browser.run(
        "document.getElementById('login-id').value = arguments[0];\
         document.getElementById('login-password').value = arguments[1];\
         document.getElementById('login-submit').click(); return true;",
        json!([KIM.0, KIM.2]),
    );
    browser.wait_text("#staff-name", "the board after login", WAIT, |t| t == KIM.1);
}

/// Waits until the enrolment page's roster facts about the child read `face` and `consent`.
fn wait_roster_state(browser: &Browser, face: bool, consent: &str) {
    browser.wait_js(
        &format!("return !!document.querySelector('#roster-state[data-face=\"{face}\"][data-consent=\"{consent}\"]');"),
        &format!("the roster saying face {face}, consent {consent}"),
        WAIT,
    );
}

/// Enrolment from a teacher's phone: a child known only by her tag gets her guardian's consent
/// recorded, her face captured by the kiosk itself (the clip: her face walking up, again and
/// again), and then erased; each step is answered by the kiosk and seen on the roster.
#[test]
fn a_teacher_records_consent_captures_a_face_at_the_door_and_erases_it() {
    let port = system_broker_port();
    let console = Console::start(ConsoleSetup { broker_port: port, ..ConsoleSetup::default() }, &[KIM]);
    let center = console.center.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let people = vec![Walker { photo: common::photo("face_recognition/biden.jpg"), skin_c: 36.5, far: false }];
    let clip = dir.path().join("clip.avi");
    let scene = WalkUp { approach_secs: 2.0, stay_secs: 2.0, gap_secs: 1.0, ..SCENE };
    write_walk_up(&clip, &people, scene).expect("clip");
    let extra = format!(
        "\n[fever]\nstaff = [\"kim\"]\n\n[commands]\n[[commands.keys]]\nid = \"console\"\nfile = \"{}\"\n",
        console.dir.path().join("console.key").display()
    );
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: &clip, pace: "realtime", at_end: "loop", mqtt: "", extra: &extra },
    );
    let c = config.to_str().expect("utf-8");
    let out =
        common::dolbom(&["tag", "add", "minji", "62E3086CED", "--role", "child", "--name", "김민지", "--config", c]);
    assert!(out.status.success(), "tag: {}", common::stderr(&out));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);

    let browser = Browser::start();
    log_in(&browser, &console);
    let enrol = format!("http://127.0.0.1:{}/enrol?person=minji", console.port);
    browser.goto(&enrol);
    // The roster comes from the kiosk: reload until it has.
    wait_until("김민지 on the enrolment page", WAIT, || {
        browser.goto(&enrol);
        browser.run("return !!document.getElementById('roster-state');", json!([])) == json!(true)
    });
    wait_roster_state(&browser, false, "none");

    // 1. The guardian's consent, as the paper form says.
    let until =
        jiff::Timestamp::now().in_tz("Asia/Seoul").expect("tz").date().saturating_add(jiff::Span::new().years(1));
    browser.run(
        "const f = document.getElementById('consent-form');\
         f.guardian.value = '김엄마'; f.relation.value = '어머니'; f.verified.value = '서명한 동의서, 신분증 확인';\
         f.until.value = arguments[0]; f.querySelector('button').click(); return true;",
        json!([until.to_string()]),
    );
    browser.wait_js("return document.querySelector('#result')?.dataset.ok === 'true';", "consent recorded", WAIT);
    wait_roster_state(&browser, false, "in_force");

    // 2. Capture at the door: the kiosk films, enrols, and says how many templates.
    click(&browser, "#capture-form button");
    browser.wait_js("return document.querySelector('#result')?.dataset.ok === 'true';", "the face captured", WAIT);
    let answer = browser.text("#result").unwrap_or_default();
    assert!(answer.chars().any(|c| c.is_ascii_digit()), "how many templates: {answer}");
    wait_roster_state(&browser, true, "in_force");
    screenshot(&browser, "console-enrol.png");

    // 3. Erase: only with the box ticked; the templates go and the consent is withdrawn.
    browser.run(
        "document.getElementById('erase-confirm').checked = true;\
         document.querySelector('#erase-form button').click(); return true;",
        json!([]),
    );
    browser.wait_js("return document.querySelector('#result')?.dataset.ok === 'true';", "the face erased", WAIT);
    wait_roster_state(&browser, false, "withdrawn");

    let audit = common::dolbom(&["audit", "list", "--config", c]);
    let audit = String::from_utf8_lossy(&audit.stdout).to_string();
    for what in ["consent", "enrol", "withdraw"] {
        assert!(audit.lines().any(|l| l.contains(what) && l.contains("by kim")), "{what} by kim in:\n{audit}");
    }
    drop(browser);
    common::broker::signal(kiosk.id(), "TERM");
    assert!(common::kiosk::wait_exit(&mut kiosk, 30, &log).success());
}

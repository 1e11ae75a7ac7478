//! The door screen end to end: the real `dolbom kiosk` on a walk-up clip serves the page on
//! loopback, and Debian's Chromium (driven over WebDriver) shows what a child at the door
//! would read: the idle screen, a greeting by name, the visitor's message, and with the thermal
//! simulator the re-measure message for a cold arrival. Plain HTTP checks the event stream, and
//! a LAN address is refused at config load.
//!
//! `DOLBOM_SCREENSHOTS=docs/img` saves the screenshots the docs show (light, Korean).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::broker::{free_port, signal, system_broker_port};
use common::browser::Browser;
use common::kiosk::{
    clip, fever_toml, kiosk_config, spawn_kiosk, thermal_sensor, unique_center, wait_exit, KioskOptions, BIDEN_ENROL,
    OBAMA_ENROL,
};
use common::{http, photo, wait_until};
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

const IDLE: &str = "어서 오세요";

/// A kiosk in a temporary directory with the door screen on a free loopback port.
struct Door {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Door {
    /// `clip` played once in real time; `extra` adds sections. Obama is enrolled as the child
    /// 오바마, Biden as `biden_role` 바이든.
    fn new(tag: &str, clip: &Path, biden_role: &str, extra: impl FnOnce(&Path) -> String) -> Door {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let extra = format!(
            "{}\n[door_screen]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\ncenter_name = \"햇살어린이집\"\nidle_after_secs = 2\n",
            extra(dir.path())
        );
        let center = unique_center(tag);
        let options = KioskOptions {
            center: &center,
            port: system_broker_port(),
            clip,
            pace: "realtime",
            at_end: "exit",
            mqtt: "",
            extra: &extra,
        };
        let config = kiosk_config(dir.path(), &options);
        let c = config.to_str().expect("utf-8");
        for (id, role, name, photos) in
            [("obama", "child", "오바마", &OBAMA_ENROL[..]), ("biden", biden_role, "바이든", &BIDEN_ENROL[..])]
        {
            if role == "child" {
                common::consent(&config, id);
            }
            let paths: Vec<String> = photos.iter().map(|p| photo(p).display().to_string()).collect();
            let mut args = vec!["enroll", "--config", c, "--person", id, "--role", role, "--name", name];
            args.extend(paths.iter().map(String::as_str));
            let out = common::dolbom(&args);
            assert!(out.status.success(), "enrol {id}: {}", common::stderr(&out));
        }
        Door { dir, config, port }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("kiosk.log")
    }

    /// Starts the daemon and waits for the door screen to answer.
    fn start(&self) -> Child {
        let mut kiosk = spawn_kiosk(&self.config, &self.log());
        let log = self.log();
        wait_until("the door screen to answer", Duration::from_secs(60), || {
            if let Ok(Some(status)) = kiosk.try_wait() {
                panic!("kiosk exited ({status}); log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            http::request(self.port, "GET", "/state", None).is_ok_and(|r| r.status == 200)
        });
        kiosk
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// The distinct (title, detail) pairs the page showed, in order, polled until `done` says so
/// or the kiosk exits.
fn watch_page(
    browser: &Browser,
    kiosk: &mut Child,
    timeout: Duration,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let until = Instant::now() + timeout;
    let mut seen: Vec<(String, String)> = Vec::new();
    loop {
        let title = browser.text("#title-ko").unwrap_or_default();
        let detail = browser.text("#detail-ko").unwrap_or_default();
        if seen.last() != Some(&(title.clone(), detail.clone())) {
            seen.push((title, detail));
        }
        if done(&seen) || kiosk.try_wait().expect("try_wait").is_some() || Instant::now() > until {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}

fn titles(seen: &[(String, String)]) -> Vec<&str> {
    seen.iter().map(|(t, _)| t.as_str()).collect()
}

/// Where screenshots go, when asked for.
fn screenshot(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("DOLBOM_SCREENSHOTS") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        browser.screenshot(&dir.join(name));
    }
}

/// One kiosk at real-time pace (and its browser) at a time: three side by side on two cores
/// drop enough frames that a face can walk past unrecognised, and the screen never greets it.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn the_door_screen_greets_by_name_returns_to_idle_and_asks_a_visitor_to_wait() {
    let _one = one_at_a_time();
    let door = Door::new("door", clip(), "staff", |_| String::new());
    let browser = Browser::start();
    let mut kiosk = door.start();
    browser.goto(&door.url());
    browser.wait_text("#center", "the center's name", Duration::from_secs(10), |t| t == "햇살어린이집");
    browser.wait_text("#big-clock", "the clock", Duration::from_secs(10), |t| t.contains(':'));
    // Self-contained, and no image of anyone: no <img>, <video> or <canvas>, nothing fetched.
    let page = http::get(door.port, "/").text();
    for banned in ["<img", "<video", "<canvas", "http://", "https://", "getUserMedia"] {
        assert!(!page.contains(banned), "the page must not contain {banned}");
    }
    let seen = watch_page(&browser, &mut kiosk, Duration::from_secs(90), |seen| {
        titles(seen).contains(&"선생님을 기다려 주세요")
    });
    let t = titles(&seen);
    let greeted =
        t.iter().position(|x| *x == "오바마 어린이, 안녕하세요!").unwrap_or_else(|| panic!("no greeting: {t:?}"));
    assert!(t[..greeted].contains(&IDLE), "idle before the greeting: {t:?}");
    let back = t[greeted..].iter().position(|x| *x == IDLE).unwrap_or_else(|| panic!("never back to idle: {t:?}"));
    let adult =
        t.iter().position(|x| *x == "바이든님, 안녕하세요!").unwrap_or_else(|| panic!("no greeting for staff: {t:?}"));
    let visitor = t.iter().position(|x| *x == "선생님을 기다려 주세요").expect("visitor");
    assert!(greeted + back < adult && adult < visitor, "in the clip's order: {t:?}");
    // Screening is off on this kiosk: a greeting says nothing about a temperature.
    assert_eq!(seen[greeted].1, "", "no temperature line without screening: {seen:?}");
    let english = browser.text("#title-en").unwrap_or_default();
    assert!(english == "Please wait for a teacher" || english == "Welcome" || english.starts_with("Come"), "{english}");
    let status = wait_exit(&mut kiosk, 120, &door.log());
    assert!(status.success(), "kiosk log:\n{}", std::fs::read_to_string(door.log()).unwrap_or_default());
    // The daemon is gone: the page says it is reconnecting (EventSource tries by itself).
    browser.wait_js(
        "return !document.getElementById('offline').hidden",
        "the reconnecting note",
        Duration::from_secs(10),
    );
    assert!(browser.text("#offline").is_some_and(|t| t.contains("연결 중")));
}

/// Obama, enrolled as the child 오바마, walks up with skin at `skin_c` before the simulated
/// thermal array; returns what the page showed up to the greeting (its screenshot as `shot`).
fn greeting_with_thermal(tag: &str, skin_c: f32, shot: &str) -> (String, String) {
    let scene = WalkUp { width: 640, height: 480, fps: 10.0, approach_secs: 2.0, stay_secs: 1.5, gap_secs: 1.0 };
    let people = vec![Walker { photo: photo("face_recognition/obama.jpg"), skin_c, far: false }];
    let clip_dir = tempfile::tempdir().expect("tempdir");
    let clip = clip_dir.path().join("clip.avi");
    write_walk_up(&clip, &people, scene).expect("clip");
    let door = Door::new(tag, &clip, "staff", fever_toml);
    let browser = Browser::start();
    let sensor = thermal_sensor(door.dir.path(), &door.config, people, scene);
    let mut kiosk = door.start();
    browser.goto(&door.url());
    browser.wait_text("#title-ko", "the idle screen", Duration::from_secs(10), |t| t == IDLE);
    if skin_c > 36.0 {
        screenshot(&browser, "door-idle.png");
    }
    let seen = watch_page(&browser, &mut kiosk, Duration::from_secs(60), |seen| {
        seen.iter().any(|(t, _)| t.starts_with("오바마"))
    });
    assert_eq!(seen.last().map(|s| s.0.as_str()), Some("오바마 어린이, 안녕하세요!"), "{seen:?}");
    screenshot(&browser, shot);
    let english = browser.text("#detail-en").unwrap_or_default();
    let status = wait_exit(&mut kiosk, 120, &door.log());
    assert!(status.success(), "kiosk log:\n{}", std::fs::read_to_string(door.log()).unwrap_or_default());
    let _ = sensor.join();
    let (_, detail) = seen.last().cloned().expect("a state");
    (detail, english)
}

/// With the simulated thermal array: a warm child is greeted with a normal temperature; a cold
/// one (34 °C, from the street) is asked to measure again in 5 minutes.
#[test]
fn a_cold_arrival_reads_the_re_measure_message_at_the_door() {
    let _one = one_at_a_time();
    let (normal, _) = greeting_with_thermal("door-warm", 36.5, "door-greeting.png");
    assert!(normal.starts_with("체온 3") && normal.ends_with("℃ 정상이에요"), "a normal reading: {normal:?}");
    let (remeasure, english) = greeting_with_thermal("door-cold", 34.0, "door-remeasure.png");
    assert!(remeasure.starts_with("5분 후에 다시 측정해 주세요"), "the re-measure message: {remeasure:?}");
    assert_eq!(english, "Please measure again in 5 minutes; rest a little first");
}

/// `/events` streams the state as Server-Sent Events at once, and ends when the daemon stops
/// (SIGTERM), which it does promptly with the stream still open.
#[test]
fn the_event_stream_sends_the_state_and_ends_at_shutdown() {
    let _one = one_at_a_time();
    let empty = tempfile::tempdir().expect("tempdir");
    let clip = common::kiosk::empty_clip(empty.path());
    let door = Door::new("door-sse", &clip, "staff", |_| String::new());
    // Played in a loop: the daemon runs until it is told to stop.
    let text = std::fs::read_to_string(&door.config).expect("config").replace("at_end = \"exit\"", "at_end = \"loop\"");
    std::fs::write(&door.config, text).expect("config");
    let mut kiosk = door.start();
    let state = http::get(door.port, "/state");
    assert_eq!(state.header("content-type"), Some("application/json"));
    let state = state.json();
    assert_eq!((state["screen"].as_str(), state["center_name"].as_str()), (Some("idle"), Some("햇살어린이집")));
    assert_eq!(state["timezone"], "Asia/Seoul");

    // A page elsewhere whose DNS name was pointed at 127.0.0.1 (DNS rebinding) reads nothing.
    let mut rebound = std::net::TcpStream::connect(("127.0.0.1", door.port)).expect("connect");
    rebound.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(rebound, "GET /state HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n", door.port)
        .expect("request");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut rebound, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(!answer.contains("center_name"), "{answer}");

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", door.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    write!(stream, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n").expect("request");
    let mut reader = BufReader::new(stream);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("data: ")) {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("read") > 0, "stream ended early: {lines:?}");
        lines.push(line.trim_end().to_string());
    }
    assert!(lines[0].starts_with("HTTP/1.1 200"), "{lines:?}");
    assert!(lines.iter().any(|l| l.eq_ignore_ascii_case("content-type: text/event-stream")), "{lines:?}");
    assert!(lines.contains(&"event: state".to_string()), "{lines:?}");
    let data = lines.iter().find_map(|l| l.strip_prefix("data: ")).expect("data");
    let sent: serde_json::Value = serde_json::from_str(data).expect("JSON state");
    assert_eq!(sent["title"]["ko"], IDLE);

    let stopped = Instant::now();
    signal(kiosk.id(), "TERM");
    // The open stream ends (chunked body closed, connection closed) instead of holding the stop.
    let mut rest = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            // Keep-alive comments would keep a stream that never ends reading forever.
            Ok(_) if stopped.elapsed() > Duration::from_secs(15) => {
                panic!("the stream did not end at shutdown: {rest:?}")
            }
            Ok(_) => rest.push_str(&line),
            Err(e) => panic!("the stream did not end at shutdown: {e}; got {rest:?}"),
        }
    }
    let status = wait_exit(&mut kiosk, 30, &door.log());
    assert!(status.success(), "kiosk log:\n{}", std::fs::read_to_string(door.log()).unwrap_or_default());
    assert!(stopped.elapsed() < Duration::from_secs(15), "stopped in {:?}", stopped.elapsed());
    assert!(http::request(door.port, "GET", "/state", None).is_err(), "nothing listens after the stop");
}

/// The page shows children's names: a LAN address is refused before anything starts, and the
/// message names the key.
#[test]
fn a_lan_listen_address_is_refused_at_config_load() {
    let door = Door::new("door-lan", clip(), "staff", |_| String::new());
    let text = std::fs::read_to_string(&door.config).expect("config");
    let text = text.replace(&format!("listen = \"127.0.0.1:{}\"", door.port), "listen = \"0.0.0.0:8480\"");
    std::fs::write(&door.config, text).expect("config");
    let out = common::dolbom(&["kiosk", "--config", door.config.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "refused");
    let err = common::stderr(&out);
    assert!(err.contains("door_screen.listen") && err.contains("0.0.0.0:8480") && err.contains("루프백"), "{err}");
}

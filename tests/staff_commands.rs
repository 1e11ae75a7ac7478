//! The staff console's commands against the real kiosk daemon: a real Mosquitto, the real binary
//! on a real clip with a sealed gallery, commands signed as the console signs them
//! (`dolbom_contract::signed`), and what comes back on `cmd/result`, `event/attendance` and the
//! retained `roster`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::broker::{publish, signal, Broker, Received, Subscriber};
use common::kiosk::{empty_clip, enrol, kiosk_config, spawn_kiosk, unique_center, wait_exit, KioskOptions};
use common::{assert_valid, dolbom, photo, schema, stdout};
use dolbom_contract::signed;
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

const KEY: &[u8; 32] = b"0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The console's signing key in a 0600 file, and the `[fever] staff` and `[commands]` sections.
fn staff_sections(dir: &Path) -> String {
    let file = dir.join("console.key");
    std::fs::write(&file, KEY).expect("key");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!(
        "\n[fever]\nstaff = [\"kim\"]\n\n[commands]\n[[commands.keys]]\nid = \"console\"\nfile = \"{}\"\n",
        file.display()
    )
}

/// A console: signs commands for one kiosk and reads everything the kiosk publishes.
struct Console {
    port: u16,
    root: String,
    sub: Subscriber,
    nonce: std::cell::Cell<u32>,
}

impl Console {
    fn new(port: u16, center: &str) -> Self {
        let root = format!("dolbom/v1/{center}/door-1");
        let sub = Subscriber::start(port, &format!("{root}/#"));
        Console { port, root, sub, nonce: std::cell::Cell::new(0) }
    }

    fn signed(&self, command: &str, body: &serde_json::Value) -> Vec<u8> {
        self.signed_text(command, &body.to_string())
    }

    fn signed_text(&self, command: &str, body: &str) -> Vec<u8> {
        let n = self.nonce.get() + 1;
        self.nonce.set(n);
        let topic = self.topic(command);
        let now = jiff::Timestamp::now().as_millisecond();
        let nonce = format!("nonce-{}-{n:06}", std::process::id());
        serde_json::to_vec(&signed::sign(KEY, "console", &topic, body, now, &nonce)).expect("json")
    }

    fn topic(&self, command: &str) -> String {
        format!("{}/cmd/{command}", self.root)
    }

    fn results(&self) -> Vec<serde_json::Value> {
        self.sub.on("/cmd/result").into_iter().map(|m| m.payload).collect()
    }

    /// Sends one payload and returns its answer (commands are answered in order).
    fn send(&self, command: &str, payload: &[u8], wait: Duration) -> serde_json::Value {
        let n = self.results().len();
        publish(self.port, &self.topic(command), payload);
        self.sub.wait_for(wait, "the command's result", |m| {
            m.iter().filter(|r| r.topic.ends_with("/cmd/result")).count() > n
        });
        let r = self.results()[n].clone();
        assert_valid(&schema("cmd-result.schema.json"), &r);
        r
    }

    fn attendance(&self) -> Vec<serde_json::Value> {
        self.sub.on("/event/attendance").into_iter().map(|m| m.payload).collect()
    }

    fn last_roster(&self) -> Option<Received> {
        self.sub.on("/roster").pop()
    }

    /// Waits for a roster in which `pred` holds for `person`'s entry.
    fn wait_roster(&self, what: &str, person: &str, pred: impl Fn(&serde_json::Value) -> bool) {
        self.sub.wait_for(Duration::from_secs(20), what, |m| {
            m.iter().rfind(|r| r.topic.ends_with("/roster")).is_some_and(|r| {
                r.payload["people"].as_array().into_iter().flatten().any(|p| p["id"] == person && pred(p))
            })
        });
    }
}

fn start(dir: &Path, clip: &Path, port: u16, center: &str) -> (PathBuf, PathBuf) {
    let extra = staff_sections(dir);
    let config = kiosk_config(
        dir,
        &KioskOptions { center, port, clip, pace: "realtime", at_end: "loop", mqtt: "", extra: &extra },
    );
    (config, dir.join("kiosk.log"))
}

fn error(r: &serde_json::Value) -> &str {
    r["error"].as_str().unwrap_or_default()
}

fn korean(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// Check-in by hand, refusals, garbage, consent and erasure against one running kiosk whose
/// camera sees an empty doorway.
#[test]
fn staff_desk_commands_against_a_running_kiosk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir(&broker_dir).expect("broker dir");
    let broker = Broker::start(&broker_dir);
    let center = unique_center("staff");
    let clip = empty_clip(dir.path());
    let (config, log) = start(dir.path(), &clip, broker.port, &center);
    enrol(&config);
    let console = Console::new(broker.port, &center);
    let mut kiosk = spawn_kiosk(&config, &log);

    // The roster, retained, at start: both enrolled people, no template in it.
    console.sub.wait_for(Duration::from_secs(60), "the roster", |m| m.iter().any(|r| r.topic.ends_with("/roster")));
    let roster = console.last_roster().expect("roster");
    assert_valid(&schema("roster.schema.json"), &roster.payload);
    let ids: Vec<&str> =
        roster.payload["people"].as_array().expect("people").iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, ["biden", "obama"]);
    assert_eq!(roster.payload["people"][1]["face"], true);
    assert_eq!(roster.payload["people"][1]["consent"], "not_needed");
    let late = Subscriber::start(broker.port, &format!("{}/roster", console.root));
    late.wait_for(Duration::from_secs(10), "the retained roster", |m| m.iter().any(|r| r.retained));

    // A signed check-in: the same attendance event a face gives, method staff, no temperature.
    let wait = Duration::from_secs(20);
    let checkin = |person: &str, by: &str, request: &str| serde_json::json!({"person": person, "kind": "arrival", "by": by, "request_id": request});
    let r = console.send("checkin", &console.signed("checkin", &checkin("obama", "kim", "c1")), wait);
    assert_eq!(
        (r["ok"].as_bool(), r["command"].as_str(), r["person"].as_str()),
        (Some(true), Some("checkin"), Some("obama")),
        "{r}"
    );
    assert!(korean(r["message"].as_str().unwrap_or_default()), "{r}");
    console.sub.wait_for(wait, "the arrival", |m| m.iter().any(|r| r.topic.ends_with("/event/attendance")));
    let event = &console.attendance()[0];
    assert_valid(&schema("attendance.schema.json"), event);
    assert_eq!(
        (event["kind"].as_str(), event["person"]["id"].as_str(), event["method"].as_str()),
        (Some("arrival"), Some("obama"), Some("staff")),
        "{event}"
    );
    assert!(event["temperature_c"].is_null() && event.get("temperature_site").is_none(), "{event}");
    assert_eq!(event["temperature_status"], "screening_off");

    // The same request again (a new nonce): the first answer, no second event.
    let again = console.send("checkin", &console.signed("checkin", &checkin("obama", "kim", "c1")), wait);
    assert_eq!(again, r, "a repeat gets the first answer");
    // The same request id for another command: a conflict.
    let conflict = console.send("checkin", &console.signed("checkin", &checkin("biden", "kim", "c1")), wait);
    assert!(!conflict["ok"].as_bool().unwrap_or(true) && error(&conflict).starts_with("conflict"), "{conflict}");
    // A second arrival the same day: refused with the time of the first.
    let second = console.send("checkin", &console.signed("checkin", &checkin("obama", "kim", "c2")), wait);
    assert!(error(&second).starts_with("already arrived at "), "{second}");
    assert!(korean(error(&second)), "{second}");

    // Unsigned, and signed by someone who is no staff id: refused, nothing published.
    let unsigned = console.send("checkin", checkin("biden", "kim", "c3").to_string().as_bytes(), wait);
    assert!(error(&unsigned).starts_with("unsigned"), "{unsigned}");
    let stranger = console.send("checkin", &console.signed("checkin", &checkin("biden", "mallory", "c4")), wait);
    assert!(error(&stranger).contains("not a staff id"), "{stranger}");
    let nobody = console.send("checkin", &console.signed("checkin", &checkin("nobody", "kim", "c5")), wait);
    assert!(error(&nobody).starts_with("no person"), "{nobody}");

    // Garbage: raw, and signed but no command; the daemon answers the next one all the same.
    let raw = console.send("checkin", b"\xff{{{ not json", wait);
    assert_eq!(raw["ok"], false, "{raw}");
    let body = console.send("checkin", &console.signed_text("checkin", "{\"person\": 7}"), wait);
    assert!(error(&body).starts_with("not a staff command"), "{body}");
    let departure = serde_json::json!({"person": "biden", "kind": "departure", "by": "kim", "request_id": "c6"});
    let r = console.send("checkin", &console.signed("checkin", &departure), wait);
    assert_eq!(r["ok"], true, "{r}");
    console
        .sub
        .wait_for(wait, "the departure", |m| m.iter().filter(|r| r.topic.ends_with("/event/attendance")).count() >= 2);
    let people: Vec<String> = console
        .attendance()
        .iter()
        .map(|e| format!("{}:{}", e["kind"].as_str().unwrap_or("?"), e["person"]["id"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(people, ["arrival:obama", "departure:biden"], "the refused ones published nothing");

    // A consent for a child not enrolled yet; a bad one names its field.
    let consent = |until: &str, request: &str| {
        serde_json::json!({"person": "minji", "guardian": "김영희", "relation": "어머니",
            "verified": "signed paper form, ID checked", "purposes": ["face-attendance"],
            "until": until, "by": "kim", "request_id": request})
    };
    let bad = console.send("consent", &console.signed("consent", &consent("2001-01-01", "k1")), wait);
    assert!(error(&bad).starts_with("until"), "{bad}");
    let next_year = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date().year() + 1;
    let ok = console.send("consent", &console.signed("consent", &consent(&format!("{next_year}-02-28"), "k2")), wait);
    assert_eq!((ok["ok"].as_bool(), ok["person"].as_str()), (Some(true), Some("minji")), "{ok}");
    // Enrolled through the CLI while the kiosk runs: the roster follows the gallery.
    let c = config.to_str().expect("utf-8");
    let p = photo("unknowns/Female_42_7.jpg").display().to_string();
    let out = dolbom(&["enroll", "--config", c, "--person", "minji", "--role", "child", "--name", "민지", &p]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    console.wait_roster("minji enrolled with consent", "minji", |p| p["face"] == true && p["consent"] == "in_force");

    // Erased: templates destroyed and consent withdrawn; the roster shows it.
    let erase = serde_json::json!({"person": "minji", "reason": "moving away", "by": "kim", "request_id": "e1"});
    let r = console.send("erase", &console.signed("erase", &erase), wait);
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["message"].as_str().unwrap_or_default().contains("1 face templates destroyed"), "{r}");
    console.wait_roster("minji erased", "minji", |p| p["face"] == false && p["consent"] == "withdrawn");
    let audit = stdout(&dolbom(&["audit", "list", "--config", c]));
    assert!(audit.lines().any(|l| l.contains("consent-added") && l.contains("by kim")), "{audit}");
    assert!(audit.lines().any(|l| l.contains("templates-erased") && l.contains("by kim")), "{audit}");

    // Capture at the door with nobody there: no face, nothing enrolled. While the camera looks,
    // other commands are answered (a fever silence must not wait behind a capture).
    let before = console.results().len();
    let enroll = serde_json::json!({"person": "biden", "seconds": 6, "by": "kim", "request_id": "n1"});
    publish(broker.port, &console.topic("enroll"), &console.signed("enroll", &enroll));
    common::wait_until("the capture to start", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("capture at the door started")
    });
    let r = console.send("checkin", &console.signed("checkin", &checkin("nobody", "kim", "c9")), wait);
    assert_eq!(r["request_id"], "c9", "the check-in waited for the capture: {r}");
    assert!(error(&r).starts_with("no person"), "{r}");
    console.sub.wait_for(Duration::from_secs(30), "the capture's answer", |m| {
        m.iter().filter(|r| r.topic.ends_with("/cmd/result")).count() > before + 1
    });
    let r = console.results()[before + 1].clone();
    assert_eq!(r["request_id"], "n1", "{r}");
    assert!(error(&r).starts_with("no face"), "{r}");
    // A child without consent is refused before any capture.
    let child =
        serde_json::json!({"person": "jiwoo", "name": "지우", "role": "child", "by": "kim", "request_id": "n2"});
    let r = console.send("enroll", &console.signed("enroll", &child), Duration::from_secs(5));
    assert!(error(&r).contains("consent"), "{r}");

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.lines().any(|l| l.contains("audit") && l.contains("staff desk command handled")), "{text}");
    assert!(kiosk.try_wait().expect("try_wait").is_none(), "the kiosk still runs");
    signal(kiosk.id(), "TERM");
    assert!(wait_exit(&mut kiosk, 30, &log).success());
}

/// Capture at the door: someone not in the gallery walks up again and again; an enrol command
/// takes their face from the camera, and the kiosk then recognises them.
#[test]
fn capture_at_the_door_enrols_the_one_face_in_front_of_the_camera() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir(&broker_dir).expect("broker dir");
    let broker = Broker::start(&broker_dir);
    let center = unique_center("capture");
    let people = vec![Walker { photo: photo("face_recognition/biden.jpg"), skin_c: 36.5, far: false }];
    let scene = WalkUp { approach_secs: 2.0, stay_secs: 2.0, gap_secs: 1.0, ..WalkUp::default() };
    let clip = dir.path().join("biden.avi");
    write_walk_up(&clip, &people, scene).expect("clip");
    let (config, log) = start(dir.path(), &clip, broker.port, &center);
    // Obama only: Biden is enrolled elsewhere, not on this kiosk.
    let c = config.to_str().expect("utf-8");
    let p = photo("face_recognition/obama.jpg").display().to_string();
    let out = dolbom(&["enroll", "--config", c, "--person", "obama", "--role", "guardian", "--name", "obama", &p]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let console = Console::new(broker.port, &center);
    let mut kiosk = spawn_kiosk(&config, &log);
    console.sub.wait_for(Duration::from_secs(60), "the roster", |m| m.iter().any(|r| r.topic.ends_with("/roster")));

    let enroll = serde_json::json!({"person": "joe", "name": "Joe", "role": "staff", "seconds": 20, "by": "kim", "request_id": "n1"});
    let r = console.send("enroll", &console.signed("enroll", &enroll), Duration::from_secs(60));
    assert_eq!((r["ok"].as_bool(), r["person"].as_str()), (Some(true), Some("joe")), "{r}");
    let message = r["message"].as_str().unwrap_or_default().to_string();
    let n: u32 = message.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!((1..=5).contains(&n), "templates enrolled: {message}");
    console.wait_roster("joe on the roster with a face", "joe", |p| p["face"] == true);
    console.sub.wait_for(Duration::from_secs(60), "joe recognised at the door", |m| {
        m.iter().any(|r| {
            r.topic.ends_with("/event/attendance")
                && r.payload["person"]["id"] == "joe"
                && r.payload["method"] == "face"
        })
    });
    let audit = stdout(&dolbom(&["audit", "list", "--config", c]));
    assert!(audit.lines().any(|l| l.contains("enrolled") && l.contains("joe") && l.contains("by kim")), "{audit}");
    signal(kiosk.id(), "TERM");
    assert!(wait_exit(&mut kiosk, 30, &log).success());
}

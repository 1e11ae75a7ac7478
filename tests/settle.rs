//! Settling a re-measure end to end: the real kiosk daemon with a simulated thermal array on a
//! real pty, real Mosquitto, the real relay, and an HTTP server on loopback as the SMS gateway.
//! A child arriving cold is asked to re-measure; a later reading settles it — a second walk-up
//! with a warm face, or a staff thermometer value by MQTT command — and the parent gets exactly
//! one arrival text, with the settled value.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::broker::{publish, system_broker_port, Subscriber};
use common::gateway::Gateway;
use common::kiosk::{
    enrol_child_obama, fever_toml, kiosk_config, spawn_kiosk, thermal_sensor, unique_center, wait_exit, KioskOptions,
};
use common::relay::Relay;
use common::{assert_valid, schema, wait_until};
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

const SCENE: WalkUp = WalkUp { width: 640, height: 480, fps: 10.0, approach_secs: 2.0, stay_secs: 1.5, gap_secs: 1.0 };

/// Obama, enrolled as a child here (the relay texts children's guardians), walking up with skin
/// at `skin_c` (cold from the street at 34.0 °C), then a stranger.
fn walker(skin_c: f32) -> Walker {
    Walker { photo: common::photo("face_recognition/obama.jpg"), skin_c, far: false }
}

fn stranger() -> Walker {
    Walker { photo: common::photo("unknowns/Female_41_2_4.jpg"), skin_c: 36.2, far: false }
}

struct Rig {
    dir: tempfile::TempDir,
    port: u16,
    center: String,
    config: PathBuf,
    gateway: Gateway,
    relay: Relay,
}

/// The kiosk config, its gallery, the relay (started and subscribed) for the same center.
fn rig(tag: &str, clip_people: &[Walker]) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("clip.avi");
    write_walk_up(&clip, clip_people, SCENE).expect("clip");
    let port = system_broker_port();
    let center = unique_center(tag);
    let extra = format!("{}\n[commands]\nallow_unsigned = true\n", fever_toml(dir.path()));
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: &clip, pace: "realtime", at_end: "exit", mqtt: "", extra: &extra },
    );
    enrol_child_obama(&config);

    let gateway = Gateway::start();
    let relay = Relay::start(dir.path(), &center, port, &gateway.url());
    Rig { dir, port, center, config, gateway, relay }
}

impl Rig {
    /// Runs the kiosk over the clip with the thermal simulator; `during` runs while it does.
    fn run_kiosk(&self, people: Vec<Walker>, during: impl FnOnce(&Subscriber)) -> Vec<common::broker::Received> {
        let sensor = thermal_sensor(self.dir.path(), &self.config, people, SCENE);
        let sub = Subscriber::start(self.port, &format!("dolbom/v1/{}/#", self.center));
        let log = self.dir.path().join("kiosk.log");
        let mut kiosk = spawn_kiosk(&self.config, &log);
        during(&sub);
        let status = wait_exit(&mut kiosk, 120, &log);
        assert!(status.success(), "kiosk log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        let _ = sensor.join();
        sub.wait_for(Duration::from_secs(10), "offline", |m| m.iter().any(|r| r.payload["state"] == "offline"));
        sub.snapshot()
    }

    /// Texts the gateway got, as (to, text).
    fn texts(&self) -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = self
            .gateway
            .received()
            .iter()
            .map(|r| (r.body["to"].as_str().unwrap_or("").into(), r.body["text"].as_str().unwrap_or("").into()))
            .collect();
        t.sort();
        t
    }

    /// `dolbom alerts remeasures`: the open re-measures, as JSON.
    fn remeasures(&self) -> Vec<serde_json::Value> {
        let out = common::dolbom(&["alerts", "remeasures", "--config", self.config.to_str().expect("utf-8")]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    }

    fn stop_relay(self) -> String {
        self.relay.stop()
    }
}

fn on<'a>(received: &'a [common::broker::Received], suffix: &str) -> Vec<&'a serde_json::Value> {
    received.iter().filter(|r| r.topic.ends_with(suffix)).map(|r| &r.payload).collect()
}

/// The arrival (asked to re-measure) and its one settle event, checked against their schemas.
fn arrival_and_settle(received: &[common::broker::Received]) -> (serde_json::Value, serde_json::Value) {
    let arrivals = on(received, "/event/attendance");
    assert_eq!(arrivals.len(), 1, "one arrival (the second sighting is inside the cooldown): {arrivals:?}");
    let arrival = arrivals[0].clone();
    assert_eq!(arrival["person"]["id"], "obama");
    assert_eq!(arrival["temperature_status"], "remeasure", "a cold face is asked to re-measure: {arrival}");
    let settles = on(received, "/event/temperature");
    assert_eq!(settles.len(), 1, "{settles:?}");
    let settle = settles[0].clone();
    assert_eq!(settle["kind"], "settled", "{settle}");
    assert_eq!(settle["arrival_event_id"], arrival["event_id"]);
    assert_eq!(settle["person"]["id"], "obama");
    let v = schema("temperature.schema.json");
    assert_valid(&v, &settle);
    assert_valid(&schema("attendance.schema.json"), &arrival);
    (arrival, settle)
}

/// One arrival text per guardian who asked for arrivals, carrying `celsius`, never the
/// re-measure reading. Waits for both, then until nothing is held in the relay's store, two more
/// rounds of its poll (replan and the deadline sweep) have run and every text it has is sent: a
/// duplicate from any of them would be a third text.
fn one_text_each_with(rig: &Rig, celsius: f64, thermometer: bool, not: Option<f64>) {
    wait_until("two arrival texts", Duration::from_secs(30), || rig.gateway.received().len() >= 2);
    let db = rig.dir.path().join("relay/relay.db");
    let count = |sql: &str| -> i64 {
        let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("relay store");
        conn.query_row(sql, [], |r| r.get(0)).expect("count")
    };
    wait_until("nothing held at the relay", Duration::from_secs(30), || count("SELECT COUNT(*) FROM events_held") == 0);
    let rounds = || {
        std::fs::read_to_string(&rig.relay.log).unwrap_or_default().matches("parked and held events checked").count()
    };
    let seen = rounds();
    wait_until("two more rounds of the relay's poll", Duration::from_secs(30), || rounds() >= seen + 2);
    wait_until("every text the relay has sent", Duration::from_secs(30), || {
        count("SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'claimed', 'sending')") == 0
    });
    assert_eq!(count("SELECT COUNT(*) FROM deliveries"), 2, "two texts in the relay's store");
    let texts = rig.texts();
    assert_eq!(texts.len(), 2, "exactly one text per guardian: {texts:?}");
    // A thermometer value is told as one, never "confirm with a thermometer".
    let (ko, en) = if thermometer {
        (format!("(체온계로 측정한 체온 {celsius:.1}℃)"), format!("(thermometer reading {celsius:.1} °C)"))
    } else {
        (format!("(체온 {celsius:.1}℃)"), format!("(temperature {celsius:.1}°C)"))
    };
    assert_eq!(texts[0].0, "01012345678");
    assert!(texts[0].1.contains("등원") && texts[0].1.contains(&ko), "{texts:?}");
    assert_eq!(texts[1].0, "01087654321");
    assert!(texts[1].1.contains("arrived") && texts[1].1.contains(&en), "{texts:?}");
    if let Some(not) = not {
        assert!(texts.iter().all(|(_, t)| !t.contains(&format!("{not:.1}"))), "the re-measure reading is not texted");
    }
}

/// The second sighting of the same child, with a warm face, settles the re-measure although the
/// attendance cooldown makes it no arrival of its own.
#[test]
fn a_cold_arrival_is_settled_by_a_second_reading_at_the_door_and_texted_once() {
    let people = vec![walker(34.0), stranger(), walker(36.2)];
    let rig = rig("settle-door", &people);
    let received = rig.run_kiosk(people, |_| {});
    let (arrival, settle) = arrival_and_settle(&received);
    assert_eq!(settle["method"], "kiosk");
    assert_eq!(settle["temperature_status"], "normal", "{settle}");
    assert!(settle.get("by").is_none());
    let cold = arrival["temperature_c"].as_f64().expect("the cold reading");
    let settled = settle["temperature_c"].as_f64().expect("settled value");
    assert!((35.7..=36.7).contains(&settled), "36.2 degC skin read as {settled}");
    one_text_each_with(&rig, settled, false, Some(cold));
    let log = rig.stop_relay();
    assert!(log.contains("held arrival texted"), "{log}");
}

/// A staff thermometer value by signed-or-allowed MQTT command settles it; out-of-range values
/// are refused with a bilingual reason and change nothing.
#[test]
fn a_cold_arrival_is_settled_by_a_staff_thermometer_value_and_texted_once() {
    let people = vec![walker(34.0), stranger(), stranger()];
    let rig = rig("settle-thermo", &people);
    let cmd = format!("dolbom/v1/{}/door-1/cmd/thermometer", rig.center);
    let received = rig.run_kiosk(people, |sub| {
        sub.wait_for(Duration::from_secs(60), "the arrival asked to re-measure", |m| {
            m.iter().any(|r| r.topic.ends_with("/event/attendance"))
        });
        // Staff can see whom to take a thermometer to.
        let open = rig.remeasures();
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0]["person"]["id"], "obama");
        publish(rig.port, &cmd, br#"{"person":"obama","celsius":44.5,"by":"kim","request_id":"t0"}"#);

        publish(rig.port, &cmd, br#"{"person":"obama","celsius":36.8,"by":"mallory","request_id":"t1"}"#);
        publish(rig.port, &cmd, br#"{"person":"obama","celsius":36.8,"by":"kim","request_id":"t2"}"#);
        sub.wait_for(Duration::from_secs(20), "three results", |m| {
            m.iter().filter(|r| r.topic.ends_with("/cmd/result")).count() >= 3
        });
    });
    let results = on(&received, "/cmd/result");
    assert_eq!(results.len(), 3, "{results:?}");
    for r in &results {
        assert_valid(&schema("cmd-result.schema.json"), r);
        assert_eq!(r["command"], "thermometer");
    }
    assert_eq!(results[0]["ok"], false);
    let why = results[0]["error"].as_str().unwrap_or_default();
    assert!(why.contains("34.0-43.0") && why.contains("범위"), "bilingual range refusal: {why}");
    assert_eq!(results[1]["ok"], false);
    assert!(results[1]["error"].as_str().unwrap_or_default().contains("not a staff id"), "{}", results[1]);
    assert_eq!(results[2]["ok"], true, "{}", results[2]);
    let (_, settle) = arrival_and_settle(&received);
    assert_eq!(settle["method"], "thermometer");
    assert_eq!(settle["by"], "kim");
    assert_eq!(settle["temperature_c"].as_f64(), Some(36.8));
    assert_eq!(settle["temperature_status"], "normal");
    assert!(rig.remeasures().is_empty(), "settled: nothing open");
    one_text_each_with(&rig, 36.8, true, None);
    let _ = rig.stop_relay();
}

/// `dolbom alerts thermometer` checks the value before anything else, in both languages.
#[test]
fn the_thermometer_cli_refuses_values_no_thermometer_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_config(dir.path(), "");
    let c = config.to_str().expect("utf-8");
    for bad in ["33.9", "43.1", "-1"] {
        let out = common::dolbom(&["alerts", "thermometer", "obama", bad, "--by", "kim", "--config", c]);
        assert!(!out.status.success(), "{bad} refused");
        let err = common::stderr(&out);
        assert!(err.contains("34.0-43.0") && err.contains("범위"), "{bad}: {err}");
    }
}

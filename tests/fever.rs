//! Fever screening end to end: a video and a simulated thermal stream over a real pseudo-terminal
//! pair, the real daemon, real Mosquitto; staff silence the alert by MQTT command and by CLI.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::broker::{publish, system_broker_port, Subscriber};
use common::kiosk::{enrol, events, kiosk_config, spawn_kiosk, unique_center, wait_exit, KioskOptions};
use common::{assert_valid, schema};
use dolbom_kiosk::sim::thermal::{
    link, open_pty, photo_faces, render, scene_at, slave_is_open, stream, PhotoFace, Pty, Rng, ThermalSim,
};
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};
use dolbom_kiosk::sources::thermal::mlx90640;

fn walkers() -> Vec<Walker> {
    vec![
        Walker { photo: common::photo("face_recognition/obama.jpg"), skin_c: 38.2, far: false },
        Walker { photo: common::photo("unknowns/Female_41_2_4.jpg"), skin_c: 36.5, far: false },
        Walker { photo: common::photo("unknowns/Female_42_2_2_1.jpg"), skin_c: 36.6, far: true },
    ]
}

const SCENE: WalkUp = WalkUp { width: 640, height: 480, fps: 10.0, approach_secs: 2.0, stay_secs: 1.5, gap_secs: 1.0 };

/// A fever kiosk ready to run: `people` walking up in a clip, the gallery enrolled, a config with
/// screening on and the thermal array on a real pty (linked where the config looks for it).
struct FeverScene {
    port: u16,
    center: String,
    config: PathBuf,
    cfg: dolbom_kiosk::config::Config,
    faces: Vec<PhotoFace>,
    pty: Pty,
}

fn fever_scene(dir: &std::path::Path, people: &[Walker], tag: &str) -> FeverScene {
    let clip = dir.join("clip.avi");
    write_walk_up(&clip, people, SCENE).expect("clip");
    let port = system_broker_port();
    let center = unique_center(tag);
    let thermal_link: PathBuf = dir.join("thermal0");
    let extra = format!(
        "\n[thermal]\ndevice = \"gy-mcu90640\"\nport = \"{}\"\n\n[fever]\nenabled = true\nstaff = [\"kim\"]\n\n# Unsigned commands, as before signing (tests/security.rs signs).\n[commands]\nallow_unsigned = true\n",
        thermal_link.display()
    );
    let config = kiosk_config(
        dir,
        &KioskOptions { center: &center, port, clip: &clip, pace: "realtime", at_end: "exit", mqtt: "", extra: &extra },
    );
    enrol(&config);
    let cfg = common::load(&config);
    let mut models = dolbom_face::FaceModels::load(&cfg.runtime, &cfg.face).expect("models");
    let faces = photo_faces(people, models.detector.as_mut()).expect("faces");
    let pty = open_pty().expect("pty");
    link(&thermal_link, &pty.slave_path).expect("link");
    FeverScene { port, center, config, cfg, faces, pty }
}

#[test]
fn fever_alert_once_normal_none_far_not_measured_and_staff_silence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let FeverScene { port, center, config, cfg, faces, mut pty } = fever_scene(dir.path(), &walkers(), "fever");
    // The simulated sensor, in-process, on a real pty; it starts the scene when the daemon opens it.
    let sim = ThermalSim {
        fps: 8.0,
        ambient_c: 24.0,
        noise_c: 0.1,
        dropout: 0.03,
        corrupt: 0.03,
        csv: false,
        calibration: cfg.fever.calibration,
        seed: 11,
    };
    let sensor = std::thread::spawn(move || stream(&mut pty, &walkers(), &faces, &SCENE, &sim, None));

    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);

    sub.wait_for(Duration::from_secs(60), "the fever alert", |m| m.iter().any(|r| r.topic.contains("/alert/")));
    let alert = sub.on("").into_iter().find(|r| r.topic.contains("/alert/")).expect("alert");
    let alert_id = alert.payload["alert_id"].as_str().expect("alert id").to_string();
    assert_eq!(alert.payload["state"], "active");
    assert!(alert.retained || alert.payload["state"] == "active");
    assert_eq!(alert.payload["message"], "elevated skin temperature — confirm with a thermometer");

    // Staff commands while the daemon runs: garbage, a stranger, the real thing, and a repeat.
    let cmd = format!("dolbom/v1/{center}/door-1/cmd/silence");
    publish(port, &cmd, b"\xff{not json");
    publish(port, &cmd, format!(r#"{{"alert_id":"{alert_id}","by":"mallory","request_id":"r0"}}"#).as_bytes());
    publish(port, &cmd, br#"{"alert_id":"no-such-alert","by":"kim","request_id":"r9"}"#);
    publish(port, &cmd, format!(r#"{{"alert_id":"{alert_id}","by":"kim","request_id":"r1"}}"#).as_bytes());
    publish(port, &cmd, format!(r#"{{"alert_id":"{alert_id}","by":"kim","request_id":"r1"}}"#).as_bytes());
    // The same request_id for another command: refused, not answered with r1's success.
    let resolve = format!("dolbom/v1/{center}/door-1/cmd/resolve");
    publish(port, &resolve, format!(r#"{{"alert_id":"{alert_id}","by":"kim","request_id":"r1"}}"#).as_bytes());
    sub.wait_for(Duration::from_secs(20), "six command results", |m| {
        m.iter().filter(|r| r.topic.ends_with("/cmd/result")).count() >= 6
    });

    let status = wait_exit(&mut kiosk, 90, &log);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "log:\n{log_text}");
    let _ = sensor.join();
    sub.wait_for(Duration::from_secs(10), "offline", |m| m.iter().any(|r| r.payload["state"] == "offline"));

    let received = sub.snapshot();
    let results: Vec<&serde_json::Value> =
        received.iter().filter(|r| r.topic.ends_with("/cmd/result")).map(|r| &r.payload).collect();
    assert_eq!(results[0]["ok"], false, "garbage: {}", results[0]);
    assert!(results[0]["error"].as_str().unwrap_or("").contains("not a command"));
    assert_eq!(results[1]["ok"], false);
    assert!(results[1]["error"].as_str().unwrap_or("").contains("not a staff id"), "{}", results[1]);
    assert_eq!(results[1]["state"], "active", "the stranger changed nothing");
    assert_eq!(results[2]["ok"], false);
    assert!(results[2]["error"].as_str().unwrap_or("").contains("no alert"));
    assert_eq!(results[3]["ok"], true);
    assert_eq!(results[3]["state"], "silenced");
    assert_eq!(results[4], results[3], "a repeated request gets the first answer");
    assert_eq!(results[5]["ok"], false, "{}", results[5]);
    assert!(results[5]["error"].as_str().unwrap_or("").starts_with("conflict"), "{}", results[5]);
    // Staff read these: each reason has its Korean half (the English words stay for scripts).
    for r in [&results[0], &results[1], &results[2], &results[5]] {
        let why = r["error"].as_str().unwrap_or("");
        assert!(why.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)), "bilingual: {why}");
    }

    let states: Vec<&serde_json::Value> =
        received.iter().filter(|r| r.topic.contains("/alert/")).map(|r| &r.payload).collect();
    assert_eq!(states.len(), 2, "active, then silenced once: {states:?}");
    assert_eq!(states[1]["state"], "silenced");
    assert_eq!(states[1]["silenced_by"], "kim");

    // Exactly one fever event, for the 38.2 degC person; the others as screened.
    let fevers: Vec<&serde_json::Value> =
        received.iter().filter(|r| r.topic.ends_with("/event/fever")).map(|r| &r.payload).collect();
    assert_eq!(fevers.len(), 1, "{fevers:?}");
    assert_eq!(fevers[0]["person"]["id"], "obama");
    let (evs, _) = events(&received);
    let arrival = evs.iter().find(|e| e["schema"] == "dolbom.attendance/1").expect("arrival");
    assert_eq!(arrival["temperature_status"], "elevated");
    let site = arrival["temperature_site"].as_str().unwrap_or_default();
    assert!(["canthus", "forehead"].contains(&site), "every measured reading names its site: {arrival}");
    let t = arrival["temperature_c"].as_f64().expect("measured");
    assert!((37.7..=38.7).contains(&t), "38.2 degC skin read as {t}");
    let visitors: Vec<&serde_json::Value> = evs.iter().filter(|e| e["schema"] == "dolbom.visitor/1").collect();
    assert_eq!(visitors.len(), 2, "{visitors:?}");
    assert_eq!(visitors[0]["temperature_status"], "normal");
    let t = visitors[0]["temperature_c"].as_f64().expect("measured");
    assert!((36.0..=37.0).contains(&t), "36.5 degC skin read as {t}");
    assert_eq!(visitors[1]["temperature_status"], "too_far", "{}", visitors[1]);
    assert!(visitors[1]["temperature_c"].is_null());
    assert!(visitors[1].get("temperature_site").is_none(), "not measured, no site: {}", visitors[1]);

    for (suffix, name) in [
        ("/event/fever", "fever"),
        ("/cmd/result", "cmd-result"),
        ("/event/attendance", "attendance"),
        ("/event/visitor", "visitor"),
    ] {
        let v = schema(&format!("{name}.schema.json"));
        for m in received.iter().filter(|r| r.topic.ends_with(suffix)) {
            assert_valid(&v, &m.payload);
        }
    }
    let v = schema("alert.schema.json");
    for m in received.iter().filter(|r| r.topic.contains("/alert/")) {
        assert_valid(&v, &m.payload);
    }
    let status_msg = received.iter().rev().find(|r| r.topic.ends_with("/status")).expect("status");
    assert!(status_msg.payload["health"]["thermal_frames"].as_u64().unwrap_or(0) > 20);
    assert!(
        status_msg.payload["health"]["thermal_checksum_errors"].as_u64().unwrap_or(0) >= 1,
        "corrupted frames were caught"
    );

    // A new subscriber sees the retained state: silenced, by whom.
    let late = Subscriber::start(port, &format!("dolbom/v1/{center}/door-1/alert/#"));
    late.wait_for(Duration::from_secs(5), "the retained alert", |m| !m.is_empty());
    let retained = &late.snapshot()[0];
    assert!(retained.retained);
    assert_eq!(retained.payload["state"], "silenced");

    // Staff can also act from the kiosk's shell: list, then resolve.
    let c = config.to_str().expect("utf-8");
    let out = common::dolbom(&["alerts", "list", "--config", c]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("\"state\":\"silenced\""));
    let out = common::dolbom(&["alerts", "resolve", &alert_id, "--by", "mallory", "--config", c]);
    assert!(!out.status.success(), "unknown staff refused");
    let out = common::dolbom(&["alerts", "resolve", &alert_id, "--by", "kim", "--config", c]);
    assert!(out.status.success(), "{}", common::stdout(&out));
    let out = common::dolbom(&["alerts", "list", "--config", c]);
    assert!(common::stdout(&out).contains("\"state\":\"resolved\""), "{}", common::stdout(&out));
}

/// A sensor that lies with valid checksums: flat 80 degC frames, a dead sensor's -327.68, a frozen
/// frame, and a plausible scene whose faces read 80 degC, in turns, while three people whose
/// skin is 38.2 degC walk up. None of it may become a fever or a normal: every person is
/// `sensor_fault` or `implausible`, no fever event, no alert, and the kiosk says its sensor was faulty.
#[test]
fn a_lying_sensor_never_makes_a_fever_or_a_normal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people: Vec<Walker> = walkers().into_iter().map(|w| Walker { skin_c: 38.2, far: false, ..w }).collect();
    let FeverScene { port, center, config, cfg, faces, mut pty } = fever_scene(dir.path(), &people, "liar");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sensor = {
        let stop = stop.clone();
        let cal = cfg.fever.calibration;
        std::thread::spawn(move || {
            use std::io::Write;
            let mut rng = Rng::new(5);
            let doorway = mlx90640::encode(&render(&[], 24.0, 0.1, &mut rng), 24.0);
            let hot_faces: Vec<Walker> = people.iter().map(|w| Walker { skin_c: 80.0, ..w.clone() }).collect();
            common::wait_until("the daemon to open the sensor", Duration::from_secs(120), || {
                slave_is_open(&pty.master)
            });
            let started = std::time::Instant::now();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // The sensor's own frame rate, 8 Hz: pacing the simulated device, not waiting on it.
                let due = started + Duration::from_secs_f64(n as f64 / 8.0);
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
                let video_frame = (started.elapsed().as_secs_f64() * SCENE.fps) as u64;
                let bytes = match (n / 12) % 4 {
                    0 => mlx90640::encode(&[80.0; 768], 24.0),
                    1 => mlx90640::encode(&[-327.68; 768], -327.68),
                    2 => doorway.clone(),
                    _ => {
                        let blobs = scene_at(video_frame, &hot_faces, &faces, &SCENE, &cal);
                        mlx90640::encode(&render(&blobs, 24.0, 0.1, &mut rng), 24.0)
                    }
                };
                n += 1;
                if pty.master.write_all(&bytes).is_err() {
                    break;
                }
            }
        })
    };

    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    let status = wait_exit(&mut kiosk, 90, &log);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "log:\n{log_text}");
    let _ = sensor.join();
    sub.wait_for(Duration::from_secs(10), "offline", |m| m.iter().any(|r| r.payload["state"] == "offline"));

    let received = sub.snapshot();
    assert!(!received.iter().any(|r| r.topic.ends_with("/event/fever")), "no fever from a lying sensor");
    assert!(!received.iter().any(|r| r.topic.contains("/alert/")), "no alert from a lying sensor");
    let (evs, _) = events(&received);
    assert!(evs.len() >= 2, "the people were still seen: {evs:?}");
    for e in &evs {
        assert!(["sensor_fault", "implausible"].contains(&e["temperature_status"].as_str().unwrap_or_default()), "{e}");
        assert!(e["temperature_c"].is_null(), "{e}");
    }
    assert!(log_text.contains("thermal sensor faulty"), "the fault is logged:\n{log_text}");
    let faulty =
        received.iter().filter(|r| r.topic.ends_with("/status")).any(|r| r.payload["health"]["thermal"] == "faulty");
    assert!(faulty, "a status reported the sensor faulty");
    let v = schema("status.schema.json");
    for m in received.iter().filter(|r| r.topic.ends_with("/status")) {
        assert_valid(&v, &m.payload);
    }
}

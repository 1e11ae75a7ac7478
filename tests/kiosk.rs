//! The kiosk daemon end to end: the real binary on a real video file, real models, a real
//! Mosquitto broker, and a subscriber that checks exactly what comes out.

mod common;

use std::time::Duration;

use common::broker::{signal, system_broker_port, Broker, Subscriber};
use common::kiosk::{
    clip, empty_clip, enrol, events, kiosk_config, spawn_kiosk, summary, unique_center, wait_exit, KioskOptions,
};
use common::{assert_valid, schema};

#[test]
fn walk_up_clip_gives_exactly_the_expected_events_matching_the_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("exact");
    let port = system_broker_port();
    let clip = clip();
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip, pace: "fast", at_end: "exit", mqtt: "", extra: "" },
    );
    enrol(&config);
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));

    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    let status = wait_exit(&mut kiosk, 120, &log);
    assert!(status.success(), "exit status {status}; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    sub.wait_for(Duration::from_secs(10), "offline status", |m| {
        m.iter().any(|r| r.topic.ends_with("/status") && r.payload["state"] == "offline")
    });

    let received = sub.snapshot();
    let (evs, dups) = events(&received);
    // Obama walks up twice (two photos): one arrival. Biden arrives. The stranger is a visitor.
    assert_eq!(summary(&evs), ["arrival:obama", "arrival:biden", "visitor"]);
    assert_eq!(dups, 0, "nothing was redelivered on a healthy connection");
    assert_eq!(evs[0]["person"]["role"], "guardian");
    assert_eq!(evs[1]["person"]["role"], "staff");
    for e in &evs {
        assert!(e["ts"].as_str().expect("ts").ends_with("+09:00"), "capture time in the site's offset: {e}");
        assert!(e["temperature_c"].is_null());
    }
    let times: Vec<&str> = evs.iter().map(|e| e["ts"].as_str().expect("ts")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "events in capture order: {times:?}");

    let (attendance, visitor, status_schema) =
        (schema("attendance.schema.json"), schema("visitor.schema.json"), schema("status.schema.json"));
    let roster = schema("roster.schema.json");
    for m in &received {
        let v = if m.topic.ends_with("/roster") {
            assert!(
                m.payload.to_string().len() < 4096 && !m.payload.to_string().contains("embedding"),
                "{}",
                m.payload
            );
            &roster
        } else if m.topic.ends_with("/event/attendance") {
            &attendance
        } else if m.topic.ends_with("/event/visitor") {
            &visitor
        } else if m.topic.ends_with("/status") {
            &status_schema
        } else {
            panic!("unexpected topic {}", m.topic);
        };
        assert_valid(v, &m.payload);
    }
    let last_status = received.iter().rev().find(|m| m.topic.ends_with("/status")).expect("status");
    assert_eq!(last_status.payload["state"], "offline");
    // Three events and the roster.
    assert_eq!(last_status.payload["health"]["events_published"], 4);
    assert_eq!(last_status.payload["health"]["outbox_depth"], 0);

    // The kiosk went offline cleanly: `dolbom status` shows it and says so in its exit code.
    let out = common::dolbom(&["status", "--config", config.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    // Stopped, not broken: no reasons of a running kiosk (the broker is no one's fault here).
    assert!(common::stderr(&out).contains("offline: it has stopped"), "{}", common::stderr(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(printed["state"], "offline");
    assert_eq!(printed["health"]["frames_processed"], printed["health"]["frames_read"], "fast pace drops nothing");

    // A restart later the same day remembers who arrived: the same clip gives only the stranger.
    let mut again = spawn_kiosk(&config, &log);
    assert!(wait_exit(&mut again, 120, &log).success());
    sub.wait_for(Duration::from_secs(10), "the second visitor", |m| events(m).0.len() >= 4);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(summary(&events(&sub.snapshot()).0), ["arrival:obama", "arrival:biden", "visitor", "visitor"]);
}

#[test]
fn broker_stopped_and_restarted_mid_run_loses_and_reorders_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let center = unique_center("restart");
    let clip = clip();
    let config = kiosk_config(
        dir.path(),
        &KioskOptions {
            center: &center,
            port: broker.port,
            clip,
            pace: "realtime",
            at_end: "exit",
            mqtt: "",
            extra: "",
        },
    );
    enrol(&config);
    let sub = Subscriber::start(broker.port, &format!("dolbom/v1/{center}/#"));

    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    sub.wait_for(Duration::from_secs(60), "the first arrival", |m| !events(m).0.is_empty());
    broker.stop();
    // Biden and the stranger walk by while the broker is gone.
    std::thread::sleep(Duration::from_secs(6));
    broker.restart();
    let status = wait_exit(&mut kiosk, 120, &log);
    assert!(status.success(), "log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    sub.wait_for(Duration::from_secs(20), "all three events", |m| events(m).0.len() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let (evs, _) = events(&sub.snapshot());
    assert_eq!(summary(&evs), ["arrival:obama", "arrival:biden", "visitor"]);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("broker connection lost"), "the outage was noticed:\n{log_text}");
}

#[test]
fn sigkill_with_unacknowledged_events_then_restart_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path());
    let center = unique_center("sigkill");
    // The clip appears only once the broker is frozen, so no event can reach the broker before:
    // the kiosk starts with no camera (it retries), is online, then the broker freezes.
    let camera = dir.path().join("camera.avi");
    let config = kiosk_config(
        dir.path(),
        &KioskOptions {
            center: &center,
            port: broker.port,
            clip: &camera,
            pace: "fast",
            at_end: "exit",
            mqtt: "",
            extra: "",
        },
    );
    enrol(&config);
    let sub = Subscriber::start(broker.port, &format!("dolbom/v1/{center}/#"));

    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    sub.wait_for(Duration::from_secs(30), "online status", |m| m.iter().any(|r| r.payload["state"] == "online"));
    // The roster also goes through the outbox: it must be through before the freeze, or it
    // would stand in for one of the three events counted below.
    sub.wait_for(Duration::from_secs(30), "the roster", |m| m.iter().any(|r| r.topic.ends_with("/roster")));
    // Freeze the broker: publishes go out, no PUBACK comes back.
    broker.pause();
    // Copied beside it, then renamed: the camera never opens half a file.
    let part = dir.path().join("camera.part");
    std::fs::copy(clip(), &part).expect("copy clip");
    std::fs::rename(&part, &camera).expect("the camera appears");
    let status_file = dir.path().join("state/status.json");
    let until = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let queued = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["health"]["outbox_depth"].as_u64())
            .unwrap_or(0);
        // Waiting in the outbox now, not queued since start (which counts the roster too).
        if queued >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "events never queued; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(events(&sub.snapshot()).0.is_empty(), "nothing can have been delivered through a frozen broker");
    signal(kiosk.id(), "KILL");
    let _ = kiosk.wait();
    broker.unpause();

    // Restarted on an empty doorway: it has nothing new to say, only what was never acknowledged.
    let empty = empty_clip(dir.path());
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace(&camera.display().to_string(), &empty.display().to_string())).expect("config");
    let log2 = dir.path().join("kiosk2.log");
    let mut again = spawn_kiosk(&config, &log2);
    assert!(wait_exit(&mut again, 60, &log2).success(), "log:\n{}", std::fs::read_to_string(&log2).unwrap_or_default());
    let log2_text = std::fs::read_to_string(&log2).unwrap_or_default();
    assert!(log2_text.contains("backlog=3"), "the killed daemon's events were on disk:\n{log2_text}");
    sub.wait_for(Duration::from_secs(20), "all three events", |m| events(m).0.len() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let (evs, dups) = events(&sub.snapshot());
    assert_eq!(summary(&evs), ["arrival:obama", "arrival:biden", "visitor"], "duplicates seen: {dups}");
    let out = common::dolbom(&["status", "--config", config.to_str().expect("utf-8")]);
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(printed["health"]["outbox_depth"], 0, "everything acknowledged in the end");
}

#[test]
fn missing_camera_is_retried_reported_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("nocam");
    let port = system_broker_port();
    let missing = dir.path().join("no-such-camera.avi");
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: &missing, pace: "realtime", at_end: "exit", mqtt: "", extra: "" },
    );
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    sub.wait_for(Duration::from_secs(30), "a degraded online status", |m| {
        m.iter().any(|r| {
            r.payload["state"] == "online"
                && r.payload["health"]["camera"] == "retrying"
                && r.payload["health"]["degraded"] == true
        })
    });
    let out = common::dolbom(&["status", "--config", config.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "degraded is a failing status");
    assert!(common::stderr(&out).contains("degraded"), "{}", common::stderr(&out));

    // The camera appears: the daemon recovers by itself.
    let clip = clip();
    std::fs::copy(clip, &missing).expect("copy clip");
    sub.wait_for(Duration::from_secs(30), "camera ok", |m| m.iter().any(|r| r.payload["health"]["camera"] == "ok"));

    signal(kiosk.id(), "TERM");
    let status = wait_exit(&mut kiosk, 30, &log);
    assert!(status.success(), "SIGTERM exits 0; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    sub.wait_for(Duration::from_secs(10), "offline status", |m| m.iter().any(|r| r.payload["state"] == "offline"));
}

#[test]
fn speaks_mqtt_3_1_1_when_told_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("v311");
    let port = system_broker_port();
    let clip = clip();
    let config = kiosk_config(
        dir.path(),
        &KioskOptions {
            center: &center,
            port,
            clip,
            pace: "fast",
            at_end: "exit",
            mqtt: "protocol = \"3.1.1\"",
            extra: "",
        },
    );
    enrol(&config);
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    assert!(wait_exit(&mut kiosk, 120, &log).success(), "log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    sub.wait_for(Duration::from_secs(10), "offline status", |m| m.iter().any(|r| r.payload["state"] == "offline"));
    assert_eq!(summary(&events(&sub.snapshot()).0), ["arrival:obama", "arrival:biden", "visitor"]);
    let online = sub.snapshot().into_iter().find(|r| r.payload["state"] == "online").expect("online status");
    assert_eq!(online.payload["health"]["mqtt_protocol"], "3.1.1");
}

#[test]
fn kiosk_config_errors_name_the_key_and_start_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = clip();
    let base = KioskOptions { center: "c", port: 1, clip, pace: "fast", at_end: "exit", mqtt: "", extra: "" };
    let cases: [(&str, &str, &str); 4] = [
        ("timezone = \"Asia/Seoul\"", "timezone = \"Mars/Olympus\"", "site.timezone"),
        ("pace = \"fast\"\nat_end", "pace = \"fast\"\nwidth = -3\nat_end", "width"),
        ("kind = \"file\"\nsource", "kind = \"v4l2\"\nsource", "camera.pace"),
        (
            "[state]",
            "[attendance]\ndeparture_window = [\"20:00\", \"15:00\"]\n\n[state]",
            "attendance.departure_window",
        ),
    ];
    for (from, to, key) in cases {
        let config = kiosk_config(dir.path(), &base);
        let text = std::fs::read_to_string(&config).expect("config");
        assert!(text.contains(from), "fixture drift: {from}");
        std::fs::write(&config, text.replace(from, to)).expect("write");
        let out = common::dolbom(&["kiosk", "--config", config.to_str().expect("utf-8")]);
        assert!(!out.status.success(), "{key}: must refuse to start");
        assert!(common::stderr(&out).contains(key), "{key} not named in: {}", common::stderr(&out));
        assert!(!dir.path().join("state/kiosk.db").exists(), "nothing started for {key}");
    }
    // Without [site] the face tools still work, but the daemon says what it lacks.
    let plain = common::write_config(dir.path(), "");
    let out = common::dolbom(&["kiosk", "--config", plain.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("`site` is required by `dolbom kiosk`"), "{}", common::stderr(&out));
}

#[test]
fn image_sequence_source_works_like_a_video() {
    use opencv::core::{Mat, MatTraitConst, Vector};
    use opencv::videoio::{VideoCapture, VideoCaptureTrait};
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).expect("dir");
    let clip = clip();
    let api = dolbom_kiosk::sources::camera::file_api();
    let mut cap = VideoCapture::from_file(clip.to_str().expect("utf-8"), api).expect("open");
    let mut frame = Mat::default();
    let mut n = 0;
    while cap.read(&mut frame).expect("read") && !frame.empty() {
        let path = frames.join(format!("frame_{n:04}.jpg"));
        opencv::imgcodecs::imwrite(path.to_str().expect("utf-8"), &frame, &Vector::new()).expect("write");
        n += 1;
    }
    let pattern = frames.join("frame_%04d.jpg");
    let center = unique_center("images");
    let port = system_broker_port();
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: &pattern, pace: "fast", at_end: "exit", mqtt: "", extra: "" },
    );
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("kind = \"file\"", "kind = \"images\"\nfps = 10.0")).expect("write");
    enrol(&config);
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    assert!(wait_exit(&mut kiosk, 120, &log).success(), "log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    sub.wait_for(Duration::from_secs(10), "offline status", |m| m.iter().any(|r| r.payload["state"] == "offline"));
    assert_eq!(summary(&events(&sub.snapshot()).0), ["arrival:obama", "arrival:biden", "visitor"]);
    let last = sub.snapshot().into_iter().rev().find(|r| r.topic.ends_with("/status")).expect("status");
    assert_eq!(last.payload["health"]["frames_processed"], n);
}

/// What the kiosk told systemd over `$NOTIFY_SOCKET`, with when.
struct SystemdDouble {
    messages: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, String)>>>,
    path: std::path::PathBuf,
}

impl SystemdDouble {
    fn start(dir: &std::path::Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let m = messages.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                m.lock().expect("lock").push((std::time::Instant::now(), text));
            }
        });
        Self { messages, path }
    }

    fn spawn_kiosk(&self, config: &std::path::Path, log: &std::path::Path) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_dolbom"))
            .args(["kiosk", "--config"])
            .arg(config)
            .env("DOLBOM_LOG", "info")
            .env("NOTIFY_SOCKET", &self.path)
            .env("WATCHDOG_USEC", "1000000")
            .stderr(std::fs::File::create(log).expect("log"))
            .spawn()
            .expect("spawn kiosk")
    }

    fn pings_after(&self, t: std::time::Instant) -> usize {
        self.messages.lock().expect("lock").iter().filter(|(at, m)| *at > t && m.contains("WATCHDOG=1")).count()
    }

    fn said(&self, what: &str) -> bool {
        self.messages.lock().expect("lock").iter().any(|(_, m)| m.contains(what))
    }
}

/// Under systemd (`Type=notify`): READY once the stages run, watchdog pings while the camera
/// → vision → event loop is alive, STOPPING at SIGTERM. A camera stuck in a blocking open (a
/// FIFO nobody writes stands in for a wedged driver) stops the pings, so systemd's watchdog
/// restarts the kiosk; before, nothing told systemd anything.
#[test]
fn systemd_hears_ready_pings_and_stopping_and_a_wedged_camera_stops_the_pings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("notify");
    let port = system_broker_port();
    let systemd = SystemdDouble::start(dir.path());
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: clip(), pace: "realtime", at_end: "loop", mqtt: "", extra: "" },
    );
    let log = dir.path().join("kiosk.log");
    let mut kiosk = systemd.spawn_kiosk(&config, &log);
    common::wait_until("READY=1", Duration::from_secs(60), || systemd.said("READY=1"));
    let ready = std::time::Instant::now();
    common::wait_until("watchdog pings", Duration::from_secs(10), || systemd.pings_after(ready) >= 4);
    signal(kiosk.id(), "TERM");
    assert!(wait_exit(&mut kiosk, 30, &log).success());
    assert!(systemd.said("STOPPING=1"));

    // The wedged camera.
    let wedged_dir = tempfile::tempdir().expect("tempdir");
    let fifo = wedged_dir.path().join("camera.fifo");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let systemd = SystemdDouble::start(wedged_dir.path());
    let config = kiosk_config(
        wedged_dir.path(),
        &KioskOptions { center: &center, port, clip: &fifo, pace: "realtime", at_end: "loop", mqtt: "", extra: "" },
    );
    let log = wedged_dir.path().join("kiosk.log");
    let mut kiosk = systemd.spawn_kiosk(&config, &log);
    common::wait_until("READY=1", Duration::from_secs(60), || systemd.said("READY=1"));
    // The camera's last beat was before its open: within a ping interval it counts as stalled.
    std::thread::sleep(Duration::from_secs(2));
    let quiet_from = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(systemd.pings_after(quiet_from), 0, "no pings while the camera is stuck");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("has stopped beating"), "{text}");
    signal(kiosk.id(), "TERM");
    assert!(wait_exit(&mut kiosk, 30, &log).success(), "stops even with the camera thread stuck");
}

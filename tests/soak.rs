//! A bounded soak of the kiosk under bad luck and bad input at once: the real daemon on a
//! walk-up clip in real time while its command topics are flooded with garbage, oversized and
//! retained poison, its broker is stopped and restarted, and its state disk fills up and is
//! freed again. Every expected event must arrive exactly once and in order, and the status must
//! tell the truth throughout.
//!
//! The state disk is a small tmpfs of the kiosk's own: the daemon runs in a private mount
//! namespace (`unshare -Urm`, no privileges needed), and the test reaches that mount through
//! `/proc/PID/root` to fill and free it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::broker::{Broker, Received, Subscriber};
use common::kiosk::{enrol, events, kiosk_config, summary, unique_center, wait_exit, KioskOptions};
use common::{photo, stderr, wait_until};
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

const WALKERS: [&str; 6] = [
    "face_recognition/obama.jpg",
    "face_recognition/biden.jpg",
    "unknowns/Female_42_7.jpg",
    "unknowns/Female_40_6.jpg",
    "unknowns/Female_41_6.jpg",
    "unknowns/Female_40_4_1.jpg",
];
const EXPECTED: [&str; 6] = ["arrival:obama", "arrival:biden", "visitor", "visitor", "visitor", "visitor"];

/// The kiosk in a mount namespace of its own, with a tmpfs of `size_mb` as its state directory.
fn spawn_on_small_disk(config: &Path, state: &Path, size_mb: u32, log: &Path) -> Child {
    std::fs::create_dir_all(state).expect("state dir");
    let log = std::fs::File::create(log).expect("log file");
    Command::new("unshare")
        .args(["-Urm", "sh", "-c", r#"mount -t tmpfs -o size="$1"m tmpfs "$2" && exec "$3" kiosk --config "$4""#, "sh"])
        .arg(size_mb.to_string())
        .arg(state)
        .arg(env!("CARGO_BIN_EXE_dolbom"))
        .arg(config)
        .env("DOLBOM_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("unshare (util-linux) must be installed")
}

fn free_bytes(path: &Path) -> u64 {
    dolbom_kiosk::disk::free_bytes(path).expect("statvfs of the kiosk's state disk")
}

/// Floods the kiosk's command topics until stopped: broken JSON, wrong fields, binary noise,
/// and messages from 100 KiB to 2 MiB. Returns how many went out.
fn flood(port: u16, topics: Vec<String>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let mut opts = common::broker::mqtt_options(format!("flood-{}", std::process::id()), port);
            opts.set_max_packet_size(4 << 20, 4 << 20);
            let (client, mut el) = rumqttc::AsyncClient::new(opts, 1000);
            tokio::spawn(async move {
                loop {
                    if el.poll().await.is_err() {
                        // The broker restarts mid-soak: come back with it.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            });
            let garbage: Vec<Vec<u8>> = vec![
                b"{\"alert_id\":".to_vec(),
                b"[]".to_vec(),
                b"null".to_vec(),
                b"{\"alert_id\":\"a\",\"by\":\"b\",\"evil\":1}".to_vec(),
                vec![0xff, 0xfe, 0x00, 0x1b, b'[', b'2', b'J'],
                format!("{{\"alert_id\":\"{}\",\"by\":\"x\"}}", "a".repeat(100_000)).into_bytes(),
                vec![b'z'; 1 << 20],
                vec![b'{'; 2 << 20],
            ];
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let topic = &topics[sent as usize % topics.len()];
                let payload = garbage[sent as usize % garbage.len()].clone();
                if client.try_publish(topic, rumqttc::QoS::AtLeastOnce, false, payload).is_ok() {
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            sent
        })
    })
}

/// Retained messages on `filter` right now, as a new subscriber would get them.
fn retained(port: u16, filter: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut opts = common::broker::mqtt_options(format!("retained-{}", common::broker::free_port()), port);
        opts.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut el) = rumqttc::AsyncClient::new(opts, 10);
        client.subscribe(filter, rumqttc::QoS::AtLeastOnce).await.expect("subscribe");
        let mut found = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Ok(ev)) = tokio::time::timeout_at(until, el.poll()).await {
            if let rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p)) = ev {
                if p.retain {
                    found.push(format!("{} ({} bytes)", p.topic, p.payload.len()));
                }
            }
        }
        found
    })
}

fn publish_retained(port: u16, topic: &str, payload: Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut opts = common::broker::mqtt_options(format!("poison-{}", common::broker::free_port()), port);
        opts.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut el) = rumqttc::AsyncClient::new(opts, 10);
        client.publish(topic, rumqttc::QoS::AtLeastOnce, true, payload).await.expect("publish");
        loop {
            match tokio::time::timeout(Duration::from_secs(10), el.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_)))) => break,
                Ok(Ok(_)) => {}
                other => panic!("retained poison not acknowledged: {other:?}"),
            }
        }
    });
}

fn statuses(received: &[Received]) -> Vec<serde_json::Value> {
    received.iter().filter(|m| m.topic.ends_with("/status")).map(|m| m.payload.clone()).collect()
}

fn reasons(status: &serde_json::Value) -> String {
    status["health"]["reasons"].to_string()
}

/// `dolbom status` as an operator runs it, on the kiosk's own view of its state directory.
fn dolbom_status(config: &Path, proc_state: &Path, dir: &Path) -> (bool, String) {
    let text = std::fs::read_to_string(config).expect("config");
    let state = dir.join("state").display().to_string();
    let view = dir.join("status-view.toml");
    std::fs::write(&view, text.replace(&format!("dir = \"{state}\""), &format!("dir = \"{}\"", proc_state.display())))
        .expect("status config");
    let out = common::dolbom(&["status", "--config", view.to_str().expect("utf-8")]);
    (out.status.success(), stderr(&out))
}

/// v3.1.1: the broker cannot be told a maximum packet size, so the oversized poison really
/// reaches the kiosk, which must read, acknowledge and drop it.
#[test]
fn soak_v311_flood_broker_restart_and_full_disk_lose_nothing_and_status_tells_the_truth() {
    soak("3.1.1");
}

/// MQTT 5 (the default): the kiosk announces its maximum packet size and the broker withholds
/// the oversized poison, the retained one included (it stays on the broker, harmless).
#[test]
fn soak_v5_flood_broker_restart_and_full_disk_lose_nothing_and_status_tells_the_truth() {
    soak("5");
}

fn soak(protocol: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let center = unique_center("soak");
    let clip = dir.path().join("soak.avi");
    let walkers: Vec<Walker> = WALKERS.iter().map(|p| Walker { photo: photo(p), skin_c: 36.5, far: false }).collect();
    write_walk_up(&clip, &walkers, WalkUp { gap_secs: 2.0, approach_secs: 2.0, stay_secs: 1.0, ..WalkUp::default() })
        .expect("clip");
    let config = kiosk_config(
        dir.path(),
        &KioskOptions {
            center: &center,
            port: broker.port,
            clip: &clip,
            pace: "realtime",
            at_end: "exit",
            mqtt: &format!("protocol = \"{protocol}\""),
            extra: "reserve_mb = 8",
        },
    );
    enrol(&config);
    let root = format!("dolbom/v1/{center}/door-1");
    let sub = Subscriber::start(broker.port, &format!("dolbom/v1/{center}/#"));
    // Poison kept by the broker before the kiosk ever connects.
    publish_retained(broker.port, &format!("{root}/cmd/silence"), b"{\"alert_id\": garbage".to_vec());
    publish_retained(broker.port, &format!("{root}/cmd/resolve"), vec![b'x'; 1 << 20]);

    let state = dir.path().join("state");
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_on_small_disk(&config, &state, 32, &log);
    let proc_state = PathBuf::from(format!("/proc/{}/root{}", kiosk.id(), state.display()));
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("the kiosk's own state disk", Duration::from_secs(30), || proc_state.join("kiosk.lock").exists());

    let stop = Arc::new(AtomicBool::new(false));
    let topics = vec![format!("{root}/cmd/silence"), format!("{root}/cmd/resolve")];
    let flooder = flood(broker.port, topics, stop.clone());

    // 1. The broker goes away after the first event and comes back.
    sub.wait_for(Duration::from_secs(60), "the first event", |m| !events(m).0.is_empty());
    // The retained poison the kiosk was sent on connecting is cleared by then.
    let left = retained(broker.port, &format!("{root}/cmd/#"));
    if protocol == "5" {
        assert_eq!(left, [format!("{root}/cmd/resolve (1048576 bytes)")], "only what the broker withheld");
    } else {
        assert_eq!(left, Vec::<String>::new());
    }
    broker.stop();
    wait_until("status to say the broker is gone", Duration::from_secs(10), || {
        let (ok, err) = dolbom_status(&config, &proc_state, dir.path());
        !ok && err.contains("broker unreachable")
    });
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();

    // 2. The state disk fills up (below the reserve, as another process on the board could).
    sub.wait_for(Duration::from_secs(60), "the second event", |m| events(m).0.len() >= 2);
    let filler = proc_state.join("filler");
    let fill = free_bytes(&proc_state).saturating_sub(2 << 20);
    std::fs::write(&filler, vec![0u8; fill as usize]).expect("fill the state disk");
    let low = AtomicU64::new(0);
    sub.wait_for(Duration::from_secs(20), "a status saying the disk is low", |m| {
        let s = statuses(m);
        let at = s.iter().position(|s| reasons(s).contains("state disk low"));
        if let Some(at) = at {
            low.store(at as u64, Ordering::Relaxed);
        }
        at.is_some()
    });
    let (ok, err) = dolbom_status(&config, &proc_state, dir.path());
    assert!(!ok && err.contains("state disk low"), "dolbom status while the disk is full: {err}");
    // The first stranger walks up meanwhile: the visitor event waits in memory.
    wait_until("the first visitor to be seen", Duration::from_secs(60), || show_log().contains("who=Visitor"));
    sub.wait_for(Duration::from_secs(20), "a status with the event waiting", |m| {
        statuses(m).iter().any(|s| s["health"]["events_waiting"].as_u64().unwrap_or(0) > 0)
    });
    let during = statuses(&sub.snapshot());
    for s in &during[low.load(Ordering::Relaxed) as usize..] {
        assert_eq!(s["health"]["degraded"], true, "a status while the disk was full said all is well: {s}");
        assert!(reasons(s).contains("state disk low"), "{s}");
    }
    assert_eq!(summary(&events(&sub.snapshot()).0), EXPECTED[..2], "the visitor's event is not out yet");
    std::fs::remove_file(&filler).expect("free the state disk");

    // 3. The clip ends; the kiosk drains and exits.
    let status = wait_exit(&mut kiosk, 180, &log);
    stop.store(true, Ordering::Relaxed);
    let flooded = flooder.join().expect("flood thread");
    assert!(status.success(), "exit status {status}; log:\n{}", show_log());
    sub.wait_for(Duration::from_secs(20), "the offline status", |m| {
        statuses(m).last().is_some_and(|s| s["state"] == "offline")
    });

    let received = sub.snapshot();
    let (evs, dups) = events(&received);
    assert_eq!(summary(&evs), EXPECTED, "every event, in order; log:\n{}", show_log());
    assert_eq!(dups, 0, "no event twice");
    let times: Vec<&str> = evs.iter().map(|e| e["ts"].as_str().expect("ts")).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "capture times in order, the waiting one kept its own: {times:?}");

    let all = statuses(&received);
    let after_free = all.iter().rev().find(|s| s["state"] == "online").expect("an online status");
    assert_eq!(after_free["health"]["degraded"], false, "all well again before the end: {after_free}");
    let last = all.last().expect("status");
    assert_eq!(last["health"]["events_lost"], 0, "{last}");
    assert_eq!(last["health"]["events_waiting"], 0, "{last}");
    assert!(last["health"]["mqtt_ignored"].as_u64().unwrap_or(0) > 0, "the poison was counted: {last}");

    // The poison never cost the connection: one connection, and one after the restart.
    let text = show_log();
    assert_eq!(text.matches("connected to broker").count(), 2, "{flooded} poison messages; log:\n{text}");
}

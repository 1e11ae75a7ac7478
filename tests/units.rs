//! The systemd units in systemd/: hardened to an exposure of at most 2.0 as systemd itself rates
//! them, and the kiosk daemon, run to the end of the walk-up clip, stays inside its unit's system
//! call filter and needs no write+execute memory. (The relay's run is in tests/relay.rs.)

mod common;

use common::broker::{system_broker_port, Subscriber};
use common::kiosk::{clip, enrol, events, kiosk_config, summary, unique_center, wait_exit, KioskOptions};
use common::units::{deny_write_execute, exposure, outside_filter, traced, unit};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn every_unit_is_rated_at_most_2_0() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let mut rated = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("systemd/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "service") {
            rated.push((path.file_name().expect("name").to_string_lossy().into_owned(), exposure(&path)));
        }
    }
    rated.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rated.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["dolbom-console.service", "dolbom-kiosk.service", "dolbom-relay.service"]
    );
    for (name, level) in &rated {
        assert!(*level <= 2.0, "{name}: exposure {level} (systemd-analyze security --offline=yes systemd/{name})");
    }
}

#[test]
fn the_kiosk_stays_inside_its_units_syscall_filter_and_memory_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("unit");
    let port = system_broker_port();
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: clip(), pace: "fast", at_end: "exit", mqtt: "", extra: "" },
    );
    enrol(&config);
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let calls = dir.path().join("strace.txt");
    let log = dir.path().join("kiosk.log");
    let mut cmd = traced(std::path::Path::new(env!("CARGO_BIN_EXE_dolbom")), &calls);
    cmd.args(["kiosk", "--config"]).arg(&config).env("DOLBOM_LOG", "info").env("NO_COLOR", "1");
    let write_execute_denied = deny_write_execute(&mut cmd);
    let mut kiosk = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("strace (scripts/setup.sh --tests installs it)");
    let status = wait_exit(&mut kiosk, 300, &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit status {status}; log:\n{text}");
    sub.wait_for(Duration::from_secs(10), "the offline status", |m| {
        m.iter().any(|r| r.topic.ends_with("/status") && r.payload["state"] == "offline")
    });
    // The whole door chain ran: models, tracking, the outbox, the broker.
    assert_eq!(summary(&events(&sub.snapshot()).0), ["arrival:obama", "arrival:biden", "visitor"]);
    let outside = outside_filter(&unit("dolbom-kiosk.service"), &calls);
    assert!(outside.is_empty(), "the kiosk called {outside:?}, which dolbom-kiosk.service's SystemCallFilter= refuses");
    if !write_execute_denied {
        eprintln!("note: this kernel has no PR_SET_MDWE; MemoryDenyWriteExecute= was not exercised");
    }
}

//! Running the real `dolbom kiosk` daemon in tests: a gallery, a walk-up clip and a config.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use dolbom_kiosk::sim::thermal::{link, open_pty, photo_faces, stream, ThermalSim};
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

use super::{dolbom, photo, stderr};

pub const OBAMA_ENROL: [&str; 2] = ["face_recognition/obama.jpg", "face_recognition/obama2.jpg"];
pub const BIDEN_ENROL: [&str; 1] = ["face_recognition/biden.jpg"];
/// Who walks up in the standard clip: Obama, Biden, a stranger, and Obama again (another photo).
pub const WALKERS: [&str; 4] = [
    "face_recognition/obama.jpg",
    "face_recognition/biden.jpg",
    "unknowns/Female_42_7.jpg",
    "face_recognition/obama3.jpg",
];

/// A center id no other test (or test run) uses, so subscriptions see only this test's kiosk.
pub fn unique_center(tag: &str) -> String {
    format!("test-{tag}-{}-{}", std::process::id(), super::broker::free_port())
}

/// The standard clip, made once per test binary.
pub fn clip() -> &'static Path {
    static CLIP: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = CLIP.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("walkup.avi");
        let walkers: Vec<Walker> =
            WALKERS.iter().map(|p| Walker { photo: photo(p), skin_c: 36.5, far: false }).collect();
        write_walk_up(
            &path,
            &walkers,
            WalkUp { gap_secs: 1.0, approach_secs: 2.0, stay_secs: 1.0, ..WalkUp::default() },
        )
        .expect("clip");
        (dir, path)
    });
    path
}

/// A clip of the empty doorway only.
pub fn empty_clip(dir: &Path) -> PathBuf {
    let path = dir.join("empty.avi");
    write_walk_up(&path, &[], WalkUp { gap_secs: 1.0, ..WalkUp::default() }).expect("empty clip");
    path
}

/// Enrols Obama (guardian) and Biden (staff) into `dir`'s gallery through the CLI.
pub fn enrol(config: &Path) {
    let c = config.to_str().expect("utf-8");
    for (id, role, photos) in [("obama", "guardian", &OBAMA_ENROL[..]), ("biden", "staff", &BIDEN_ENROL[..])] {
        let paths: Vec<String> = photos.iter().map(|p| photo(p).display().to_string()).collect();
        let mut args = vec!["enroll", "--config", c, "--person", id, "--role", role, "--name", id];
        args.extend(paths.iter().map(String::as_str));
        let out = dolbom(&args);
        assert!(out.status.success(), "enrol {id}: {}", stderr(&out));
    }
}

/// Enrols Obama as a child named 오바마 (the relay's directory in [`super::relay`] texts his
/// guardians), with a guardian's consent recorded first, as staff must.
pub fn enrol_child_obama(config: &Path) {
    super::consent(config, "obama");
    let c = config.to_str().expect("utf-8");
    let photos: Vec<String> = OBAMA_ENROL.iter().map(|p| photo(p).display().to_string()).collect();
    let mut args = vec!["enroll", "--config", c, "--person", "obama", "--role", "child", "--name", "오바마"];
    args.extend(photos.iter().map(String::as_str));
    let out = dolbom(&args);
    assert!(out.status.success(), "enrol: {}", stderr(&out));
}

pub struct KioskOptions<'a> {
    pub center: &'a str,
    pub port: u16,
    pub clip: &'a Path,
    pub pace: &'a str,
    pub at_end: &'a str,
    /// More keys for the [mqtt] section.
    pub mqtt: &'a str,
    /// More sections.
    pub extra: &'a str,
}

/// Writes a kiosk config into `dir` (gallery and state there too) and returns its path.
pub fn kiosk_config(dir: &Path, o: &KioskOptions<'_>) -> PathBuf {
    let extra = format!(
        r#"
[site]
center_id = "{center}"
kiosk_id = "door-1"
timezone = "Asia/Seoul"

[camera]
kind = "file"
source = "{clip}"
pace = "{pace}"
at_end = "{at_end}"
retry_initial_ms = 100
retry_max_ms = 500

[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_initial_ms = 100
reconnect_max_ms = 500
status_interval_secs = 1
drain_timeout_secs = 3
{mqtt}{tls}

[state]
dir = "{state}"
{extra}
"#,
        center = o.center,
        clip = o.clip.display(),
        pace = o.pace,
        at_end = o.at_end,
        port = o.port,
        state = dir.join("state").display(),
        mqtt = o.mqtt,
        // A test that brings its own [mqtt.tls] (tests/security_daemons.rs) keeps it.
        tls = if o.mqtt.contains("[mqtt.tls]") { String::new() } else { super::broker::tls_toml() },
        extra = o.extra,
    );
    seal_gallery(&super::write_config(dir, &extra))
}

/// The key file beside a test config (`gallery.key`, made by [`seal_gallery`]).
pub fn gallery_key(config: &Path) -> PathBuf {
    config.parent().expect("config dir").join("gallery.key")
}

/// Gives the config's gallery a key (`gallery.key` beside it, 64 random hex characters, mode
/// 0600), as an installed kiosk has: the end-to-end tests run on a sealed gallery. Returns
/// `config`.
pub fn seal_gallery(config: &Path) -> PathBuf {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let key = gallery_key(config);
    if !key.exists() {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom").and_then(|mut r| r.read_exact(&mut bytes)).expect("/dev/urandom");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&key).expect("key");
        std::io::Write::write_all(&mut f, format!("{hex}\n").as_bytes()).expect("write key");
    }
    let text = std::fs::read_to_string(config).expect("config");
    let line = format!("key_file = \"{}\"", key.display());
    let sealed = text.replacen("\n[gallery]\n", &format!("\n[gallery]\n{line}\n"), 1);
    assert_ne!(sealed, text, "no [gallery] section in {}", config.display());
    std::fs::write(config, sealed).expect("config");
    config.to_path_buf()
}

pub fn spawn_kiosk(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["kiosk", "--config"])
        .arg(config)
        .env("DOLBOM_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn dolbom kiosk")
}

/// Waits for the daemon to exit on its own and returns its exit status.
pub fn wait_exit(child: &mut Child, secs: u64, log: &Path) -> std::process::ExitStatus {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("kiosk did not exit within {secs}s; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The event payloads (attendance and visitor) in arrival order, first copy of each event only,
/// and how many copies were duplicates.
pub fn events(received: &[super::broker::Received]) -> (Vec<serde_json::Value>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut dups = 0;
    for m in received.iter().filter(|m| m.topic.contains("/event/")) {
        let id = m.payload["event_id"].as_str().unwrap_or_default().to_string();
        if seen.insert(id) {
            out.push(m.payload.clone());
        } else {
            dups += 1;
        }
    }
    (out, dups)
}

/// "arrival:obama", "visitor", ... for compact assertions.
pub fn summary(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["schema"].as_str() {
            Some("dolbom.attendance/1") => {
                format!("{}:{}", e["kind"].as_str().unwrap_or("?"), e["person"]["id"].as_str().unwrap_or("?"))
            }
            Some("dolbom.visitor/1") => "visitor".into(),
            other => format!("unexpected:{other:?}"),
        })
        .collect()
}

/// A `[thermal]` and `[fever]` section for a kiosk in `dir`, its sensor at `dir/thermal0` (see
/// [`thermal_sensor`]).
pub fn fever_toml(dir: &Path) -> String {
    format!(
        "\n[thermal]\ndevice = \"gy-mcu90640\"\nport = \"{}\"\n\n[fever]\nenabled = true\nstaff = [\"kim\"]\n",
        dir.join("thermal0").display()
    )
}

/// The simulated thermal array on a real pty behind `dir/thermal0`, playing `people` on the
/// timeline of a clip made with `scene` (it starts when the daemon opens the port). Ends with
/// the scene.
pub fn thermal_sensor(dir: &Path, config: &Path, people: Vec<Walker>, scene: WalkUp) -> std::thread::JoinHandle<()> {
    thermal_sensor_with(dir, config, people, scene, 7, None)
}

/// [`thermal_sensor`] with its noise seed, streaming for at most `limit` (None: until the
/// kiosk closes the port).
pub fn thermal_sensor_with(
    dir: &Path,
    config: &Path,
    people: Vec<Walker>,
    scene: WalkUp,
    seed: u64,
    limit: Option<std::time::Duration>,
) -> std::thread::JoinHandle<()> {
    let cfg = super::load(config);
    let mut models = dolbom_face::FaceModels::load(&cfg.runtime, &cfg.face).expect("models");
    let faces = photo_faces(&people, models.detector.as_mut()).expect("faces");
    let mut pty = open_pty().expect("pty");
    link(&dir.join("thermal0"), &pty.slave_path).expect("link");
    let sim = ThermalSim {
        fps: 8.0,
        ambient_c: 24.0,
        noise_c: 0.1,
        dropout: 0.0,
        corrupt: 0.0,
        csv: false,
        calibration: cfg.fever.calibration,
        seed,
    };
    std::thread::spawn(move || {
        let _ = stream(&mut pty, &people, &faces, &scene, &sim, limit);
    })
}

//! The gallery at rest and face images: the kiosk and the CLI on a sealed gallery (wrong key,
//! no key, rekey, a plain gallery migrated), and no face image written to disk or sent over
//! MQTT while enrolling from photos and running the door on a clip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::broker::{system_broker_port, Subscriber};
use common::kiosk::{clip, events, gallery_key, kiosk_config, summary, unique_center, KioskOptions};
use common::{dolbom, photo, stderr, stdout};

const SEALED: &[u8] = b"dolbom.gallery.sealed/1 ";

fn options<'a>(center: &'a str, port: u16) -> KioskOptions<'a> {
    KioskOptions { center, port, clip: clip(), pace: "fast", at_end: "exit", mqtt: "", extra: "" }
}

/// Runs `dolbom ARGS` with TMPDIR set to `tmp`, so what it leaves in its temp dir can be seen.
fn dolbom_in(tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dolbom")).args(args).env("TMPDIR", tmp).output().expect("run dolbom")
}

fn enrol_in(tmp: &Path, config: &Path) {
    let c = config.to_str().expect("utf-8");
    for (id, role, photos) in
        [("obama", "guardian", &common::kiosk::OBAMA_ENROL[..]), ("biden", "staff", &common::kiosk::BIDEN_ENROL[..])]
    {
        let paths: Vec<String> = photos.iter().map(|p| photo(p).display().to_string()).collect();
        let mut args = vec!["enroll", "--config", c, "--person", id, "--role", role, "--name", id];
        args.extend(paths.iter().map(String::as_str));
        let out = dolbom_in(tmp, &args);
        assert!(out.status.success(), "enrol {id}: {}", stderr(&out));
    }
}

fn run_kiosk(config: &Path, tmp: &Path, log: &Path) -> std::process::ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["kiosk", "--config"])
        .arg(config)
        .env("DOLBOM_LOG", "info")
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn dolbom kiosk");
    common::kiosk::wait_exit(&mut child, 300, log)
}

/// The config with its `key_file` line changed to `key` (or removed, for none).
fn with_key(config: &Path, key: Option<&Path>) -> PathBuf {
    let text = std::fs::read_to_string(config).expect("config");
    let out: Vec<String> = text
        .lines()
        .filter_map(|l| match (l.starts_with("key_file = "), key) {
            (false, _) => Some(l.to_string()),
            (true, Some(k)) => Some(format!("key_file = \"{}\"", k.display())),
            (true, None) => None,
        })
        .collect();
    let path = config.with_file_name(if key.is_some() { "other-key.toml" } else { "no-key.toml" });
    std::fs::write(&path, out.join("\n") + "\n").expect("config");
    path
}

#[test]
fn the_kiosk_refuses_a_wrong_key_or_none_and_rekey_moves_the_gallery_to_a_new_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("seal");
    let config = kiosk_config(dir.path(), &options(&center, system_broker_port()));
    enrol_in(dir.path(), &config);
    let gallery = dir.path().join("gallery.json");
    let sealed = std::fs::read(&gallery).expect("gallery");
    assert!(sealed.starts_with(SEALED), "enrolment sealed the gallery");
    for name in ["obama", "biden"] {
        assert!(!sealed.windows(name.len()).any(|w| w == name.as_bytes()), "`{name}` readable in the sealed file");
    }

    // Another key: the daemon stops before anything starts, naming both keys.
    let other = dir.path().join("other.key");
    let made = dolbom(&["gallery", "keygen", other.to_str().expect("utf-8")]);
    assert!(made.status.success(), "{}", stderr(&made));
    let wrong = with_key(&config, Some(&other));
    let out = dolbom(&["kiosk", "--config", wrong.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "started with the wrong key");
    let err = stderr(&out);
    assert!(err.contains("is sealed with key") && err.contains("gallery.key_file"), "{err}");
    let id = |key: &Path| {
        let hex = std::fs::read_to_string(key).expect("key");
        dolbom_face::gallery::GalleryKey::from_hex(&hex).expect("key").id().to_string()
    };
    assert!(err.contains(&id(&gallery_key(&config))) && err.contains(&id(&other)), "both key ids named: {err}");
    assert!(!dir.path().join("state/kiosk.db").exists(), "nothing started");
    // No key at all: refused too, never an empty gallery.
    let none = with_key(&config, None);
    let out = dolbom(&["kiosk", "--config", none.to_str().expect("utf-8")]);
    assert!(!out.status.success() && stderr(&out).contains("is encrypted"), "{}", stderr(&out));
    let list = dolbom(&["gallery", "list", "--config", none.to_str().expect("utf-8")]);
    assert!(!list.status.success() && stdout(&list).is_empty(), "{}", stdout(&list));
    assert_eq!(std::fs::read(&gallery).expect("gallery"), sealed, "left untouched");

    // Rekey onto the other key: the old one no longer opens it, the new one does.
    let c = config.to_str().expect("utf-8");
    let rekey = dolbom(&["gallery", "rekey", "--config", c, "--new-key-file", other.to_str().expect("utf-8")]);
    assert!(rekey.status.success(), "{}", stderr(&rekey));
    assert!(stdout(&rekey).contains(&id(&other)), "{}", stdout(&rekey));
    let old = dolbom(&["gallery", "list", "--config", c]);
    assert!(!old.status.success() && stderr(&old).contains("is sealed with key"), "{}", stderr(&old));
    let new = dolbom(&["gallery", "list", "--config", wrong.to_str().expect("utf-8")]);
    assert!(new.status.success(), "{}", stderr(&new));
    let listed = stdout(&new);
    let ids: Vec<&str> = listed.lines().map(|l| l.split('\t').next().unwrap_or_default()).collect();
    assert_eq!(ids, ["obama", "biden"]);
    assert!(std::fs::read(&gallery).expect("gallery").starts_with(SEALED));
}

#[test]
fn a_plain_gallery_runs_the_door_and_is_sealed_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("plain");
    let port = system_broker_port();
    let sealed_config = kiosk_config(dir.path(), &options(&center, port));
    let plain = with_key(&sealed_config, None);
    enrol_in(dir.path(), &plain);
    let gallery = dir.path().join("gallery.json");
    assert!(std::fs::read(&gallery).expect("gallery").starts_with(b"{"), "enrolled plain");
    // The keyed kiosk reads the plain gallery (a migration), says so, and runs the door.
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let status = run_kiosk(&sealed_config, dir.path(), &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{text}");
    assert!(text.contains("not encrypted yet"), "{text}");
    sub.wait_for(Duration::from_secs(10), "the offline status", |m| {
        m.iter().any(|r| r.topic.ends_with("/status") && r.payload["state"] == "offline")
    });
    assert_eq!(summary(&events(&sub.snapshot()).0), ["arrival:obama", "arrival:biden", "visitor"]);
    // Sealed now rather than at the next change; then only the key opens it.
    let c = sealed_config.to_str().expect("utf-8");
    let seal = dolbom(&["gallery", "seal", "--config", c]);
    assert!(seal.status.success(), "{}", stderr(&seal));
    assert!(std::fs::read(&gallery).expect("gallery").starts_with(SEALED));
    let list = dolbom(&["gallery", "list", "--config", c]);
    assert_eq!(stdout(&list).lines().count(), 2, "{}", stderr(&list));
    let doctor = dolbom(&["doctor", "--json", "--config", plain.to_str().expect("utf-8")]);
    assert!(stdout(&doctor).contains("is encrypted"), "{}", stdout(&doctor));
}

/// Image files by their first bytes: JPEG, PNG, GIF, BMP, TIFF, WebP/AVI (RIFF), PNM.
fn image_magic(bytes: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(&[0xff, 0xd8, 0xff]) {
        Some("JPEG")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("PNG")
    } else if starts(b"GIF8") {
        Some("GIF")
    } else if starts(b"BM") {
        Some("BMP")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some("TIFF")
    } else if starts(b"RIFF") {
        Some("RIFF (WebP/AVI)")
    } else if bytes.len() > 3 && bytes[0] == b'P' && (b'1'..=b'6').contains(&bytes[1]) && bytes[2].is_ascii_whitespace()
    {
        Some("PNM")
    } else {
        None
    }
}

/// A JPEG or PNG inside a file (a database blob, a log line): JPEG's start-of-image with one of
/// the markers that follow it, PNG's signature. Random bytes match either once in 2^32 places.
fn embedded_image(bytes: &[u8]) -> Option<&'static str> {
    let jpeg = bytes.windows(4).any(|w| w[..3] == [0xff, 0xd8, 0xff] && matches!(w[3], 0xe0 | 0xe1 | 0xdb | 0xee));
    let png = bytes.windows(8).any(|w| w == b"\x89PNG\r\n\x1a\n");
    // Base64 of the same: "/9j/" starts a JPEG, "iVBORw0KGgo" a PNG.
    let text = String::from_utf8_lossy(bytes);
    if jpeg || text.contains("/9j/4") {
        Some("JPEG")
    } else if png || text.contains("iVBORw0KGgo") {
        Some("PNG")
    } else {
        None
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

#[test]
fn no_face_image_is_written_to_disk_or_sent_over_mqtt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let center = unique_center("noimage");
    let port = system_broker_port();
    let config = kiosk_config(dir.path(), &options(&center, port));
    enrol_in(&tmp, &config);
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let status = run_kiosk(&config, &tmp, &log);
    assert!(status.success(), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    sub.wait_for(Duration::from_secs(10), "the offline status", |m| {
        m.iter().any(|r| r.topic.ends_with("/status") && r.payload["state"] == "offline")
    });
    let seen = sub.snapshot();
    assert_eq!(summary(&events(&seen).0), ["arrival:obama", "arrival:biden", "visitor"], "the door ran");

    // Every file the CLI and the kiosk could have written: the config's directory (gallery,
    // state, database, status, logs) and their temp dir. Frame-sized files are suspect too: a
    // raw BGR or grey frame of the clip, or an aligned 112x112 face crop.
    let mut written = Vec::new();
    files(dir.path(), &mut written);
    assert!(written.iter().any(|p| p.ends_with("state/kiosk.db")), "{written:?}");
    let (w, h) = (640u64, 480u64);
    let frame_sizes = [w * h * 3, w * h, 112 * 112 * 3, 112 * 112];
    for path in &written {
        let bytes = std::fs::read(path).expect("read");
        assert_eq!(image_magic(&bytes), None, "{} is an image file", path.display());
        assert_eq!(embedded_image(&bytes), None, "{} holds an image", path.display());
        assert!(
            !frame_sizes.contains(&(bytes.len() as u64)),
            "{}: {} bytes, a raw frame's size",
            path.display(),
            bytes.len()
        );
    }
    // Nothing on the wire carries an image: no image bytes, no base64 image, no long blobs.
    for m in &seen {
        let text = serde_json::to_string(&m.payload).expect("json");
        assert_eq!(embedded_image(text.as_bytes()), None, "{}: {text}", m.topic);
        let longest = longest_string(&m.payload);
        assert!(longest < 512, "{}: a {longest}-character string in {text}", m.topic);
    }
}

fn longest_string(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::String(s) => s.len(),
        serde_json::Value::Array(a) => a.iter().map(longest_string).max().unwrap_or(0),
        serde_json::Value::Object(o) => o.values().map(longest_string).max().unwrap_or(0),
        _ => 0,
    }
}

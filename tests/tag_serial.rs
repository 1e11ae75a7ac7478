//! Tag and PIN check-ins end to end: the real `dolbom kiosk` reading RDM6300 frames from a
//! pseudo-terminal (valid, damaged, noise, a card held to the reader) and PINs from its socket,
//! real Mosquitto, and the real `dolbom relay` texting a loopback SMS gateway.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::{signal, system_broker_port, Subscriber};
use common::gateway::Gateway;
use common::kiosk::{empty_clip, gallery_key, kiosk_config, spawn_kiosk, unique_center, KioskOptions};
use common::{dolbom, stderr, stdout, wait_until};
use dolbom_face::gallery::CardId;
use dolbom_kiosk::sim::tag::{bursts, TagSim};
use dolbom_kiosk::sim::thermal::{open_pty, slave_is_open};
use dolbom_kiosk::sources::serial::SerialDecoder;
use dolbom_kiosk::sources::tag::Rdm6300;

const JIWOO_CARD: &str = "62E3086CED";
const UNKNOWN_CARD: &str = "0A00C3D2E1";

const MINJI_PIN: &str = "258046";
const WRONG_PIN: &str = "111937";

/// The PIN pepper, owner-only as a credential file must be; returns its `[pin]` line.
fn pepper_file(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("pin-pepper");
    std::fs::write(&path, "c2f1a7d09b3e4c5f8a6b7c8d9e0f1a2b3c4d5e6f\n").expect("pepper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!("pepper_file = \"{}\"\n", path.display())
}

/// Whether `pin` occurs in `text` as a whole token: not inside a longer run of letters and
/// digits (an event id's hex, a millisecond timestamp).
fn contains_token(text: &str, pin: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| t == pin)
}

#[test]
fn a_pin_is_found_only_as_a_whole_token() {
    assert!(contains_token("pin=258046 done", "258046"));
    assert!(contains_token("258046", "258046"));
    assert!(contains_token("\"258046\"", "258046"));
    assert!(!contains_token("event_id=0190a258046b ts=1764258046123", "258046"));
    assert!(!contains_token("x2580461", "258046"));
}

fn run_with_stdin(args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dolbom");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// A relay for `center` texting through `gateway`; returns it once it has subscribed.
fn start_relay(dir: &Path, center: &str, gateway: &Gateway) -> (std::process::Child, std::path::PathBuf) {
    std::fs::write(
        dir.join("directory.toml"),
        format!(
            r#"
[[center]]
id = "{center}"
name = "햇살어린이집"
sender = "02-123-4567"
timezone = "Asia/Seoul"

[[child]]
id = "jiwoo"
center = "{center}"
name = "이지우"

[[child.guardian]]
name = "mom"
phone = "010-1234-5678"
lang = "ko"

[[child]]
id = "minji"
center = "{center}"
name = "김민지"

[[child.guardian]]
name = "dad"
phone = "010-8765-4321"
lang = "en"
"#
        ),
    )
    .expect("directory");
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "relay-{center}"
reconnect_initial_ms = 100
reconnect_max_ms = 500
{tls}
[relay]
topics = ["dolbom/v1/{center}/+/event/attendance"]
database = "relay.db"
directory = "directory.toml"
retry_initial_ms = 200
retry_max_ms = 1000
max_attempts = 5

[provider]
kind = "webhook"
url = "{url}/send"
"#,
            port = system_broker_port(),
            url = gateway.url(),
            tls = common::broker::tls_toml(),
        ),
    )
    .expect("relay config");
    let log = dir.join("relay.log");
    let child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["relay", "--config"])
        .arg(&config)
        .env("DOLBOM_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn relay");
    wait_until("the relay to subscribe", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("subscribed")
    });
    (child, log)
}

/// The last status's `health`, from the kiosk's status file.
fn health(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("state/status.json")).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text).map(|v| v["health"].clone()).unwrap_or_default()
}

#[test]
fn a_held_tag_through_noise_and_damage_is_one_arrival_and_one_text_and_a_pin_checks_in_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("tag");
    let mut pty = open_pty().expect("pty");
    let extra = format!(
        "\n[tag]\nport = \"{}\"\nrepeat_secs = 3\nretry_max_ms = 300\n\n[pin]\nenabled = true\n{}",
        pty.slave_path,
        pepper_file(dir.path())
    );
    let clip = empty_clip(dir.path());
    let port = system_broker_port();
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: &clip, pace: "realtime", at_end: "loop", mqtt: "", extra: &extra },
    );
    let c = config.to_str().expect("utf-8");

    // Jiwoo's family said no to face recognition: a tag and nothing else. Minji has a PIN.
    let out = dolbom(&[
        "tag",
        "add",
        "jiwoo",
        &JIWOO_CARD.to_lowercase(),
        "--role",
        "child",
        "--name",
        "이지우",
        "--config",
        c,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = dolbom(&["tag", "add", "minji", JIWOO_CARD, "--role", "child", "--name", "김민지", "--config", c]);
    assert!(!again.status.success(), "a card enrolled twice is refused");
    assert!(stderr(&again).contains("already enrolled for `jiwoo`"), "{}", stderr(&again));
    let list = dolbom(&["tag", "list", "--config", c]);
    assert_eq!(stdout(&list).trim(), format!("{JIWOO_CARD}\tjiwoo\tchild\t이지우\tno-face"));
    let minji_pin = format!("{MINJI_PIN}\n");
    let pin =
        run_with_stdin(&["pin", "set", "minji", "--role", "child", "--name", "김민지", "--config", c], &minji_pin);
    assert!(pin.status.success(), "{}", stderr(&pin));
    let taken = run_with_stdin(&["pin", "set", "jiwoo", "--config", c], &minji_pin);
    assert!(!taken.status.success() && stderr(&taken).contains("already used by another person"), "{}", stderr(&taken));
    // The refusal tells whoever sets PINs that one is taken: it is in the audit log, without the PIN.
    assert!(stderr(&taken).contains("audit") && stderr(&taken).contains("jiwoo"), "{}", stderr(&taken));
    assert!(!contains_token(&stderr(&taken), MINJI_PIN), "{}", stderr(&taken));
    // The gallery is sealed: look inside it as the kiosk does.
    let sealed = std::fs::read(dir.path().join("gallery.json")).expect("gallery");
    assert!(!contains_token(&String::from_utf8_lossy(&sealed), MINJI_PIN));
    let opened = dolbom_face::gallery::GalleryStore::sealed(dir.path().join("gallery.json"), gallery_key(&config));
    let gallery = serde_json::to_string(&opened.load().expect("gallery")).expect("json");
    assert!(gallery.contains("이지우") && !contains_token(&gallery, MINJI_PIN), "the PIN is stored hashed only");

    let gateway = Gateway::start();
    let (mut relay, relay_log) = start_relay(dir.path(), &center, &gateway);
    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/door-1/#"));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    let dump = || {
        format!(
            "kiosk:\n{}\nrelay:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(&relay_log).unwrap_or_default()
        )
    };
    wait_until("the reader's port open", Duration::from_secs(60), || {
        slave_is_open(&pty.master) && health(dir.path())["sensors"]["tag"]["state"] == "ok"
    });

    // An unknown card, then Jiwoo's: line noise, a damaged frame, and the card held to the
    // reader for a second (20 frames 50 ms apart), written in pieces that split frames.
    let unknown: CardId = UNKNOWN_CARD.parse().expect("card");
    let jiwoo: CardId = JIWOO_CARD.parse().expect("card");
    let held = TagSim { repeat: 20, noise: true, bad_checksum: true, ..TagSim::default() };
    let mut wire: Vec<Vec<u8>> = bursts(&unknown, &TagSim::default());
    wire.extend(bursts(&jiwoo, &held));
    for burst in &wire {
        let (a, b) = burst.split_at(burst.len() / 3);
        pty.master.write_all(a).expect("write");
        pty.master.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(25)); // a reader's pace, not a wait for anything
        pty.master.write_all(b).expect("write");
        std::thread::sleep(Duration::from_millis(25));
    }
    // Every frame taken in: 21 read, the damaged one counted, the unknown card counted.
    wait_until("the reader's frames counted", Duration::from_secs(20), || {
        let h = health(dir.path());
        let tag = &h["sensors"]["tag"];
        tag["frames"] == 21 && tag["checksum_errors"] == 1 && h["tags_unknown"] == 1
    });

    // Minji types a wrong PIN, then hers. Her check-in comes after every tag read in the same
    // queue, so once it is out, any second tag event would be out too.
    let wrong = run_with_stdin(&["pin", "enter", "--config", c], &format!("{WRONG_PIN}\n"));
    assert!(!wrong.status.success() && stdout(&wrong).contains("wrong PIN"), "{}", stdout(&wrong));
    let right = run_with_stdin(&["pin", "enter", "--config", c], &minji_pin);
    assert!(right.status.success(), "{} {}", stdout(&right), stderr(&right));
    assert!(stdout(&right).contains("checked in: 김민지 (minji)"), "{}", stdout(&right));
    sub.wait_for(Duration::from_secs(30), "the PIN check-in", |m| {
        m.iter().any(|m| m.topic.ends_with("/event/attendance") && m.payload["method"] == "pin")
    });

    // A guesser: four more wrong PINs make five in the minute and lock the input; even the
    // right PIN is then refused unread, the status shows the lock, and staff end it.
    for _ in 0..4 {
        let out = run_with_stdin(&["pin", "enter", "--config", c], &format!("{WRONG_PIN}\n"));
        assert!(stdout(&out).contains("wrong PIN"), "{}", stdout(&out));
    }
    let locked = run_with_stdin(&["pin", "enter", "--config", c], &minji_pin);
    assert!(!locked.status.success() && stdout(&locked).contains("too many wrong PINs"), "{}", stdout(&locked));
    wait_until("the lock in the status", Duration::from_secs(20), || {
        let h = health(dir.path());
        h["pin_locked"] == true && h["pin_lockouts"] == 1
    });
    let unlock = dolbom(&["pin", "unlock", "--config", c]);
    assert!(unlock.status.success() && stdout(&unlock).contains("5 wrong tries forgotten"), "{}", stdout(&unlock));
    wait_until("the unlock in the status", Duration::from_secs(20), || health(dir.path())["pin_locked"] == false);

    let events: Vec<serde_json::Value> = sub.on("/event/attendance").into_iter().map(|m| m.payload).collect();
    let schema = common::schema("attendance.schema.json");
    for e in &events {
        common::assert_valid(&schema, e);
    }
    let summary: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}",
                e["kind"].as_str().unwrap_or("?"),
                e["person"]["id"].as_str().unwrap_or("?"),
                e["method"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(summary, ["arrival:jiwoo:tag", "arrival:minji:pin"], "{}", dump());
    let tag_event = &events[0];
    assert_eq!(tag_event["confidence"], 1.0);
    assert_eq!(tag_event["temperature_c"], serde_json::Value::Null, "no face was measured");
    assert_eq!(tag_event["temperature_status"], "screening_off");
    assert!(sub.on("/event/visitor").is_empty(), "an unknown card is no visitor event");

    // The relay texts each family once, as for a face.
    wait_until("two texts", Duration::from_secs(30), || gateway.received().len() >= 2);
    let texts: Vec<(String, String)> = gateway
        .received()
        .iter()
        .map(|r| (r.body["to"].as_str().unwrap_or("").into(), r.body["text"].as_str().unwrap_or("").into()))
        .collect();
    let to_jiwoo: Vec<&String> = texts.iter().filter(|(to, _)| to == "01012345678").map(|(_, t)| t).collect();
    assert_eq!(to_jiwoo.len(), 1, "{texts:?}");
    assert!(
        to_jiwoo[0].starts_with("[햇살어린이집] 이지우 어린이가 ") && to_jiwoo[0].ends_with("에 등원했습니다."),
        "{texts:?}"
    );
    assert!(texts.iter().any(|(to, t)| to == "01087654321" && t.contains("김민지 arrived at")), "{texts:?}");

    signal(kiosk.id(), "TERM");
    let status = kiosk.wait().expect("kiosk exit");
    signal(relay.id(), "TERM");
    let _ = relay.wait();
    assert!(status.success(), "{}", dump());
    let kiosk_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(kiosk_log.contains(UNKNOWN_CARD), "the unknown card is logged with its id");
    // 20 frames of the held card were one read (the debounce), before the attendance book.
    assert_eq!(kiosk_log.matches("tag read / 태그 인식").count(), 1, "{}", dump());
    assert!(!contains_token(&kiosk_log, MINJI_PIN) && !contains_token(&kiosk_log, WRONG_PIN), "no PIN is ever logged");
    assert!(gateway.received().len() == 2, "{:?}", gateway.received().len());
}

/// `dolbom sim tag --link` plays a reader on a pseudo-terminal that a serial port reads back.
#[test]
fn the_simulator_plays_a_reader_on_a_pty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("tag.pty");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args([
            "sim",
            "tag",
            JIWOO_CARD,
            UNKNOWN_CARD,
            "--repeat",
            "3",
            "--noise",
            "--bad-checksum",
            "--gap",
            "0.2",
            "--hold",
            "1",
            "--link",
        ])
        .arg(&link)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sim");
    wait_until("the link", Duration::from_secs(10), || link.exists());
    let mut port = serialport::new(link.to_str().expect("utf-8"), 9600)
        .timeout(Duration::from_millis(200))
        .open()
        .expect("open the simulated reader");
    let mut decoder = Rdm6300::default();
    let mut cards = Vec::new();
    let mut buf = [0u8; 256];
    let until = Instant::now() + Duration::from_secs(20);
    while cards.len() < 6 && Instant::now() < until {
        match port.read(&mut buf) {
            Ok(n) => decoder.feed(&buf[..n], &mut cards),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    let status = sim.wait().expect("sim exit");
    assert!(status.success());
    let shown: Vec<String> = cards.iter().map(|c| c.to_string()).collect();
    assert_eq!(shown, [JIWOO_CARD, JIWOO_CARD, JIWOO_CARD, UNKNOWN_CARD, UNKNOWN_CARD, UNKNOWN_CARD]);
    assert_eq!(decoder.stats().checksum_errors, 2);
}

/// The enrolment commands' refusals name what is wrong, and change nothing.
#[test]
fn tag_and_pin_commands_refuse_with_reasons_and_removal_takes_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = common::write_config(dir.path(), "");
    let c = cfg.to_str().expect("utf-8");
    let gallery = || std::fs::read(dir.path().join("gallery.json")).ok();

    let bad = dolbom(&["tag", "add", "jiwoo", "62E3086CE", "--role", "child", "--name", "이지우", "--config", c]);
    assert!(!bad.status.success() && stderr(&bad).contains("10 hex characters"), "{}", stderr(&bad));
    let nobody = dolbom(&["tag", "add", "jiwoo", JIWOO_CARD, "--config", c]);
    assert!(!nobody.status.success() && stderr(&nobody).contains("--role and --name"), "{}", stderr(&nobody));
    let half = dolbom(&["tag", "add", "jiwoo", JIWOO_CARD, "--role", "child", "--config", c]);
    assert!(!half.status.success(), "{}", stderr(&half));
    assert_eq!(gallery(), None, "nothing written by a refusal");

    let ok = dolbom(&["tag", "add", "jiwoo", JIWOO_CARD, "--role", "child", "--name", "이지우", "--config", c]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let second = dolbom(&["tag", "add", "jiwoo", UNKNOWN_CARD, "--config", c]);
    assert!(second.status.success(), "a second tag for someone enrolled: {}", stderr(&second));
    // Without the pepper no PIN can be set, and the error names the key.
    let no_pepper = run_with_stdin(&["pin", "set", "jiwoo", "--config", c], "975310\n");
    assert!(!no_pepper.status.success() && stderr(&no_pepper).contains("pin.pepper_file"), "{}", stderr(&no_pepper));
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str(&format!("\n[pin]\n{}", pepper_file(dir.path())));
    std::fs::write(&cfg, text).expect("config");
    for pin in ["123", "2580", "12345", "123456789", "12a456", ""] {
        let out = run_with_stdin(&["pin", "set", "jiwoo", "--config", c], &format!("{pin}\n"));
        let err = stderr(&out);
        assert!(!out.status.success() && err.contains("6 to 8 digits") && err.contains("6~8자리"), "{pin:?}: {err}");
    }
    let pin_file = dir.path().join("jiwoo.pin");
    std::fs::write(&pin_file, "975310\n").expect("pin file");
    let set = dolbom(&["pin", "set", "jiwoo", "--pin-file", pin_file.to_str().expect("utf-8"), "--config", c]);
    assert!(set.status.success(), "{}", stderr(&set));
    let list = dolbom(&["tag", "list", "--json", "--config", c]);
    let rows: Vec<serde_json::Value> = stdout(&list).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["person"] == "jiwoo" && r["face"] == false && r["pin"] == true), "{rows:?}");

    let removed = dolbom(&["tag", "remove", &UNKNOWN_CARD.to_lowercase(), "--config", c]);
    assert!(removed.status.success() && stdout(&removed).contains("removed from jiwoo"), "{}", stdout(&removed));
    let again = dolbom(&["tag", "remove", UNKNOWN_CARD, "--config", c]);
    assert!(!again.status.success() && stderr(&again).contains("not enrolled for anyone"), "{}", stderr(&again));
    let cleared = dolbom(&["pin", "clear", "jiwoo", "--config", c]);
    assert!(cleared.status.success() && stdout(&cleared).contains("PIN removed"), "{}", stdout(&cleared));

    // Removing the person takes their tags with them: the card is free again.
    let gone = dolbom(&["gallery", "remove", "jiwoo", "--config", c]);
    assert!(gone.status.success(), "{}", stderr(&gone));
    assert_eq!(stdout(&dolbom(&["tag", "list", "--config", c])), "");
    let reuse = dolbom(&["tag", "add", "minji", JIWOO_CARD, "--role", "child", "--name", "김민지", "--config", c]);
    assert!(reuse.status.success(), "{}", stderr(&reuse));
}

/// Mutated reader streams in random splits: the decoder never panics, never holds a frame's
/// worth of bytes, and accounts for every byte (taken in a frame or counted as skipped).
#[test]
fn fuzz_the_reader_decoder() {
    use dolbom_kiosk::sim::thermal::Rng;
    let secs: u64 = std::env::var("DOLBOM_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let cards: Vec<CardId> =
        [JIWOO_CARD, UNKNOWN_CARD, "100086F444"].iter().map(|c| c.parse().expect("card")).collect();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut cases, mut emitted) = (0u64, 0u64);
    while Instant::now() < deadline {
        let seed = 0xA5A5_5A5A_1234_5678u64 ^ cases;
        let mut rng = Rng::new(seed);
        let mut input = Vec::new();
        for _ in 0..1 + (rng.next_f64() * 8.0) as usize {
            let mut f =
                dolbom_kiosk::sources::tag::rdm6300::encode(&cards[(rng.next_f64() * 3.0) as usize % 3]).to_vec();
            match (rng.next_f64() * 5.0) as u32 {
                0 => {}
                1 => f.truncate((rng.next_f64() * 14.0) as usize),
                2 => {
                    let at = (rng.next_f64() * 14.0) as usize % 14;
                    f[at] ^= 1 << ((rng.next_f64() * 8.0) as u32 % 8);
                }
                3 => f = (0..(rng.next_f64() * 40.0) as usize).map(|_| (rng.next_f64() * 256.0) as u8).collect(),
                _ => f.insert((rng.next_f64() * 14.0) as usize, 0x02),
            }
            input.extend(f);
        }
        let mut d = Rdm6300::default();
        let mut out = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = (1 + (rng.next_f64() * 20.0) as usize).min(rest.len());
            d.feed(&rest[..n], &mut out);
            rest = &rest[n..];
            assert!(d.buffered() < 14, "seed {seed:#x}");
        }
        let s = d.stats();
        assert_eq!(s.bytes_skipped as usize + d.buffered() + 14 * out.len(), input.len(), "seed {seed:#x}");
        emitted += out.len() as u64;
        cases += 1;
    }
    assert!(cases > 100 && emitted > 0, "{cases} cases, {emitted} cards");
}

/// The check-in threads stop with the vision stage: a kiosk with a reader and a PIN input still
/// ends by itself at the end of its file (`camera.at_end = "exit"`), and removes its socket.
#[test]
fn a_kiosk_with_a_reader_and_a_pin_input_still_stops_at_the_end_of_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pty = open_pty().expect("pty");
    let extra = format!("\n[tag]\nport = \"{}\"\n\n[pin]\nenabled = true\n{}", pty.slave_path, pepper_file(dir.path()));
    let clip = empty_clip(dir.path());
    let center = unique_center("tagexit");
    let config = kiosk_config(
        dir.path(),
        &KioskOptions {
            center: &center,
            port: system_broker_port(),
            clip: &clip,
            pace: "fast",
            at_end: "exit",
            mqtt: "",
            extra: &extra,
        },
    );
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    let status = common::kiosk::wait_exit(&mut kiosk, 60, &log);
    assert!(status.success(), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert!(!dir.path().join("state/pin.sock").exists(), "the socket is removed at the end");
}

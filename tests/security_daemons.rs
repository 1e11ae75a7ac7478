//! Locks on the door with the real daemons: `dolbom kiosk` and `dolbom relay` against a real
//! Mosquitto with TLS (certificates made here), a password file and the shipped ACLs, each
//! daemon logging in as its own user with a 0600 password file and `[mqtt.tls] ca_file`; and a
//! staff client that signs commands with `dolbom_contract::signed` and sends them over the same
//! broker as a `staff@CENTER@NAME` user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::broker::signal;
use common::gateway::Gateway;
use common::kiosk::{clip, kiosk_config, spawn_kiosk, wait_exit, KioskOptions};
use common::tls::TlsBroker;
use common::{photo, wait_until};
use dolbom_contract::signed;
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};
use dolbom_mqtt::{BrokerConfig, Outgoing5, Protocol, Session, SessionEvent};

const CENTER: &str = "haessal";
const FLEET: &str = "kiosk haessal door-1\nkiosk haessal door-2\nrelay district\nstaff office haessal\n";
const USERS: [&str; 4] = ["kiosk@haessal@door-1", "kiosk@haessal@door-2", "relay@district", "staff@haessal@office"];

#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    payload: serde_json::Value,
    retained: bool,
}

/// A broker's acknowledgement of one publish: ok, and the v5 reason when not.
type Ack = (bool, Option<String>);

/// An MQTT client of the test (a staff console, or a stolen kiosk password) on its own thread:
/// records what it receives and every acknowledgement of what it publishes.
struct Client {
    messages: Arc<Mutex<Vec<Msg>>>,
    acks: Arc<Mutex<Vec<Ack>>>,
    outgoing: tokio::sync::mpsc::UnboundedSender<Outgoing5>,
    stop: Arc<AtomicBool>,
}

impl Client {
    fn start(config: BrokerConfig, filters: &[String]) -> Self {
        let messages: Arc<Mutex<Vec<Msg>>> = Arc::default();
        let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let subscribed = Arc::new(AtomicBool::new(false));
        let (outgoing, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing5>();
        let (m, a, s, sub, filters) =
            (messages.clone(), acks.clone(), stop.clone(), subscribed.clone(), filters.to_vec());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                // v5, so the broker's reason for refusing a publish comes back to us.
                let mut session = Session::new(Protocol::V5, &config.connect_options("test"));
                let mut pending = filters.len();
                if pending == 0 {
                    sub.store(true, Ordering::Relaxed);
                }
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while !s.load(Ordering::Relaxed) {
                    tokio::select! {
                        ev = session.poll() => match ev {
                            Ok(SessionEvent::Connected) => {
                                for f in &filters {
                                    session.subscribe(f).expect("subscribe");
                                }
                            }
                            Ok(SessionEvent::Subscribed { refused }) => {
                                assert_eq!(refused, 0, "the ACL refused a subscription of {filters:?}");
                                pending = pending.saturating_sub(1);
                                if pending == 0 {
                                    sub.store(true, Ordering::Relaxed);
                                }
                            }
                            Ok(SessionEvent::Message { topic, payload, retain, .. }) => {
                                let payload = serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null);
                                m.lock().expect("messages").push(Msg { topic, payload, retained: retain });
                            }
                            Ok(SessionEvent::Acked { ok, reason, .. }) => a.lock().expect("acks").push((ok, reason)),
                            Ok(_) => {}
                            Err(e) => panic!("the test's MQTT client lost its connection: {e}"),
                        },
                        Some(out) = rx.recv() => session.publish(&out).expect("publish"),
                        _ = tick.tick() => {}
                    }
                }
            });
        });
        wait_until("the test client's subscriptions", Duration::from_secs(10), || subscribed.load(Ordering::Relaxed));
        Client { messages, acks, outgoing, stop }
    }

    /// Publishes (QoS 1) and returns the broker's acknowledgement: ok, and the v5 reason if not.
    fn publish(&self, topic: &str, payload: &[u8]) -> Ack {
        let before = self.acks.lock().expect("acks").len();
        self.outgoing
            .send(Outgoing5 {
                topic: topic.into(),
                payload: payload.to_vec(),
                retain: false,
                expiry_secs: None,
                user_properties: Vec::new(),
            })
            .expect("client running");
        wait_until("PUBACK", Duration::from_secs(10), || self.acks.lock().expect("acks").len() > before);
        self.acks.lock().expect("acks")[before].clone()
    }

    fn snapshot(&self) -> Vec<Msg> {
        self.messages.lock().expect("messages").clone()
    }

    fn on(&self, suffix: &str) -> Vec<Msg> {
        self.snapshot().into_iter().filter(|m| m.topic.ends_with(suffix)).collect()
    }

    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&[Msg]) -> bool) {
        let until = Instant::now() + timeout;
        while !pred(&self.snapshot()) {
            assert!(Instant::now() < until, "timed out waiting for {what}; received: {:#?}", self.snapshot());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Enrols Obama as a child (so the relay texts his guardian), Biden as staff.
fn enrol_child(config: &Path) {
    let c = config.to_str().expect("utf-8");
    for (id, role, photos) in [
        ("obama", "child", &["face_recognition/obama.jpg", "face_recognition/obama2.jpg"][..]),
        ("biden", "staff", &["face_recognition/biden.jpg"][..]),
    ] {
        if role == "child" {
            common::consent(config, id);
        }
        let paths: Vec<String> = photos.iter().map(|p| photo(p).display().to_string()).collect();
        let mut args = vec!["enroll", "--config", c, "--person", id, "--role", role, "--name", id];
        args.extend(paths.iter().map(String::as_str));
        let out = common::dolbom(&args);
        assert!(out.status.success(), "enrol {id}: {}", common::stderr(&out));
    }
}

/// A daemon that is stopped when the test ends, also when it fails half-way.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            signal(self.0.id(), "TERM");
            let _ = self.0.wait();
        }
    }
}

fn spawn_relay(config: &Path, log: &Path) -> Stopped {
    let child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["relay", "--config"])
        .arg(config)
        .env("DOLBOM_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn relay");
    wait_until("the relay's subscription", Duration::from_secs(20), || {
        std::fs::read_to_string(log).unwrap_or_default().contains("subscribed")
    });
    Stopped(child)
}

fn attendance(event_id: &str, kiosk: &str, kind: &str) -> Vec<u8> {
    let ts = dolbom_contract::rfc3339(jiff::Timestamp::now(), &jiff::tz::TimeZone::get("Asia/Seoul").expect("tz"));
    serde_json::json!({
        "schema": "dolbom.attendance/1", "event_id": event_id, "center": CENTER, "kiosk": kiosk,
        "ts": ts, "kind": kind, "person": {"id": "obama", "role": "child"}, "confidence": 0.8,
        "temperature_c": null, "temperature_status": "screening_off", "method": "face",
    })
    .to_string()
    .into_bytes()
}

/// The kiosk and the relay over TLS with their own users: the kiosk's arrival is texted once.
/// Then door-1's password publishes an arrival under door-2's root: the broker refuses it
/// (v5 PUBACK "NotAuthorized") and the relay texts nothing for it.
#[test]
fn kiosk_and_relay_over_tls_and_a_stolen_kiosk_password_texts_nobody() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir(&broker_dir).expect("broker dir");
    let broker = TlsBroker::start(&broker_dir, FLEET, &USERS);

    // The relay: guardian of Obama (enrolled as a child) at 010-1234-5678.
    let gw = Gateway::start();
    std::fs::write(
        dir.path().join("directory.toml"),
        format!(
            "[[center]]\nid = \"{CENTER}\"\nname = \"햇살어린이집\"\nsender = \"02-123-4567\"\ntimezone = \"Asia/Seoul\"\n\n\
             [[child]]\nid = \"obama\"\ncenter = \"{CENTER}\"\nname = \"김민지\"\n\n\
             [[child.guardian]]\nname = \"mom\"\nphone = \"010-1234-5678\"\nlang = \"ko\"\n"
        ),
    )
    .expect("directory");
    let relay_config = dir.path().join("relay.toml");
    std::fs::write(
        &relay_config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"relay-district\"\nreconnect_initial_ms = 100\nreconnect_max_ms = 500\n{login}\n\
             [relay]\ntopics = [\"dolbom/v1/{CENTER}/+/event/attendance\"]\ndatabase = \"relay.db\"\ndirectory = \"directory.toml\"\n\
             retry_initial_ms = 200\nretry_max_ms = 1000\nmax_attempts = 5\n\n\
             [provider]\nkind = \"webhook\"\nurl = \"{url}/send\"\n",
            port = broker.port,
            login = broker.login_toml("relay@district"),
            url = gw.url(),
        ),
    )
    .expect("relay config");
    let relay_log = dir.path().join("relay.log");
    let _relay = spawn_relay(&relay_config, &relay_log);

    // The kiosk as door-1, on the walk-up clip.
    let kiosk_dir = dir.path().join("kiosk");
    std::fs::create_dir(&kiosk_dir).expect("kiosk dir");
    let login = broker.login_toml("kiosk@haessal@door-1");
    let config = kiosk_config(
        &kiosk_dir,
        &KioskOptions {
            center: CENTER,
            port: broker.port,
            clip: clip(),
            pace: "fast",
            at_end: "exit",
            mqtt: &login,
            extra: "",
        },
    );
    enrol_child(&config);
    let log = kiosk_dir.join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    let status = wait_exit(&mut kiosk, 180, &log);
    let kiosk_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit status {status}; log:\n{kiosk_log}");
    assert!(kiosk_log.contains("connected to broker"), "{kiosk_log}");
    assert!(
        !kiosk_log.contains("broker refused") && !kiosk_log.contains("could not subscribe"),
        "the ACL let the kiosk do all it does:\n{kiosk_log}"
    );
    // Every event acknowledged as taken (a v5 "NotAuthorized" would not count).
    let out = common::dolbom(&["status", "--config", config.to_str().expect("utf-8")]);
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    // Three events and the roster (the ACL lets the kiosk write it).
    assert_eq!(printed["health"]["events_published"], 4, "{printed}");

    let to_mom = |gw: &Gateway| -> Vec<String> {
        gw.received()
            .iter()
            .filter(|r| r.body["to"] == "01012345678")
            .map(|r| r.body["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    wait_until("the text for the kiosk's arrival", Duration::from_secs(30), || !to_mom(&gw).is_empty());
    let texts = to_mom(&gw);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("김민지 어린이가") && texts[0].contains("등원했습니다"), "{texts:?}");

    // Door-1's password, stolen: an arrival under door-2's root. The broker drops it and says so
    // to a v5 client (a v3.1.1 client gets a plain PUBACK and no sign of it).
    let stolen =
        Client::start(broker.config("kiosk@haessal@door-1", &common::tls::tls("ca.crt", common::tls::NAME)), &[]);
    let forged = stolen.publish(
        &format!("dolbom/v1/{CENTER}/door-2/event/attendance"),
        &attendance("01a00000-0000-7000-8000-0000000000f0", "door-2", "departure"),
    );
    assert_eq!(forged, (false, Some("NotAuthorized".into())), "the broker refuses door-1 under door-2's root");
    // Then, on the same connection, a departure under door-1's own root (which its ACL allows):
    // it reaches the relay after anything published before it, and one guardian's texts keep
    // their order, so once its text is in, a text for the forged event would be in too.
    let own = stolen.publish(
        &format!("dolbom/v1/{CENTER}/door-1/event/attendance"),
        &attendance("01a00000-0000-7000-8000-0000000000f1", "door-1", "departure"),
    );
    assert_eq!(own, (true, None));
    wait_until("the text for door-1's departure", Duration::from_secs(30), || to_mom(&gw).len() >= 2);
    let texts = to_mom(&gw);
    assert_eq!(texts.len(), 2, "nothing for the forged event: {texts:?}");
    assert!(texts[1].contains("하원했습니다"), "{texts:?}");
    let relay_text = std::fs::read_to_string(&relay_log).unwrap_or_default();
    assert!(!relay_text.contains("0000000000f0"), "the forged event never reached the relay:\n{relay_text}");
    // The relay keeps numbers as digits (01012345678): no form of the middle four may show.
    for full in ["01012345678", "1234-5678", "12345678"] {
        assert!(!relay_text.contains(full), "`{full}` in the relay's log, numbers are masked:\n{relay_text}");
    }
    assert!(relay_text.contains("010-****-5678"), "the delivery is logged with its masked number:\n{relay_text}");
}

/// The key the office signs with, in a 0600 file.
fn key_file(dir: &Path) -> (PathBuf, Vec<u8>) {
    let key = b"5f1c0e7a9b2d4c6e8f0a1b3c5d7e9f10".to_vec();
    let file = dir.join("office.key");
    std::fs::write(&file, &key).expect("key");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (file, key)
}

/// Results on `cmd/result` so far.
fn results(c: &Client) -> Vec<serde_json::Value> {
    c.on("/cmd/result").into_iter().map(|m| m.payload).collect()
}

/// A running fever kiosk with `[commands] keys`, commands sent by the office over TLS as
/// `staff@haessal@office`: a signed silence works once; its replay, an expired one, a forged one
/// and an unsigned one are refused with their reasons; the alert stays silenced, the daemon runs;
/// and the nonce is still spent after a restart.
#[test]
fn signed_commands_against_a_running_kiosk_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir(&broker_dir).expect("broker dir");
    let broker = TlsBroker::start(&broker_dir, FLEET, &USERS);

    // The fever scene of tests/fever.rs, with one person: Obama at 38.2 degC, looping.
    let people = vec![Walker { photo: photo("face_recognition/obama.jpg"), skin_c: 38.2, far: false }];
    let scene = WalkUp { width: 640, height: 480, fps: 10.0, approach_secs: 2.0, stay_secs: 1.5, gap_secs: 1.0 };
    let clip = dir.path().join("clip.avi");
    write_walk_up(&clip, &people, scene).expect("clip");
    let thermal_link = dir.path().join("thermal0");
    let (key_path, key) = key_file(dir.path());
    let extra = format!(
        "\n[thermal]\ndevice = \"gy-mcu90640\"\nport = \"{}\"\n\n[fever]\nenabled = true\nstaff = [\"kim\"]\n\n\
         [commands]\n[[commands.keys]]\nid = \"office\"\nfile = \"{}\"\n",
        thermal_link.display(),
        key_path.display()
    );
    let login = broker.login_toml("kiosk@haessal@door-1");
    let config = kiosk_config(
        dir.path(),
        &KioskOptions {
            center: CENTER,
            port: broker.port,
            clip: &clip,
            pace: "realtime",
            at_end: "loop",
            mqtt: &login,
            extra: &extra,
        },
    );
    common::kiosk::enrol(&config);
    // The sensor keeps streaming (the doorway, once the walker has gone) across the restart.
    common::kiosk::thermal_sensor_with(dir.path(), &config, people, scene, 11, Some(Duration::from_secs(900)));

    let root = format!("dolbom/v1/{CENTER}/door-1");
    let office = Client::start(
        broker.config("staff@haessal@office", &common::tls::tls("ca.crt", common::tls::NAME)),
        &[format!("{root}/cmd/result"), format!("{root}/alert/#"), format!("{root}/status")],
    );
    let log = dir.path().join("kiosk.log");
    let mut kiosk = Stopped(spawn_kiosk(&config, &log));

    office.wait_for("the fever alert", Duration::from_secs(90), |m| m.iter().any(|r| r.topic.contains("/alert/")));
    let alert = office.snapshot().into_iter().find(|r| r.topic.contains("/alert/")).expect("alert");
    assert_eq!(alert.payload["state"], "active");
    let alert_id = alert.payload["alert_id"].as_str().expect("alert id").to_string();
    let alert_states = |c: &Client| -> Vec<String> {
        c.snapshot()
            .iter()
            .filter(|m| m.topic.ends_with(&format!("/alert/{alert_id}")))
            .map(|m| m.payload["state"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    let silence = format!("{root}/cmd/silence");
    let body = |request_id: &str| format!(r#"{{"alert_id":"{alert_id}","by":"kim","request_id":"{request_id}"}}"#);
    let now = || jiff::Timestamp::now().as_millisecond();
    let wire = |s: signed::SignedCommand| serde_json::to_vec(&s).expect("json");
    // Sends one command and returns its answer (commands are answered in order).
    let send = |payload: &[u8]| -> serde_json::Value {
        let n = results(&office).len();
        assert_eq!(office.publish(&silence, payload), (true, None), "the office may send commands");
        office.wait_for("the command's result", Duration::from_secs(20), |m| {
            m.iter().filter(|r| r.topic.ends_with("/cmd/result")).count() > n
        });
        results(&office)[n].clone()
    };

    let valid = wire(signed::sign(&key, "office", &silence, &body("s1"), now(), "nonce-s1-0001"));
    let r = send(&valid);
    assert_eq!(
        (r["ok"].as_bool(), r["state"].as_str(), r["request_id"].as_str()),
        (Some(true), Some("silenced"), Some("s1")),
        "{r}"
    );
    office.wait_for("the silenced alert", Duration::from_secs(10), |_| {
        alert_states(&office).last().map(String::as_str) == Some("silenced")
    });

    let refusals = [
        ("replayed", valid.clone()),
        ("expired", wire(signed::sign(&key, "office", &silence, &body("s2"), now() - 600_000, "nonce-s2-0001"))),
        (
            "bad signature",
            wire(signed::sign(
                b"not the office's key, 32 bytes!!",
                "office",
                &silence,
                &body("s3"),
                now(),
                "nonce-s3-0001",
            )),
        ),
        ("unsigned", body("s4").into_bytes()),
    ];
    for (reason, payload) in &refusals {
        let r = send(payload);
        assert_eq!(r["ok"], false, "{reason}: {r}");
        assert!(r["error"].as_str().unwrap_or_default().starts_with(reason), "{reason}: {r}");
        assert!(r.get("state").is_none_or(|s| s.is_null()), "{reason} changed nothing: {r}");
    }
    // The refusals left the alert silenced, and the daemon runs and reports.
    assert!(alert_states(&office).iter().skip(1).all(|s| s == "silenced"), "{:?}", alert_states(&office));
    let statuses = office.on("/status").len();
    office.wait_for("a status after the refusals", Duration::from_secs(10), |m| {
        m.iter().filter(|r| r.topic.ends_with("/status")).count() > statuses + 1
    });
    assert!(office.on("/status").last().is_some_and(|s| s.payload["state"] == "online"));
    assert!(kiosk.0.try_wait().expect("try_wait").is_none(), "the kiosk is still running");
    let out = common::dolbom(&["alerts", "list", "--config", config.to_str().expect("utf-8")]);
    assert!(common::stdout(&out).contains("\"state\":\"silenced\""), "{}", common::stdout(&out));

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let audit: Vec<&str> = text.lines().filter(|l| l.contains("audit")).collect();
    assert!(audit.iter().any(|l| l.contains("staff command admitted") && l.contains("office")), "{audit:#?}");
    for code in ["replayed", "expired", "bad-signature", "unsigned"] {
        assert!(audit.iter().any(|l| l.contains("staff command refused") && l.contains(code)), "{code}: {audit:#?}");
    }

    // A restart: the first command's nonce is still spent.
    let offline_at = office.snapshot().len();
    signal(kiosk.0.id(), "TERM");
    assert!(wait_exit(&mut kiosk.0, 30, &log).success());
    let log2 = dir.path().join("kiosk2.log");
    let mut kiosk = Stopped(spawn_kiosk(&config, &log2));
    // The kiosk subscribes to its commands right after its "online" status, on the same
    // connection; the broker has the subscription once it forwards the next status.
    // (Counted after the first kiosk's "offline", so its last periodic status is not one of them.)
    office.wait_for("two statuses from the restarted kiosk", Duration::from_secs(60), |m| {
        let statuses: Vec<&Msg> = m[offline_at..].iter().filter(|r| r.topic.ends_with("/status")).collect();
        let after =
            statuses.iter().position(|r| r.payload["state"] == "offline").map_or(&[][..], |i| &statuses[i + 1..]);
        after.iter().filter(|r| r.payload["state"] == "online").count() >= 2
    });
    let r = send(&valid);
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["error"].as_str().unwrap_or_default().starts_with("replayed"), "{r}");
    assert_eq!(r["request_id"], "s1", "a replay's signature held: its ids are repeated");
    let late = Client::start(
        broker.config("staff@haessal@office", &common::tls::tls("ca.crt", common::tls::NAME)),
        &[format!("{root}/alert/{alert_id}")],
    );
    late.wait_for("the retained alert", Duration::from_secs(10), |m| !m.is_empty());
    let retained = &late.snapshot()[0];
    assert!(retained.retained);
    assert_eq!(retained.payload["state"], "silenced");
    let text2 = std::fs::read_to_string(&log2).unwrap_or_default();
    assert!(
        text2.lines().any(|l| l.contains("audit") && l.contains("staff command refused") && l.contains("replayed")),
        "{text2}"
    );
    signal(kiosk.0.id(), "TERM");
    assert!(wait_exit(&mut kiosk.0, 30, &log2).success());
}

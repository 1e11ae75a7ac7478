//! The relay end to end: real Mosquitto, the real `dolbom relay` binary, and a real HTTP server
//! on loopback playing the SMS gateway (recording every request, failing on demand).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::{publish, signal, system_broker_port};
use common::gateway::{Gateway, Reply};
use common::postgres::TempDb;
use common::tcp_proxy::Proxy;
use common::wait_until;

struct Relay {
    /// Holds the relay's files for the test's length.
    _dir: tempfile::TempDir,
    center: String,
    config: PathBuf,
    log: PathBuf,
    /// The directory file, and what the test wrote into it first.
    directory: PathBuf,
    directory_text: String,
}

/// Where a test relay keeps its records, and anything else its `[relay]` section needs.
struct Setup<'a> {
    /// `None`: its own SQLite file. `Some`: a relay of a group sharing this PostgreSQL database.
    shared: Option<Shared<'a>>,
    relay_extra: &'a str,
}

struct Shared<'a> {
    postgres: &'a str,
    instance: &'a str,
    /// The center (and group) of the relays already started; `None` for the first.
    center: Option<&'a str>,
    /// In an MQTT shared-subscription group (the broker splits the events), or each relay
    /// taking in every event (the store splits them).
    group: bool,
}

impl Relay {
    fn new(provider: &str, extra_directory: &str) -> Self {
        Self::with(provider, extra_directory, Setup { shared: None, relay_extra: "" })
    }

    fn with(provider: &str, extra_directory: &str, setup: Setup<'_>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let center = match setup.shared.as_ref().and_then(|s| s.center) {
            Some(c) => c.to_string(),
            None => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("relay{}x{n}t{}", std::process::id(), jiff::Timestamp::now().as_millisecond())
            }
        };
        let (client_id, store) = match &setup.shared {
            None => (format!("relay-{center}"), "database = \"relay.db\"".to_string()),
            Some(s) => (
                format!("relay-{center}-{}", s.instance),
                format!(
                    "{}{}",
                    common::postgres::relay_keys(s.postgres, dir.path()),
                    if s.group { format!("share_group = \"g-{center}\"") } else { String::new() }
                ),
            ),
        };
        let relay_extra = setup.relay_extra;
        let directory = format!(
            r#"
[[center]]
id = "{center}"
name = "햇살어린이집"
sender = "02-123-4567"
timezone = "Asia/Seoul"
{extra_directory}

[[child]]
id = "minji"
center = "{center}"
name = "김민지"

[[child.guardian]]
name = "mom"
phone = "010-1234-5678"
lang = "ko"

[[child.guardian]]
name = "dad"
phone = "010-8765-4321"
lang = "en"
notify = ["departure"]

[[child]]
id = "jiwoo"
center = "{center}"
name = "박지우"

[[child.guardian]]
name = "grandma"
phone = "010-0000-1111"
"#
        );
        let provider = &secrets_to_files(provider, dir.path());
        let directory_path = dir.path().join("directory.toml");
        std::fs::write(&directory_path, &directory).expect("directory");
        let config = dir.path().join("relay.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "{client_id}"
reconnect_initial_ms = 100
reconnect_max_ms = 500
{tls}

[relay]
topics = ["dolbom/v1/{center}/+/event/attendance"]
{store}
directory = "directory.toml"
retry_initial_ms = 200
retry_max_ms = 1000
max_attempts = 5
{relay_extra}

[provider]
{provider}
"#,
                port = system_broker_port(),
                tls = common::broker::tls_toml(),
            ),
        )
        .expect("config");
        let log = dir.path().join("relay.log");
        Relay { _dir: dir, center, config, log, directory: directory_path, directory_text: directory }
    }

    fn spawn(&self) -> Child {
        self.spawn_as(Command::new(env!("CARGO_BIN_EXE_dolbom")))
    }

    /// Starts the relay through `cmd` (the binary itself, or a tracer in front of it).
    fn spawn_as(&self, mut cmd: Command) -> Child {
        let subscribed = |log: &str| log.matches("subscribed").count();
        let before = subscribed(&std::fs::read_to_string(&self.log).unwrap_or_default());
        let child = cmd
            .args(["relay", "--config"])
            .arg(&self.config)
            .env("DOLBOM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log"))
            .spawn()
            .expect("spawn relay");
        // Wait until the broker has acknowledged this start's subscription (its session then
        // queues whatever we publish); the log is appended to across restarts.
        let until = Instant::now() + Duration::from_secs(20);
        while subscribed(&std::fs::read_to_string(&self.log).unwrap_or_default()) <= before {
            assert!(
                Instant::now() < until,
                "relay did not connect:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn event(&self, event_id: &str, kind: &str, child: &str, role: &str, ts: jiff::Timestamp, temp: Option<f32>) {
        let ts = dolbom_contract::rfc3339(ts, &jiff::tz::TimeZone::get("Asia/Seoul").expect("tz"));
        let payload = serde_json::json!({
            "schema": "dolbom.attendance/1", "event_id": event_id, "center": self.center, "kiosk": "door-1",
            "ts": ts, "kind": kind, "person": {"id": child, "role": role}, "confidence": 0.8,
            "temperature_c": temp, "temperature_status": if temp.is_some() { "normal" } else { "screening_off" }, "method": "face",
        });
        publish(
            system_broker_port(),
            &format!("dolbom/v1/{}/door-1/event/attendance", self.center),
            payload.to_string().as_bytes(),
        );
    }

    /// The first directory with `more` appended (children of this relay's center: `{center}`).
    fn rewrite_directory(&self, more: &str) {
        let text = format!("{}\n{}", self.directory_text, more.replace("{center}", &self.center));
        // Written aside and renamed in, as an editor or a deployment would: never half a file.
        let tmp = self.directory.with_extension("tmp");
        std::fs::write(&tmp, text).expect("directory");
        std::fs::rename(&tmp, &self.directory).expect("rename");
    }

    fn stderr_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_lines(&self) -> Vec<serde_json::Value> {
        let out = common::dolbom(&[
            "relay",
            "log",
            "--json",
            "--show-numbers",
            "--config",
            self.config.to_str().expect("utf-8"),
        ]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    }
}

fn hhmm(ts: jiff::Timestamp) -> String {
    let t = ts.to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Seoul").expect("tz")).time();
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[test]
fn exact_texts_to_the_right_guardians_once() {
    let gw = Gateway::start();
    let relay = Relay::new(&format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url()), "");
    let mut child = relay.spawn();
    let now = jiff::Timestamp::now();
    relay.event("01a00000-0000-7000-8000-000000000001", "arrival", "minji", "child", now, Some(36.5));
    relay.event("01a00000-0000-7000-8000-000000000001", "arrival", "minji", "child", now, Some(36.5)); // redelivered
    relay.event("01a00000-0000-7000-8000-000000000002", "departure", "minji", "child", now, None);
    relay.event("01a00000-0000-7000-8000-000000000003", "arrival", "teacher-kim", "staff", now, None);
    relay.event("01a00000-0000-7000-8000-000000000004", "arrival", "nobody", "child", now, None);
    wait_until("three texts", Duration::from_secs(20), || gw.received().len() >= 3);
    std::thread::sleep(Duration::from_secs(1));
    signal(child.id(), "TERM");
    let _ = child.wait();

    // Texts to different guardians may overtake each other; one guardian's keep their order.
    let mut texts: Vec<(String, String, String)> = gw
        .received()
        .iter()
        .map(|r| {
            (
                r.body["to"].as_str().unwrap_or("").into(),
                r.body["text"].as_str().unwrap_or("").into(),
                r.body["type"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    texts.sort_by(|a, b| a.0.cmp(&b.0));
    let t = hhmm(now);
    assert_eq!(
        texts,
        [
            (
                "01012345678".into(),
                format!("[햇살어린이집] 김민지 어린이가 {t}에 등원했습니다. (체온 36.5℃)"),
                "SMS".into()
            ),
            ("01012345678".into(), format!("[햇살어린이집] 김민지 어린이가 {t}에 하원했습니다."), "SMS".into()),
            ("01087654321".into(), format!("[햇살어린이집] 김민지 left at {t}."), "SMS".into()),
        ]
    );
    let received = gw.received();
    let first = received
        .iter()
        .find(|r| r.body["type"] == "SMS" && r.body["text"].as_str().is_some_and(|t| t.contains("등원")))
        .expect("the arrival");
    assert_eq!(first.path, "/send");
    assert_eq!(first.body["from"], "021234567");
    assert_eq!(first.header("Idempotency-Key"), Some("01a00000-0000-7000-8000-000000000001:01012345678"));
    let log = relay.log_lines();
    assert_eq!(log.iter().filter(|l| l["status"] == "sent").count(), 3);
    // Without --show-numbers, `relay log` masks the numbers as the relay's own log does.
    let c = relay.config.to_str().expect("utf-8");
    for args in [&["relay", "log", "--config", c][..], &["relay", "log", "--json", "--config", c]] {
        let out = common::dolbom(args);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let text = common::stdout(&out);
        assert!(text.contains("010-****-5678") && !text.contains("01012345678"), "{args:?}: {text}");
    }
}

#[test]
fn retries_5xx_429_and_timeouts_but_not_a_400() {
    let gw = Gateway::start();
    // minji's arrival: 500, 429 (Retry-After 1 s), a reply slower than the 1 s timeout, then 200.
    gw.script([
        Reply::status(500),
        Reply { retry_after: Some(1), ..Reply::status(429) },
        Reply { delay: Duration::from_millis(2500), ..Reply::ok() },
        Reply::ok(),
        // jiwoo's arrival: a bad number.
        Reply { body: r#"{"error":"invalid recipient"}"#.into(), ..Reply::status(400) },
    ]);
    let relay = Relay::new(&format!("kind = \"webhook\"\nurl = \"{}/send\"\ntimeout_ms = 1000", gw.url()), "");
    let mut child = relay.spawn();
    let now = jiff::Timestamp::now();
    relay.event("01a00000-0000-7000-8000-0000000000a1", "arrival", "minji", "child", now, None);
    wait_until("four attempts", Duration::from_secs(30), || gw.received().len() >= 4);
    let retry_after_gap = {
        let log = std::fs::read_to_string(&relay.log).unwrap_or_default();
        log.contains("retry_in_ms=1000")
    };
    relay.event("01a00000-0000-7000-8000-0000000000a2", "arrival", "jiwoo", "child", now, None);
    wait_until("the 400", Duration::from_secs(20), || gw.received().len() >= 5);
    std::thread::sleep(Duration::from_secs(2));
    signal(child.id(), "TERM");
    let _ = child.wait();
    assert_eq!(gw.received().len(), 5, "no retry after the 400");
    assert!(retry_after_gap, "Retry-After: 1 was honoured");
    let log = relay.log_lines();
    let minji = log.iter().find(|l| l["child"] == "minji").expect("minji");
    assert_eq!(minji["status"], "sent");
    assert_eq!(minji["attempts"], 4);
    let jiwoo = log.iter().find(|l| l["child"] == "jiwoo").expect("jiwoo");
    assert_eq!(jiwoo["status"], "failed");
    assert!(jiwoo["detail"].as_str().unwrap_or("").contains("HTTP 400"), "{jiwoo}");
}

#[test]
fn stale_events_are_recorded_not_sent() {
    let gw = Gateway::start();
    let relay = Relay::new(&format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url()), "");
    let mut child = relay.spawn();
    let morning = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(5)).expect("ts");
    relay.event("01a00000-0000-7000-8000-0000000000b1", "arrival", "minji", "child", morning, None);
    wait_until("the stale record", Duration::from_secs(20), || {
        relay.log_lines().iter().any(|l| l["status"] == "stale")
    });
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "TERM");
    let _ = child.wait();
    assert!(gw.received().is_empty());
}

#[test]
fn killed_mid_send_and_restarted_never_texts_twice() {
    let gw = Gateway::start();
    gw.script([Reply { delay: Duration::from_secs(4), ..Reply::ok() }]);
    let relay = Relay::new(&format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url()), "");
    let mut child = relay.spawn();
    relay.event("01a00000-0000-7000-8000-0000000000c1", "arrival", "minji", "child", jiff::Timestamp::now(), None);
    wait_until("the request to reach the gateway", Duration::from_secs(20), || !gw.received().is_empty());
    signal(child.id(), "KILL");
    let _ = child.wait();
    let mut again = relay.spawn();
    std::thread::sleep(Duration::from_secs(3));
    signal(again.id(), "TERM");
    let _ = again.wait();
    assert_eq!(gw.received().len(), 1, "the interrupted text was not sent again");
    let log = relay.log_lines();
    assert_eq!(log[0]["status"], "unknown", "{log:?}");
    assert!(std::fs::read_to_string(&relay.log).unwrap_or_default().contains("not re-sent"));
}

#[test]
fn solapi_and_nhn_requests_and_lms_for_long_texts() {
    let long = "[center.templates]\n\"ko.arrival\" = \"{name} 어린이가 {time}에 등원했습니다. 오늘은 현장학습이 있으니 도시락과 물병, 모자를 꼭 챙겨 주세요. 감사합니다.\"";
    // Solapi, whose double refuses a signature date its SDKs would not write.
    let gw = Gateway::solapi("SECRET");
    gw.answer_by_default(solapi_answer("2000"));
    let relay = Relay::new(
        &format!("kind = \"solapi\"\nbase_url = \"{}\"\napi_key = \"KEY\"\napi_secret = \"SECRET\"", gw.url()),
        long,
    );
    let mut child = relay.spawn();
    relay.event("01a00000-0000-7000-8000-0000000000d1", "arrival", "minji", "child", jiff::Timestamp::now(), None);
    relay.event("01a00000-0000-7000-8000-0000000000d2", "departure", "minji", "child", jiff::Timestamp::now(), None);
    wait_until("solapi requests", Duration::from_secs(20), || gw.received().len() >= 3);
    signal(child.id(), "TERM");
    let _ = child.wait();
    let received = gw.received();
    let r = received.iter().find(|r| r.body["message"]["type"] == "LMS").expect("the long arrival");
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/messages/v4/send"));
    let auth = r.header("Authorization").expect("auth");
    let field =
        |name: &str| auth.split([' ', ',']).find_map(|p| p.strip_prefix(&format!("{name}="))).expect(name).to_string();
    assert!(auth.starts_with("HMAC-SHA256 apiKey=KEY, date="), "{auth}");
    assert_eq!(field("signature"), dolbom_relay::provider::solapi_signature("SECRET", &field("date"), &field("salt")));
    assert_eq!(r.body["message"]["type"], "LMS", "{}", r.body);
    assert_eq!(r.body["message"]["subject"], "[햇살어린이집] 알림");
    assert_eq!(r.body["message"]["to"], "01012345678");
    assert_eq!(r.body["message"]["from"], "021234567");
    assert_eq!(received.iter().filter(|r| r.body["message"]["type"] == "SMS").count(), 2, "the departures");
    let log = relay.log_lines();
    assert!(log.len() == 3 && log.iter().all(|l| l["status"] == "sent"), "the double took every request: {log:?}");
    // The daemon's own log names guardians by masked numbers and never shows the gateway secret.
    let stderr = relay.stderr_log();
    assert!(stderr.contains("010-****-5678") && stderr.contains("010-****-4321"), "masked numbers: {stderr}");
    for secret in ["01012345678", "010-1234-5678", "01087654321", "SECRET"] {
        assert!(!stderr.contains(secret), "`{secret}` in the relay's log:\n{stderr}");
    }

    // NHN Cloud, whose double refuses a Content-Type without the documented charset.
    // Its secret key from a file of its own (as systemd's LoadCredential= hands it over).
    let gw = Gateway::nhn();
    gw.script([nhn_answer("01012345678", 0, "SUCCESS")]);
    let relay = Relay::new(
        &format!("kind = \"nhn\"\nbase_url = \"{}\"\napp_key = \"APP\"\nsecret_key_file = \"nhn-secret\"", gw.url()),
        long,
    );
    let secret = relay.config.with_file_name("nhn-secret");
    std::fs::write(&secret, "SK\n").expect("secret");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["relay", "--config"])
        .arg(&relay.config)
        .output()
        .expect("relay");
    assert!(!out.status.success(), "a secret every user can read is refused");
    assert!(common::stderr(&out).contains("provider.secret_key_file"), "{}", common::stderr(&out));
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let mut child = relay.spawn();
    relay.event("01a00000-0000-7000-8000-0000000000e1", "arrival", "minji", "child", jiff::Timestamp::now(), None);
    relay.event("01a00000-0000-7000-8000-0000000000e2", "departure", "jiwoo", "child", jiff::Timestamp::now(), None);
    wait_until("nhn requests", Duration::from_secs(20), || gw.received().len() >= 2);
    signal(child.id(), "TERM");
    let _ = child.wait();
    let received = gw.received();
    let r = received.iter().find(|r| r.path.ends_with("/mms")).expect("the long arrival");
    assert_eq!(r.path, "/sms/v3.0/appKeys/APP/sender/mms");
    assert_eq!(r.header("X-Secret-Key"), Some("SK"));
    assert_eq!(r.body["title"], "[햇살어린이집] 알림");
    assert_eq!(r.body["sendNo"], "021234567");
    assert_eq!(r.body["recipientList"][0]["recipientNo"], "01012345678");
    let r = received.iter().find(|r| r.body["title"].is_null()).expect("the short departure");
    assert_eq!(r.path, "/sms/v3.0/appKeys/APP/sender/sms");
    assert_eq!(r.header("Content-Type"), Some("application/json;charset=UTF-8"));
    // The default reply carries no isSuccessful: recorded as failed, not retried.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(gw.received().len(), 2);
    let log = relay.log_lines();
    assert!(
        log.iter().any(|l| l["status"] == "failed" && l["detail"].as_str().unwrap_or("").contains("NHN result")),
        "{log:?}"
    );
    // Whichever request came first got the scripted acceptance (the two guardians' texts may
    // go in either order).
    assert_eq!(log.iter().filter(|l| l["status"] == "sent").count(), 1, "{log:?}");
}

/// NHN Cloud's answer: the request taken, and `code` for the one recipient.
fn nhn_answer(to: &str, code: i64, message: &str) -> Reply {
    let body = serde_json::json!({
        "header": {"isSuccessful": true, "resultCode": 0, "resultMessage": "SUCCESS"},
        "body": {"data": {"requestId": "R1", "statusCode": "2", "senderGroupingKey": null,
            "sendResultList": [{"recipientNo": to, "resultCode": code, "resultMessage": message,
                                "recipientSeq": 1, "recipientGroupingKey": null}]}}
    });
    Reply { body: body.to_string(), ..Reply::ok() }
}

/// Solapi's answer to a single send, with the message's `statusCode`.
fn solapi_answer(code: &str) -> Reply {
    let body = serde_json::json!({"groupId": "G1", "to": "01012345678", "from": "021234567", "type": "SMS",
        "statusMessage": if code == "2000" { "정상 접수(이통사로 접수 예정) " } else { "수신거부" }, "country": "82",
        "messageId": "M1", "statusCode": code, "accountId": "1"});
    Reply { body: body.to_string(), ..Reply::ok() }
}

/// A gateway may take the request and still refuse the recipient: that text is `failed` with
/// the gateway's code and message, never `sent`.
#[test]
fn a_recipient_the_gateway_refused_is_failed_not_sent() {
    let cases: [(Gateway, String, Reply, &str); 3] = [
        (
            Gateway::nhn(),
            "kind = \"nhn\"\napp_key = \"APP\"\nsecret_key = \"SK\"".into(),
            nhn_answer("01012345678", -2003, "Invalid recipient number"),
            "-2003",
        ),
        (
            Gateway::nhn(),
            "kind = \"nhn\"\napp_key = \"APP\"\nsecret_key = \"SK\"".into(),
            nhn_answer("01012345678", -2018, "수신 거부 번호"),
            "수신 거부",
        ),
        (
            Gateway::solapi("SECRET"),
            "kind = \"solapi\"\napi_key = \"KEY\"\napi_secret = \"SECRET\"".into(),
            solapi_answer("3059"),
            "3059",
        ),
    ];
    for (gw, provider, refusal, code) in cases {
        gw.script([refusal]);
        let relay = Relay::new(&format!("{provider}\nbase_url = \"{}\"", gw.url()), "");
        let mut child = relay.spawn();
        relay.event("01a00000-0000-7000-8000-0000000002a1", "arrival", "minji", "child", jiff::Timestamp::now(), None);
        wait_until("the outcome", Duration::from_secs(20), || {
            relay
                .log_lines()
                .iter()
                .any(|l| l["status"] != "pending" && l["status"] != "claimed" && l["status"] != "sending")
        });
        signal(child.id(), "TERM");
        let _ = child.wait();
        assert_eq!(gw.received().len(), 1, "{provider}");
        let log = relay.log_lines();
        assert_eq!(log[0]["status"], "failed", "{provider}: {log:?}");
        assert!(log[0]["detail"].as_str().unwrap_or("").contains(code), "{provider}: {log:?}");
    }
}

#[test]
fn rate_limit_caps_texts_per_guardian_per_hour() {
    let gw = Gateway::start();
    let relay = Relay::with(
        &format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url()),
        "",
        Setup { shared: None, relay_extra: "rate_limit_per_hour = 2" },
    );
    let mut child = relay.spawn();
    let now = jiff::Timestamp::now();
    for i in 1..=3 {
        relay.event(&format!("01a00000-0000-7000-8000-0000000000f{i}"), "arrival", "minji", "child", now, None);
    }
    relay.event("01a00000-0000-7000-8000-0000000000f9", "arrival", "jiwoo", "child", now, None);
    wait_until("four records", Duration::from_secs(20), || {
        relay.log_lines().iter().filter(|l| l["status"] != "pending").count() >= 4
    });
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "TERM");
    let _ = child.wait();
    let to: Vec<String> = gw.received().iter().map(|r| r.body["to"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(to.iter().filter(|t| *t == "01012345678").count(), 2, "mom: two texts, the hourly cap: {to:?}");
    assert_eq!(to.iter().filter(|t| *t == "01000001111").count(), 1, "grandma is not capped by mom's texts");
    let log = relay.log_lines();
    let limited: Vec<_> = log.iter().filter(|l| l["status"] == "rate_limited").collect();
    assert_eq!(limited.len(), 1, "{log:?}");
    assert_eq!(limited[0]["to"], "01012345678");
    assert_eq!(limited[0]["event_id"], "01a00000-0000-7000-8000-0000000000f3");
}

/// Two relays on one scratch PostgreSQL database, in a share group or not, texting through one
/// gateway double (the database is returned to outlive them).
fn relay_pair(group: bool) -> (Gateway, TempDb, Relay, Relay) {
    let gw = Gateway::start();
    let db = TempDb::create();
    let pg = db.params();
    let provider = format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url());
    let setup = |instance, center| Setup {
        shared: Some(Shared { postgres: &pg, instance, center, group }),
        relay_extra: "rate_limit_per_hour = 1000",
    };
    let a = Relay::with(&provider, "", setup("a", None));
    let b = Relay::with(&provider, "", setup("b", Some(&a.center)));
    (gw, db, a, b)
}

/// Exactly `n` texts reached the gateway, no two for the same event and guardian.
fn assert_one_text_each(gw: &Gateway, n: usize) {
    let mut keys: Vec<String> =
        gw.received().iter().map(|r| r.header("Idempotency-Key").unwrap_or("").to_string()).collect();
    assert_eq!(keys.len(), n, "one text per event, no duplicate");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

#[test]
fn two_relays_share_the_load_through_postgres_without_duplicates() {
    let (gw, _db, a, b) = relay_pair(true);
    let (mut ca, mut cb) = (a.spawn(), b.spawn());
    // Every arrival once, then every one again, as kiosks resend after lost PUBACKs. The broker
    // deals the copies out among the group (an odd count makes round-robin cross them over), so
    // only the shared store can keep a second copy from becoming a second text.
    let n: usize = 41;
    let now = jiff::Timestamp::now();
    for _round in 0..2 {
        for i in 0..n {
            let child = if i.is_multiple_of(2) { "minji" } else { "jiwoo" };
            a.event(&format!("01a00000-0000-7000-8000-{i:012}"), "arrival", child, "child", now, None);
        }
    }
    wait_until("a text per event", Duration::from_secs(40), || gw.received().len() >= n);
    std::thread::sleep(Duration::from_millis(1500));
    signal(ca.id(), "TERM");
    signal(cb.id(), "TERM");
    let _ = (ca.wait(), cb.wait());

    assert_one_text_each(&gw, n);
    // Which events each relay took in first (fresh=true) and which it found already there.
    let intake = |r: &Relay, fresh: bool| -> std::collections::HashSet<String> {
        std::fs::read_to_string(&r.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("event taken in") && l.contains(&format!("fresh={fresh}")))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("event_id=")).map(str::to_string))
            .collect()
    };
    let (new_a, new_b, dup_a, dup_b) = (intake(&a, true), intake(&b, true), intake(&a, false), intake(&b, false));
    assert!(!new_a.is_empty() && !new_b.is_empty(), "both relays took in events: a {}, b {}", new_a.len(), new_b.len());
    assert_eq!(new_a.len() + new_b.len(), n);
    assert_eq!(dup_a.len() + dup_b.len(), n, "every second copy was recognised");
    let crossed = dup_a.intersection(&new_b).count() + dup_b.intersection(&new_a).count();
    assert!(crossed > 0, "some copies met the other relay's record");
    let log = a.log_lines();
    assert_eq!(log.len(), n);
    assert!(log.iter().all(|l| l["status"] == "sent"), "{log:?}");
    let by =
        |instance: &str| log.iter().filter(|l| l["instance"].as_str().is_some_and(|i| i.ends_with(instance))).count();
    assert!(by("-a") > 0 && by("-b") > 0, "both relays sent texts: a {}, b {}", by("-a"), by("-b"));
    assert_eq!(by("-a") + by("-b"), n);
}

#[test]
fn relay_waits_for_postgres_and_rides_out_an_outage() {
    let gw = Gateway::start();
    let db = TempDb::create();
    let proxy = Proxy::new(db.port());
    let pg = format!("{} connect_timeout=2", db.params_via(proxy.port));
    let relay = Relay::with(
        &format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url()),
        "",
        Setup { shared: Some(Shared { postgres: &pg, instance: "a", center: None, group: false }), relay_extra: "" },
    );
    // The database comes up after the relay (both booting): the relay waits for it.
    let mut child = std::thread::scope(|s| {
        s.spawn(|| {
            wait_until("the relay to find the database missing", Duration::from_secs(20), || {
                std::fs::read_to_string(&relay.log).unwrap_or_default().contains("not reachable yet")
            });
            proxy.up();
        });
        relay.spawn()
    });
    let now = jiff::Timestamp::now();
    relay.event("01a00000-0000-7000-8000-000000000101", "arrival", "minji", "child", now, None);
    wait_until("the first text", Duration::from_secs(20), || gw.received().len() == 1);
    // The database goes away mid-run: the next event waits, unacknowledged, until it is back.
    proxy.down();
    relay.event("01a00000-0000-7000-8000-000000000102", "arrival", "jiwoo", "child", now, None);
    wait_until("the intake to fail", Duration::from_secs(20), || {
        std::fs::read_to_string(&relay.log).unwrap_or_default().contains("event not recorded yet")
    });
    proxy.up();
    wait_until("the second text", Duration::from_secs(30), || gw.received().len() >= 2);
    std::thread::sleep(Duration::from_secs(1));
    signal(child.id(), "TERM");
    let _ = child.wait();
    assert_eq!(gw.received().len(), 2, "each text once");
    let log = relay.log_lines();
    assert!(log.iter().all(|l| l["status"] == "sent"), "{log:?}");
}

/// Without a share group every relay takes in every event and the store splits the sending, so
/// a stopped relay strands nothing (a broker like Mosquitto keeps dealing a stopped group
/// member its share, queued until it returns).
#[test]
fn relays_without_a_group_stand_in_for_a_stopped_one() {
    let (gw, _db, a, b) = relay_pair(false);
    let (mut ca, mut cb) = (a.spawn(), b.spawn());
    let now = jiff::Timestamp::now();
    let event = |i: usize| {
        let child = if i.is_multiple_of(2) { "minji" } else { "jiwoo" };
        a.event(&format!("01a00000-0000-7000-8000-{i:012}"), "arrival", child, "child", now, None);
    };
    (0..6).for_each(event);
    wait_until("six texts", Duration::from_secs(20), || gw.received().len() >= 6);
    signal(cb.id(), "TERM");
    assert!(cb.wait().expect("b exits").success(), "a clean stop");
    (6..12).for_each(event);
    wait_until("a to text the rest alone", Duration::from_secs(20), || gw.received().len() >= 12);
    // b comes back to the copies its session kept: all known already.
    let mut cb = b.spawn();
    wait_until("b to catch up", Duration::from_secs(20), || {
        std::fs::read_to_string(&b.log).unwrap_or_default().matches("event taken in").count() >= 12
    });
    std::thread::sleep(Duration::from_secs(1));
    signal(ca.id(), "TERM");
    signal(cb.id(), "TERM");
    let _ = (ca.wait(), cb.wait());
    assert_one_text_each(&gw, 12);
    for r in [&a, &b] {
        let log = std::fs::read_to_string(&r.log).unwrap_or_default();
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// A gateway without idempotency keys that takes the request and never answers, or answers
/// with an error from inside or behind it (502), may have sent the text: it is recorded
/// `unknown`, not retried (the webhook, which carries a key, retries).
#[test]
fn no_answer_from_a_gateway_without_idempotency_is_not_retried() {
    let gw = Gateway::start();
    gw.script([Reply { delay: Duration::from_millis(2500), ..Reply::ok() }, Reply::status(502)]);
    let relay = Relay::new(
        &format!(
            "kind = \"solapi\"\nbase_url = \"{}\"\napi_key = \"KEY\"\napi_secret = \"SECRET\"\ntimeout_ms = 1000",
            gw.url()
        ),
        "",
    );
    let mut child = relay.spawn();
    relay.event("01a00000-0000-7000-8000-0000000001a1", "arrival", "minji", "child", jiff::Timestamp::now(), None);
    wait_until("the unknown record", Duration::from_secs(20), || {
        relay.log_lines().iter().any(|l| l["status"] == "unknown")
    });
    relay.event("01a00000-0000-7000-8000-0000000001a2", "arrival", "jiwoo", "child", jiff::Timestamp::now(), None);
    wait_until("the second unknown", Duration::from_secs(20), || {
        relay.log_lines().iter().filter(|l| l["status"] == "unknown").count() == 2
    });
    std::thread::sleep(Duration::from_secs(3));
    signal(child.id(), "TERM");
    let _ = child.wait();
    assert_eq!(gw.received().len(), 2, "neither retried");
    let log = relay.log_lines();
    assert!(log.iter().all(|l| l["detail"].as_str().unwrap_or("").contains("may have sent it")), "{log:?}");
    assert!(log[0]["detail"].as_str().unwrap_or("").contains("HTTP 502"), "{log:?}");
}

/// What no kiosk could have seen (dated tomorrow or in 2099, a temperature of 1e30 or −500 °C)
/// is refused with the reason and never texted; the next sound event is.
#[test]
fn events_no_kiosk_could_have_seen_are_refused_not_texted() {
    let gw = Gateway::start();
    let relay = Relay::new(&format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url()), "");
    let mut child = relay.spawn();
    let now = jiff::Timestamp::now();
    let later = |h: i64| now.checked_add(jiff::SignedDuration::from_hours(h)).expect("ts");
    let year_2099 = jiff::Timestamp::from_second(4_070_908_800).expect("2099");
    let refused = [
        ("01a00000-0000-7000-8000-0000000003a1", year_2099, None),
        ("01a00000-0000-7000-8000-0000000003a2", later(24), None),
        ("01a00000-0000-7000-8000-0000000003a3", later(1), Some(36.5)),
        ("01a00000-0000-7000-8000-0000000003a4", now, Some(1e30)),
        ("01a00000-0000-7000-8000-0000000003a5", now, Some(-500.0)),
        ("01a00000-0000-7000-8000-0000000003a6", now, Some(0.0)),
    ];
    for (id, ts, temp) in refused {
        relay.event(id, "arrival", "minji", "child", ts, temp);
    }
    relay.event("01a00000-0000-7000-8000-0000000003b1", "arrival", "minji", "child", now, Some(36.6));
    wait_until("the sound event's text", Duration::from_secs(20), || !gw.received().is_empty());
    wait_until("every refusal logged", Duration::from_secs(20), || {
        relay.stderr_log().matches("event refused").count() >= refused.len()
    });
    signal(child.id(), "TERM");
    let _ = child.wait();
    let texts: Vec<String> = gw.received().iter().map(|r| r.body["text"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("36.6"), "{texts:?}");
    let log = relay.stderr_log();
    for (id, _, _) in refused {
        let line = log.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id} not logged:\n{log}"));
        assert!(line.contains("refused") && (line.contains("ahead") || line.contains("temperature_c")), "{line}");
    }
    assert_eq!(relay.log_lines().len(), 1, "no delivery recorded for a refused event");
}

/// A child added to the directory while the relay runs is texted about, once, including the
/// event that arrived before the child was added; a broken directory file keeps the last good
/// one; a restart texts nothing again.
#[test]
fn a_child_added_while_running_is_texted_once() {
    let gw = Gateway::start();
    let relay = Relay::with(
        &format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url()),
        "",
        Setup { shared: None, relay_extra: "directory_poll_seconds = 1" },
    );
    let mut child = relay.spawn();
    let now = jiff::Timestamp::now();
    relay.event("01a00000-0000-7000-8000-0000000004a1", "arrival", "seoyun", "child", now, None);
    wait_until("the unknown child", Duration::from_secs(20), || relay.stderr_log().contains("unknown child"));
    assert!(gw.received().is_empty());
    relay.rewrite_directory(SEOYUN);
    wait_until("seoyun's text", Duration::from_secs(20), || !gw.received().is_empty());
    assert_eq!(gw.received()[0].body["to"], "01055556666", "+82 10 5555 6666 texted as a domestic number");
    // The name's placeholder stays as written and its control characters never reach the phone.
    let t = hhmm(now);
    assert_eq!(
        gw.received()[0].body["text"],
        format!("[햇살어린이집] 최서윤{{time}} [2J 어린이가 {t}에 등원했습니다.")
    );
    // A broken file: reported loudly, the last good directory stays (seoyun is still known).
    std::fs::write(&relay.directory, "[[child]\nthis is not toml").expect("break");
    wait_until("the complaint", Duration::from_secs(20), || relay.stderr_log().contains("directory unusable"));
    relay.event("01a00000-0000-7000-8000-0000000004a2", "departure", "seoyun", "child", now, None);
    wait_until("the departure", Duration::from_secs(20), || gw.received().len() >= 2);
    relay.rewrite_directory(SEOYUN);
    signal(child.id(), "TERM");
    let _ = child.wait();
    // After a restart the first event is known, and planned: nothing is texted again.
    let mut again = relay.spawn();
    relay.event("01a00000-0000-7000-8000-0000000004a3", "arrival", "jiwoo", "child", now, None);
    // The first event left the parked list when it was texted: a restart has nothing to redo.
    wait_until("jiwoo's text", Duration::from_secs(20), || gw.received().len() >= 3);
    signal(again.id(), "TERM");
    let _ = again.wait();
    let to: Vec<String> = gw.received().iter().map(|r| r.body["to"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(to, ["01055556666", "01055556666", "01000001111"], "each text once");
    // The bad entries were reported by name at the reload and again at the restart, which they
    // did not stop.
    let log = relay.stderr_log();
    let left_out: Vec<&str> = log.lines().filter(|l| l.contains("directory entry left out")).collect();
    // (Two at each read: the reload, the restart, and perhaps the rewrite just before the stop.)
    assert!(left_out.len() >= 4, "{log}");
    assert!(left_out.iter().all(|l| l.contains("guardian `aunt`") || l.contains("listed twice")), "{left_out:?}");
    let log = relay.log_lines();
    assert_eq!(log.iter().filter(|l| l["status"] == "sent").count(), 3, "{log:?}");
}

/// A child to add (its name with a placeholder, an ESC sequence and a newline), with a guardian
/// whose number is no number and a second `minji`: both are left out and reported, and nothing
/// else is.
const SEOYUN: &str = r#"
[[child]]
id = "seoyun"
center = "{center}"
name = "최서윤{time}\u001b[2J\n"

[[child.guardian]]
name = "mom"
phone = "+82 10 5555 6666"

[[child.guardian]]
name = "aunt"
phone = "1-2-3-4-5-6-7-8"

[[child]]
id = "minji"
center = "{center}"
name = "김민지 (again)"
"#;

/// Two relays sharing PostgreSQL both see the event of a child not yet in their directories, and
/// both see the child added: one text.
#[test]
fn a_child_added_under_two_relays_is_texted_once() {
    let gw = Gateway::start();
    let db = TempDb::create();
    let pg = db.params();
    let provider = format!("kind = \"webhook\"\nurl = \"{}/send\"", gw.url());
    let setup = |instance, center| Setup {
        shared: Some(Shared { postgres: &pg, instance, center, group: false }),
        relay_extra: "directory_poll_seconds = 1",
    };
    let a = Relay::with(&provider, "", setup("a", None));
    let b = Relay::with(&provider, "", setup("b", Some(&a.center)));
    let (mut ca, mut cb) = (a.spawn(), b.spawn());
    let now = jiff::Timestamp::now();
    for i in 0..5 {
        a.event(&format!("01a00000-0000-7000-8000-0000000005a{i}"), "arrival", "seoyun", "child", now, None);
    }
    wait_until("both relays to see the events", Duration::from_secs(20), || {
        [&a, &b].iter().all(|r| r.stderr_log().matches("unknown child").count() >= 5)
    });
    a.rewrite_directory(SEOYUN);
    b.rewrite_directory(SEOYUN);
    wait_until("five texts", Duration::from_secs(30), || gw.received().len() >= 5);
    wait_until("both relays to reload", Duration::from_secs(20), || {
        [&a, &b].iter().all(|r| r.stderr_log().contains("directory changed"))
    });
    // Each relay plans parked events again right after its reload, and on every poll (1 s):
    // give a second planning the time to show, if there were one.
    std::thread::sleep(Duration::from_millis(1500));
    signal(ca.id(), "TERM");
    signal(cb.id(), "TERM");
    let _ = (ca.wait(), cb.wait());
    assert_one_text_each(&gw, 5);
}

#[test]
fn the_relay_stays_inside_its_units_syscall_filter() {
    use common::units::{deny_write_execute, outside_filter, traced, unit};
    let gw = Gateway::start();
    gw.answer_by_default(Reply::ok());
    let relay = Relay::new(&format!("kind = \"webhook\"\nurl = \"{}\"", gw.url()), "");
    let calls = relay.config.with_file_name("strace.txt");
    let mut cmd = traced(std::path::Path::new(env!("CARGO_BIN_EXE_dolbom")), &calls);
    deny_write_execute(&mut cmd);
    let mut tracer = relay.spawn_as(cmd);
    relay.event("01a00000-0000-7000-8000-0000000000f1", "arrival", "minji", "child", jiff::Timestamp::now(), None);
    wait_until("the text", Duration::from_secs(20), || !gw.received().is_empty());
    // The relay is strace's child: stop it as systemd would, and strace writes its summary.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", tracer.id())).expect("children");
    let relay_pid: u32 = children.split_whitespace().next().and_then(|p| p.parse().ok()).expect("the relay's pid");
    signal(relay_pid, "TERM");
    let status = tracer.wait().expect("wait");
    assert!(status.success(), "{status}; log:\n{}", relay.stderr_log());
    assert_eq!(relay.log_lines().iter().filter(|l| l["status"] == "sent").count(), 1);
    let outside = outside_filter(&unit("dolbom-relay.service"), &calls);
    assert!(outside.is_empty(), "the relay called {outside:?}, which dolbom-relay.service's SystemCallFilter= refuses");
}

/// The relay refuses gateway secrets written in its TOML: each `api_secret = "…"` or
/// `secret_key = "…"` line of a test's provider section becomes a 0600 file and its `_file` key.
fn secrets_to_files(provider: &str, dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    provider
        .lines()
        .map(|line| {
            for key in ["api_secret", "secret_key"] {
                if let Some(value) = line.strip_prefix(&format!("{key} = ")) {
                    let file = dir.join(format!("{key}.secret"));
                    std::fs::write(&file, value.trim_matches('"')).expect("secret file");
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
                    return format!("{key}_file = \"{key}.secret\"");
                }
            }
            line.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

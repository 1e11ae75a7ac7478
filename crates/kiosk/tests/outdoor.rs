//! Outdoor air and weather: the parsers on answers recorded in the services' shapes
//! (tests/data/outdoor), and the poller against a real HTTP server on loopback replaying a script
//! of good and bad answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use dolbom_kiosk::air::{OutdoorAir, OutdoorDust, OutdoorWeather, OUTDOOR_DUST, OUTDOOR_WEATHER};
use dolbom_kiosk::health::{Health, SensorState};
use dolbom_kiosk::shutdown::Shutdown;
use dolbom_kiosk::sources::outdoor::{airkorea, kma, run_paced, OutdoorConfig, OutdoorError, Pace};
use jiff::{Timestamp, ToSpan};

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/outdoor").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Unix milliseconds of a KST wall-clock time.
fn kst_ms(text: &str) -> i64 {
    let t: jiff::civil::DateTime = text.parse().expect("datetime");
    t.to_zoned_datetime(dolbom_kiosk::sources::outdoor::kst()).expect("kst").timestamp().as_millisecond()
}

// ---- AirKorea answers ----

#[test]
fn airkorea_takes_the_newest_hour_with_its_one_hour_grades() {
    let dust = airkorea::parse(&data("airkorea-good.json"), "종로구").expect("good answer");
    assert_eq!(
        dust,
        OutdoorDust {
            station: "종로구".into(),
            observed_ms: kst_ms("2026-12-01T10:00"),
            pm10: Some(41.0),
            pm25: Some(27.0),
            pm10_grade: Some(2),
            pm25_grade: Some(2),
        }
    );
}

#[test]
fn airkorea_dashes_and_flagged_values_are_not_values() {
    // 14:00 is all "-" and flagged (통신장애): skipped. At 13:00 PM10 is flagged (점검및교정,
    // "999"), PM2.5 is measured and has only the 24-hour grade.
    let dust = airkorea::parse(&data("airkorea-dashes-and-flags.json"), "종로구").expect("13:00 row");
    assert_eq!(dust.observed_ms, kst_ms("2026-12-01T13:00"));
    assert_eq!((dust.pm10, dust.pm10_grade), (None, None));
    assert_eq!((dust.pm25, dust.pm25_grade), (Some(18.0), Some(1)));
}

#[test]
fn airkorea_24_00_is_midnight_of_the_next_day_and_empty_is_none() {
    let dust = airkorea::parse(&data("airkorea-midnight.json"), "종로구").expect("midnight row");
    assert_eq!(dust.observed_ms, kst_ms("2026-12-02T00:00"));
    assert_eq!((dust.pm10, dust.pm10_grade, dust.pm25, dust.pm25_grade), (Some(22.0), Some(1), None, None));
}

#[test]
fn airkorea_errors_are_typed_and_say_what_to_do() {
    let err = airkorea::parse(&data("airkorea-all-missing.json"), "종로구").expect_err("nothing measured");
    assert!(matches!(err, OutdoorError::NoValues { .. }), "{err:?}");
    let err = airkorea::parse(&data("airkorea-no-data.json"), "종로구").expect_err("no data");
    assert!(matches!(&err, OutdoorError::NoData { code, .. } if code == "03"), "{err:?}");

    let err = airkorea::parse(&data("key-not-registered.xml"), "종로구").expect_err("key error");
    assert!(matches!(&err, OutdoorError::KeyRefused { code, .. } if code == "30"), "{err:?}");
    let text = err.to_string();
    for part in [
        "AirKorea",
        "refused",
        "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
        "outdoor.airkorea.service_key_file",
        "서비스 키가 거부",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }

    let err = airkorea::parse(&data("over-quota.xml"), "종로구").expect_err("quota");
    assert!(matches!(err, OutdoorError::OverQuota { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("quota") && text.contains("호출 한도"), "{text}");

    for garbage in ["garbage-html.txt", "garbage-truncated.json"] {
        let err = airkorea::parse(&data(garbage), "종로구").expect_err(garbage);
        assert!(matches!(err, OutdoorError::Garbage { .. }), "{garbage}: {err:?}");
    }
}

// ---- KMA answers ----

fn hour() -> jiff::ZonedDateTime {
    kma::latest_hour(Timestamp::now())
}

#[test]
fn kma_reads_t1h_and_reh_and_their_hour() {
    let weather = kma::parse(&data("kma-good.json"), &hour(), 60, 127).expect("good answer");
    assert_eq!(
        weather,
        OutdoorWeather {
            nx: 60,
            ny: 127,
            observed_ms: kst_ms("2026-12-01T09:00"),
            temperature_c: Some(-3.4),
            humidity_pct: Some(58.0),
        }
    );
    let weather = kma::parse(&data("kma-humidity-only.json"), &hour(), 60, 127).expect("humidity");
    assert_eq!((weather.temperature_c, weather.humidity_pct), (None, Some(71.0)));
}

#[test]
fn kma_missing_values_and_error_codes() {
    let err = kma::parse(&data("kma-missing.json"), &hour(), 60, 127).expect_err("-, -998.9 and null");
    assert!(matches!(err, OutdoorError::NoValues { .. }), "{err:?}");
    let err = kma::parse(&data("kma-no-data.json"), &hour(), 60, 127).expect_err("no data");
    assert!(matches!(err, OutdoorError::NoData { .. }), "{err:?}");
    let err = kma::parse(&data("kma-over-quota.json"), &hour(), 60, 127).expect_err("quota");
    assert!(matches!(err, OutdoorError::OverQuota { .. }), "{err:?}");
    let err = kma::parse(&data("kma-invalid-parameter.json"), &hour(), 60, 127).expect_err("parameter");
    assert!(matches!(&err, OutdoorError::Service { code, .. } if code == "10"), "{err:?}");
    let err = kma::parse(&data("key-not-registered.xml"), &hour(), 60, 127).expect_err("key");
    assert!(err.to_string().contains("outdoor.kma.service_key_file"), "{err}");
    let err = kma::parse(&data("garbage-truncated.json"), &hour(), 60, 127).expect_err("garbage");
    assert!(matches!(err, OutdoorError::Garbage { .. }), "{err:?}");
}

// ---- The poller against a loopback server ----

struct Reply {
    status: u16,
    body: String,
    /// Held back this long before answering (longer than the client's timeout: a slow service).
    delay: Duration,
}

fn reply(status: u16, body: String) -> Reply {
    Reply { status, body, delay: Duration::ZERO }
}

/// What the server saw when a request arrived: its target, and the poller's state at that
/// moment (which is the outcome of the request before, since the poller reports before waiting).
#[derive(Debug)]
struct Seen {
    target: String,
    state: SensorState,
    error: Option<String>,
    air: OutdoorAir,
}

/// A real HTTP/1.1 server on 127.0.0.1 answering the script in order, then 503 for ever.
fn serve(script: Vec<Reply>, probe: impl Fn(String) -> Seen + Send + 'static) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let target = head.split(' ').nth(1).unwrap_or_default().to_string();
            if tx.send(probe(target)).is_err() {
                return;
            }
            let r = script.next().unwrap_or_else(|| reply(503, "Service Unavailable".into()));
            std::thread::sleep(r.delay);
            let answer = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                r.status,
                r.body.len(),
                r.body
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (base, rx)
}

fn probe(
    health: Arc<Health>,
    sensor: &'static str,
    rx: tokio::sync::watch::Receiver<OutdoorAir>,
) -> impl Fn(String) -> Seen {
    move |target| {
        let summary = health.summary();
        let status = summary.sensors.get(sensor).cloned();
        Seen {
            target,
            state: status.as_ref().map_or(SensorState::Off, |s| s.state),
            error: status.and_then(|s| s.error),
            air: rx.borrow().clone(),
        }
    }
}

fn key_file(dir: &Path, name: &str, key: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{key}\n")).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// The query's pairs, still encoded, as the server received them.
fn query(target: &str) -> Vec<(String, String)> {
    let (_, q) = target.split_once('?').unwrap_or_default();
    q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

/// The key "ab+c/d==" as data.go.kr expects it: percent-encoded exactly once.
const KEY_ONCE: &str = "ab%2Bc%2Fd%3D%3D";

const PACE: Pace = Pace { poll: Duration::from_millis(200), retry_initial: Duration::from_millis(20) };
const WAIT: Duration = Duration::from_secs(10);

struct Running {
    runtime: tokio::runtime::Runtime,
    task: tokio::task::JoinHandle<()>,
    shutdown: Shutdown,
}

fn start(config: OutdoorConfig, tx: tokio::sync::watch::Sender<OutdoorAir>, health: Arc<Health>) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let shutdown = Shutdown::new();
    let task = runtime.spawn(run_paced(config, tx, health, shutdown.clone(), PACE));
    Running { runtime, task, shutdown }
}

impl Running {
    fn stop(self) {
        self.shutdown.trigger();
        self.runtime.block_on(async { tokio::time::timeout(WAIT, self.task).await }).expect("stops").expect("task");
    }
}

#[test]
fn the_poller_keeps_the_last_good_dust_through_errors_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    key_file(dir.path(), "airkorea.key", "ab+c/d==");
    let health = Arc::new(Health::default());
    let (tx, rx) = tokio::sync::watch::channel(OutdoorAir::default());
    let script = vec![
        reply(200, data("airkorea-good.json")),
        reply(500, "Internal Server Error".into()),
        reply(200, data("key-not-registered.xml")),
        Reply { status: 200, body: data("airkorea-later.json"), delay: Duration::from_millis(3600) },
        reply(200, data("airkorea-later.json")),
    ];
    let (base, seen) = serve(script, probe(health.clone(), OUTDOOR_DUST, rx));
    let text = format!(
        "timeout_secs = 3\n[airkorea]\nstation = \"종로구\"\nservice_key_file = \"airkorea.key\"\nbase_url = \"{base}/B552584/ArpltnInforInqireSvc\"\n"
    );
    let mut config: OutdoorConfig = toml::from_str(&text).expect("config");
    config.validate().expect("valid");
    config.load_secrets(dir.path()).expect("key");
    let running = start(config, tx, health.clone());
    let seen: Vec<Seen> =
        (0..6).map(|i| seen.recv_timeout(WAIT).unwrap_or_else(|e| panic!("request {i}: {e}"))).collect();
    running.stop();

    // Every request: the documented operation and parameters, the key encoded once.
    for s in &seen {
        let (path, _) = s.target.split_once('?').expect("a query");
        assert_eq!(path, "/B552584/ArpltnInforInqireSvc/getMsrstnAcctoRltmMesureDnsty");
        let q = query(&s.target);
        assert_eq!(param(&q, "serviceKey"), [KEY_ONCE], "{}", s.target);
        assert_eq!(param(&q, "returnType"), ["json"]);
        assert_eq!(param(&q, "stationName"), ["%EC%A2%85%EB%A1%9C%EA%B5%AC"], "종로구, UTF-8");
        assert_eq!(param(&q, "dataTerm"), ["DAILY"]);
        assert_eq!(param(&q, "ver"), ["1.3"]);
        assert_eq!(param(&q, "pageNo"), ["1"]);
        assert_eq!(param(&q, "numOfRows").len(), 1);
    }
    // Before the first answer: starting, nothing known.
    assert_eq!((seen[0].state, seen[0].air.dust.as_ref()), (SensorState::Starting, None));
    // The good answer, then three failures that keep it with its observation time.
    let first = seen[1].air.dust.clone().expect("the first value");
    assert_eq!((first.pm10, first.observed_ms), (Some(41.0), kst_ms("2026-12-01T10:00")));
    assert_eq!((seen[1].state, seen[1].error.as_deref()), (SensorState::Ok, None));
    let reasons = [(2, "HTTP 500"), (3, "서비스 키가 거부"), (4, "no answer within 3 s")];
    for (i, reason) in reasons {
        assert_eq!(seen[i].state, SensorState::Retrying, "after request {}", i - 1);
        let error = seen[i].error.as_deref().unwrap_or_default();
        assert!(error.contains(reason), "after request {}: {reason:?} in {error:?}", i - 1);
        assert_eq!(seen[i].air.dust.as_ref(), Some(&first), "a failure keeps the last good value");
    }
    // And back to ok with the newer hour.
    let later = seen[5].air.dust.clone().expect("the newer value");
    assert_eq!((later.pm10, later.pm10_grade, later.observed_ms), (Some(88.0), Some(3), kst_ms("2026-12-01T11:00")));
    assert_eq!((seen[5].state, seen[5].error.as_deref()), (SensorState::Ok, None));
    assert!(seen[5].air.weather.is_none(), "KMA is not configured and stays absent");
    let summary = health.summary();
    let weather = summary.sensors.get(OUTDOOR_WEATHER).expect("KMA reported");
    assert_eq!(weather.state, SensorState::Off);
    assert!(weather.error.as_deref().is_some_and(|e| e.contains("[outdoor.kma]")), "{weather:?}");
}

#[test]
fn the_poller_falls_back_one_hour_on_no_data_and_says_over_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The "Encoding" form of the key, as data.go.kr shows it: still encoded once on the wire.
    key_file(dir.path(), "kma.key", KEY_ONCE);
    let health = Arc::new(Health::default());
    let (tx, rx) = tokio::sync::watch::channel(OutdoorAir::default());
    let script = vec![
        reply(200, data("kma-no-data.json")),
        reply(200, data("kma-good.json")),
        reply(200, data("kma-over-quota.json")),
        reply(200, data("kma-good.json")),
    ];
    let (base, seen) = serve(script, probe(health.clone(), OUTDOOR_WEATHER, rx));
    let text = format!(
        "[kma]\nlat = 37.5735\nlon = 126.9790\nservice_key_file = \"kma.key\"\nbase_url = \"{base}/1360000/VilageFcstInfoService_2.0/\"\n"
    );
    let mut config: OutdoorConfig = toml::from_str(&text).expect("config");
    config.validate().expect("valid");
    config.load_secrets(dir.path()).expect("key");
    let before = kma::base(&kma::latest_hour(Timestamp::now()));
    let running = start(config, tx, health.clone());
    let seen: Vec<Seen> =
        (0..5).map(|i| seen.recv_timeout(WAIT).unwrap_or_else(|e| panic!("request {i}: {e}"))).collect();
    running.stop();

    for s in &seen {
        let (path, _) = s.target.split_once('?').expect("a query");
        assert_eq!(path, "/1360000/VilageFcstInfoService_2.0/getUltraSrtNcst");
        let q = query(&s.target);
        assert_eq!(param(&q, "serviceKey"), [KEY_ONCE], "{}", s.target);
        assert_eq!(param(&q, "dataType"), ["JSON"]);
        assert_eq!((param(&q, "nx"), param(&q, "ny")), (vec!["60"], vec!["127"]), "lat/lon → the Jongno cell");
        assert_eq!(param(&q, "pageNo"), ["1"]);
        assert_eq!(param(&q, "numOfRows").len(), 1);
    }
    // The latest hour first, then (NO_DATA) the hour before, in the same poll.
    let asked = |s: &Seen| {
        let q = query(&s.target);
        (param(&q, "base_date")[0].to_string(), param(&q, "base_time")[0].to_string())
    };
    let (first, fallback) = (asked(&seen[0]), asked(&seen[1]));
    let after = kma::base(&kma::latest_hour(Timestamp::now()));
    assert!(first == before || first == after, "{first:?} is the latest published hour ({before:?} or {after:?})");
    let date = jiff::civil::DateTime::strptime("%Y%m%d%H%M", format!("{}{}", first.0, first.1)).expect("base");
    let hour_before = date.checked_sub(1.hour()).expect("sub");
    assert_eq!(fallback, (hour_before.strftime("%Y%m%d").to_string(), hour_before.strftime("%H00").to_string()));
    assert_eq!(seen[1].state, SensorState::Starting, "NO_DATA on the latest hour is not a failure yet");

    let weather = seen[2].air.weather.clone().expect("the first value");
    assert_eq!(
        (weather.nx, weather.ny, weather.temperature_c, weather.humidity_pct),
        (60, 127, Some(-3.4), Some(58.0))
    );
    assert_eq!(weather.observed_ms, kst_ms("2026-12-01T09:00"));
    assert_eq!(seen[2].state, SensorState::Ok);
    assert_eq!(seen[3].state, SensorState::Retrying);
    let error = seen[3].error.as_deref().unwrap_or_default();
    assert!(error.contains("quota") && error.contains("호출 한도"), "{error}");
    assert_eq!(seen[3].air.weather.as_ref(), Some(&weather), "kept through the quota error");
    assert_eq!((seen[4].state, seen[4].error.as_deref()), (SensorState::Ok, None));
    assert!(seen[4].air.dust.is_none());
}

#[test]
fn http_level_refusals_are_named_as_the_key_or_the_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    key_file(dir.path(), "airkorea.key", "ab+c/d==");
    let health = Arc::new(Health::default());
    let (tx, rx) = tokio::sync::watch::channel(OutdoorAir::default());
    let script = vec![reply(401, "Unauthorized".into()), reply(429, "Too Many Requests".into())];
    let (base, seen) = serve(script, probe(health.clone(), OUTDOOR_DUST, rx));
    let text =
        format!("[airkorea]\nstation = \"종로구\"\nservice_key_file = \"airkorea.key\"\nbase_url = \"{base}\"\n");
    let mut config: OutdoorConfig = toml::from_str(&text).expect("config");
    config.load_secrets(dir.path()).expect("key");
    let running = start(config, tx, health);
    let seen: Vec<Seen> =
        (0..3).map(|i| seen.recv_timeout(WAIT).unwrap_or_else(|e| panic!("request {i}: {e}"))).collect();
    running.stop();
    let error = |i: usize| seen[i].error.clone().unwrap_or_default();
    assert!(error(1).contains("HTTP 401") && error(1).contains("서비스 키가 거부"), "{}", error(1));
    assert!(error(2).contains("HTTP 429") && error(2).contains("호출 한도"), "{}", error(2));
    assert!(seen[2].air.dust.is_none(), "nothing was ever measured");
}

#[test]
fn services_without_a_key_are_off_with_the_reason_and_nothing_is_asked() {
    let text = "[airkorea]\nstation = \"종로구\"\nbase_url = \"http://127.0.0.1:9/never\"\n";
    let config: OutdoorConfig = toml::from_str(text).expect("config");
    config.validate().expect("valid");
    let health = Arc::new(Health::default());
    let (tx, rx) = tokio::sync::watch::channel(OutdoorAir::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // With nothing to ask, the stage ends at once rather than waiting for shutdown.
    runtime
        .block_on(async {
            tokio::time::timeout(WAIT, run_paced(config, tx, health.clone(), Shutdown::new(), PACE)).await
        })
        .expect("returns");
    let summary = health.summary();
    let dust = summary.sensors.get(OUTDOOR_DUST).expect("dust reported");
    assert_eq!(dust.state, SensorState::Off);
    let reason = dust.error.as_deref().unwrap_or_default();
    assert!(reason.contains("outdoor.airkorea.service_key_file") && reason.contains("서비스 키가 없어"), "{reason}");
    assert_eq!(summary.sensors.get(OUTDOOR_WEATHER).map(|s| s.state), Some(SensorState::Off));
    assert!(
        !summary.reasons.iter().any(|r| r.contains("outdoor")),
        "an absent service is not a fault: {:?}",
        summary.reasons
    );
    assert_eq!(*rx.borrow(), OutdoorAir::default());
}

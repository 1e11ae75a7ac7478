//! The air stage with a real outbox (SQLite in a temporary directory) and real channels; no
//! broker: what would be published is what the outbox holds.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::air::{OutdoorDust, OutdoorWeather};
use crate::health::Health;
use crate::store::Store;

struct Rig {
    _dir: tempfile::TempDir,
    outbox: Outbox,
    indoor: mpsc::Sender<IndoorUpdate>,
    outdoor: watch::Sender<OutdoorAir>,
    shutdown: Shutdown,
    stage: tokio::task::JoinHandle<()>,
}

fn site() -> Site {
    crate::site::SiteConfig { center_id: "sunshine".into(), kiosk_id: "door-1".into(), timezone: "Asia/Seoul".into() }
        .build()
        .expect("site")
}

fn rig(interval: Duration, outdoor: OutdoorAir) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join("k.db")).expect("store"));
    let outbox = Outbox::new(store, 1000, Arc::new(Health::default())).expect("outbox");
    let mut stage = AirStage::new(site(), outbox.clone(), AirLimitsConfig::default(), 3_600_000);
    stage.interval = interval;
    let (indoor_tx, indoor_rx) = mpsc::channel(64);
    let (outdoor_tx, outdoor_rx) = watch::channel(outdoor);
    let shutdown = Shutdown::new();
    let task = tokio::spawn(stage.run(indoor_rx, outdoor_rx, shutdown.clone()));
    Rig { _dir: dir, outbox, indoor: indoor_tx, outdoor: outdoor_tx, shutdown, stage: task }
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

fn particles(at_ms: i64, pm25: f32) -> IndoorUpdate {
    IndoorUpdate {
        sensor: AIR_PM,
        at_ms,
        samples: 60,
        measurement: IndoorMeasurement::Particles {
            pm1: pm25 * 0.7,
            pm25,
            pm10: pm25 * 1.4,
            hcho_ug_m3: None,
            temperature_c: Some(22.5),
            humidity_pct: Some(41.0),
        },
    }
}

fn co2(at_ms: i64, ppm: f32) -> IndoorUpdate {
    IndoorUpdate { sensor: AIR_CO2, at_ms, samples: 30, measurement: IndoorMeasurement::Co2 { ppm } }
}

fn clean_outside(observed_ms: i64) -> OutdoorAir {
    OutdoorAir {
        dust: Some(OutdoorDust {
            station: "종로구".into(),
            observed_ms,
            pm10: Some(22.0),
            pm25: Some(9.0),
            pm10_grade: Some(1),
            pm25_grade: Some(1),
        }),
        weather: Some(OutdoorWeather {
            nx: 60,
            ny: 127,
            observed_ms,
            temperature_c: Some(-3.5),
            humidity_pct: Some(55.0),
        }),
    }
}

/// (kind, payload) of every queued row, in order.
fn rows(outbox: &Outbox) -> Vec<(String, bool, Value)> {
    outbox
        .pending_after(0, 10_000)
        .expect("pending")
        .into_iter()
        .map(|m| (m.kind, m.retain, serde_json::from_slice(&m.payload).expect("json")))
        .collect()
}

fn of_kind(outbox: &Outbox, kind: &str) -> Vec<Value> {
    rows(outbox).into_iter().filter(|(k, _, _)| k == kind).map(|(_, _, v)| v).collect()
}

async fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas").join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("json");
    jsonschema::validator_for(&schema).expect("valid schema")
}

fn assert_valid(v: &jsonschema::Validator, payload: &Value) {
    let errors: Vec<String> = v.iter_errors(payload).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{payload} does not match its schema: {errors:?}");
}

/// Telemetry every interval, retained, with each value's age and grade, outdoor values from the
/// watch; and while the broker is away only the newest telemetry stays queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_is_retained_latest_wins_and_matches_its_schema() {
    let now = now_ms();
    let r = rig(Duration::from_millis(40), OutdoorAir::default());
    r.indoor.send(particles(now - 2_000, 40.2)).await.expect("send");
    r.indoor.send(co2(now - 1_000, 812.0)).await.expect("send");
    r.outdoor.send_replace(clean_outside(now - 1_800_000));
    wait("telemetry with both sensors and outdoor", || {
        of_kind(&r.outbox, TELEMETRY_KIND)
            .last()
            .is_some_and(|t| !t["indoor"]["co2_ppm"].is_null() && !t["outdoor"]["pm25"].is_null())
    })
    .await;
    // Many intervals pass with no broker: still one telemetry row.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let all = rows(&r.outbox);
    let telemetry: Vec<&(String, bool, Value)> = all.iter().filter(|(k, _, _)| k == TELEMETRY_KIND).collect();
    assert_eq!(telemetry.len(), 1, "latest wins: {all:?}");
    let (_, retained, t) = telemetry[0];
    assert!(retained);
    assert_valid(&schema("air-telemetry.schema.json"), t);
    assert_eq!(t["schema"], "dolbom.air-telemetry/1");
    assert_eq!(t["indoor"]["pm25"]["value"], 40.2);
    assert_eq!(t["indoor"]["pm25"]["grade"]["ko"], "나쁨");
    assert_eq!(t["indoor"]["pm10"]["grade"]["code"], "moderate", "56.3 µg/m³ PM10");
    assert_eq!(t["indoor"]["co2_ppm"]["value"], 812.0);
    assert!(t["indoor"]["co2_ppm"]["age_secs"].as_u64().expect("age") >= 1);
    assert!(t["indoor"].get("hcho_ug_m3").is_none(), "no formaldehyde sensor: left out");
    assert_eq!(t["outdoor"]["station"], "종로구");
    assert_eq!(t["outdoor"]["pm25"]["grade"]["en"], "good");
    let age = t["outdoor"]["pm10"]["age_secs"].as_u64().expect("age");
    assert!((1800..1900).contains(&age), "the observation's age: {age}");
    assert_eq!(t["outdoor"]["temperature_c"]["value"], -3.5);
    let topic = r.outbox.pending_after(0, 10).expect("pending")[0].topic.clone();
    assert_eq!(topic, "dolbom/v1/sunshine/door-1/telemetry/air");
    r.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), r.stage).await.expect("stops at shutdown").expect("task");
}

/// Stale values are absent, not shown as current; a warming sensor's values go at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_warming_values_are_absent() {
    let now = now_ms();
    let r = rig(Duration::from_millis(40), clean_outside(now - 5 * 3_600_000));
    r.indoor.send(co2(now - 600_000, 700.0)).await.expect("send");
    r.indoor.send(particles(now, 12.0)).await.expect("send");
    wait("telemetry with PM", || {
        of_kind(&r.outbox, TELEMETRY_KIND).last().is_some_and(|t| !t["indoor"]["pm25"].is_null())
    })
    .await;
    let t = of_kind(&r.outbox, TELEMETRY_KIND).pop().expect("telemetry");
    assert!(t["indoor"]["co2_ppm"].is_null(), "ten minutes old: stale");
    assert!(t["outdoor"]["pm10"].is_null() && t["outdoor"]["station"].is_null(), "five hours old: stale");
    r.indoor
        .send(IndoorUpdate { sensor: AIR_PM, at_ms: now_ms(), samples: 0, measurement: IndoorMeasurement::Warming })
        .await
        .expect("send");
    wait("PM gone while warming", || {
        of_kind(&r.outbox, TELEMETRY_KIND).last().is_some_and(|t| t["indoor"]["pm25"].is_null())
    })
    .await;
    assert_valid(&schema("air-telemetry.schema.json"), &of_kind(&r.outbox, TELEMETRY_KIND)[0]);
}

/// One excursion over the PM2.5 limit, longer than the minimum duration: exactly one
/// "exceeded" and one "recovered", each with telemetry queued at once; hovering at the limit
/// before and after raises nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_per_excursion_and_one_recovery_nothing_while_flapping() {
    let start = now_ms() - 60 * 60_000;
    let r = rig(Duration::from_secs(3600), clean_outside(now_ms() - 600_000));
    let minute = |m: i64| start + m * 60_000;
    let mut values: Vec<f32> = Vec::new();
    values.extend((0..10).map(|m| if m % 2 == 0 { 34.0 } else { 37.0 })); // flapping
    values.extend([50.0; 12]); // 10..22: an excursion (exceeded at 14)
    values.extend([33.0; 8]); // 22..30: below the limit, above the recovery level (31.5)
    values.extend([20.0; 10]); // 30..40: recovered at 35
    values.extend((0..20).map(|m| if m % 3 == 0 { 36.0 } else { 30.0 })); // flapping again
    for (m, v) in values.iter().enumerate() {
        r.indoor.send(particles(minute(m as i64), *v)).await.expect("send");
    }
    wait("two events", || of_kind(&r.outbox, EVENT_KIND).len() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = of_kind(&r.outbox, EVENT_KIND);
    assert_eq!(events.len(), 2, "{events:?}");
    let v = schema("air.schema.json");
    for e in &events {
        assert_valid(&v, e);
    }
    let (up, down) = (&events[0], &events[1]);
    assert_eq!((up["pollutant"].as_str(), up["state"].as_str()), (Some("pm25"), Some("exceeded")));
    assert_eq!(
        (up["value"].as_f64(), up["limit"].as_f64(), up["unit"].as_str()),
        (Some(50.0), Some(35.0), Some("ug/m3"))
    );
    // The last flapping value (37 at minute 9) began the run; five minutes later it counts.
    assert_eq!(up["since"], site().ts(minute(9)));
    assert_eq!(up["ts"], site().ts(minute(14)));
    assert_eq!(up["recommendation"]["code"], "ventilate", "outside is cleaner");
    assert_eq!((down["state"].as_str(), down["value"].as_f64()), (Some("recovered"), Some(20.0)));
    assert_eq!(down["since"], site().ts(minute(30)));
    assert_eq!(down["recommendation"]["code"], "none");
    assert_eq!(down["recover_below"], 31.5);
    // Each transition queued the telemetry with it (latest wins: one row), and the events stay.
    let kinds: Vec<String> = rows(&r.outbox).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, [EVENT_KIND, EVENT_KIND, TELEMETRY_KIND]);
    let retained: Vec<bool> = rows(&r.outbox).into_iter().map(|(_, r, _)| r).collect();
    assert_eq!(retained, [false, false, true]);
}

/// A CO2 excursion with bad dust outside: air out briefly; and without any outdoor data the
/// advice says that outside is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recommendation_follows_the_outdoor_air() {
    let start = now_ms() - 30 * 60_000;
    let mut bad = clean_outside(now_ms() - 600_000);
    if let Some(d) = bad.dust.as_mut() {
        (d.pm10, d.pm25) = (Some(160.0), Some(80.0));
    }
    let r = rig(Duration::from_secs(3600), bad);
    for m in 0..7 {
        r.indoor.send(co2(start + m * 60_000, 1500.0)).await.expect("send");
    }
    wait("the CO2 event", || of_kind(&r.outbox, EVENT_KIND).len() == 1).await;
    let e = of_kind(&r.outbox, EVENT_KIND).remove(0);
    assert_eq!((e["pollutant"].as_str(), e["unit"].as_str()), (Some("co2"), Some("ppm")));
    assert_eq!(e["recommendation"]["code"], "ventilate_briefly");
    assert!(e["recommendation"]["ko"].as_str().is_some_and(|k| k.contains("공기청정기")));

    // No outdoor data at all (a stage of its own: nothing to race with).
    let r = rig(Duration::from_secs(3600), OutdoorAir::default());
    for m in 0..7 {
        r.indoor.send(particles(start + m * 60_000, 60.0)).await.expect("send");
    }
    wait("the PM events", || of_kind(&r.outbox, EVENT_KIND).len() == 2).await;
    let events = of_kind(&r.outbox, EVENT_KIND);
    let codes: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["pollutant"].as_str().unwrap_or(""), e["recommendation"]["code"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(codes, [("pm25", "outdoor_unknown"), ("pm10", "outdoor_unknown")], "PM10 84 µg/m³ is over 75 too");
}

/// The pure state: a sensor warming up in the middle of an excursion's count restarts it.
#[test]
fn warming_in_the_middle_restarts_the_count() {
    let mut air = AirState::new(&AirLimitsConfig::default(), 180_000);
    let t0 = 1_764_633_600_000;
    let mut fired = Vec::new();
    for m in 0..4 {
        fired.extend(air.apply(&co2(t0 + m * 60_000, 1200.0)));
    }
    air.apply(&IndoorUpdate {
        sensor: AIR_CO2,
        at_ms: t0 + 4 * 60_000,
        samples: 0,
        measurement: IndoorMeasurement::Warming,
    });
    assert_eq!(air.indoor.co2, None);
    for m in 5..10 {
        fired.extend(air.apply(&co2(t0 + m * 60_000, 1200.0)));
    }
    assert!(fired.is_empty(), "{fired:?}");
    fired.extend(air.apply(&co2(t0 + 10 * 60_000, 1200.0)));
    assert_eq!(fired.len(), 1);
    assert!(matches!(fired[0], (Pollutant::Co2, Transition::Exceeded { since_ms, .. }) if since_ms == t0 + 5 * 60_000));
}

/// An event the database refuses (as a full disk does) waits in memory and goes in with the
/// next telemetry once writes work again: not lost, not doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_waits_and_goes_in_later() {
    let start = now_ms() - 30 * 60_000;
    let r = rig(Duration::from_millis(50), clean_outside(now_ms() - 600_000));
    r.outbox.store().lock().expect("lock").pragma_update(None, "query_only", true).expect("pragma");
    for m in 0..7 {
        r.indoor.send(co2(start + m * 60_000, 1500.0)).await.expect("send");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rows(&r.outbox).is_empty(), "nothing written while refused");
    r.outbox.store().lock().expect("lock").pragma_update(None, "query_only", false).expect("pragma");
    wait("the waiting event", || of_kind(&r.outbox, EVENT_KIND).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(of_kind(&r.outbox, EVENT_KIND).len(), 1, "written once");
    assert_eq!(r.outbox.health().events_lost.load(Ordering::Relaxed), 0);
}

/// Everything a subscriber receives on `filters` until `done` says it has enough (or `wait`).
async fn subscribe(
    port: u16,
    filters: Vec<String>,
    wait: Duration,
    mut done: impl FnMut(&[(String, bool, Value)]) -> bool,
) -> Vec<(String, bool, Value)> {
    use dolbom_mqtt::{BrokerConfig, Protocol, Session, SessionEvent};
    let broker = BrokerConfig { port, ..BrokerConfig::default() };
    let id = format!("h3-air-sub-{}-{}", std::process::id(), now_ms());
    let mut session = Session::new(Protocol::V5, &broker.connect_options(&id));
    let mut got = Vec::new();
    let until = tokio::time::Instant::now() + wait;
    while !done(&got) {
        match tokio::time::timeout_at(until, session.poll()).await {
            Err(_) => break,
            Ok(Err(e)) => panic!("subscriber: {e}"),
            Ok(Ok(SessionEvent::Connected)) => {
                for f in &filters {
                    session.subscribe(f).expect("subscribe");
                }
            }
            Ok(Ok(SessionEvent::Message { topic, payload, retain, .. })) if !payload.is_empty() => {
                got.push((topic, retain, serde_json::from_slice(&payload).expect("json")));
            }
            Ok(Ok(_)) => {}
        }
    }
    session.disconnect();
    got
}

/// The real publisher and the machine's broker: a subscriber sees exactly one "exceeded" and
/// one "recovered", and one that comes later gets the newest telemetry, retained; Home
/// Assistant's configs are retained there too. Retained messages are cleared at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_real_broker_events_once_and_the_newest_telemetry_retained() {
    use crate::outbox::{PublishConfig, Publisher};
    let port = std::env::var("DOLBOM_TEST_MQTT_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(1883);
    let center = format!("h3test{}", std::process::id());
    let site =
        crate::site::SiteConfig { center_id: center.clone(), kiosk_id: "door-1".into(), timezone: "Asia/Seoul".into() }
            .build()
            .expect("site");
    let dir = tempfile::tempdir().expect("tempdir");
    let health = Arc::new(Health::default());
    let store = Arc::new(Store::open(&dir.path().join("k.db")).expect("store"));
    let outbox = Outbox::new(store, 1000, health.clone()).expect("outbox");
    let prefix = format!("h3test-ha-{}", std::process::id());
    let ha = crate::air::HomeAssistantConfig { enabled: true, discovery_prefix: prefix.clone() };
    let announced = crate::air::homeassistant::announce(&ha, &site, &outbox, now_ms()).expect("announce");

    let mut stage = AirStage::new(site.clone(), outbox.clone(), AirLimitsConfig::default(), 3_600_000);
    stage.interval = Duration::from_millis(30);
    let (indoor, indoor_rx) = mpsc::channel(64);
    let (_outdoor, outdoor_rx) = watch::channel(clean_outside(now_ms() - 600_000));
    let shutdown = Shutdown::new();
    let stage = tokio::spawn(stage.run(indoor_rx, outdoor_rx, shutdown.clone()));
    let publisher = Publisher {
        broker: dolbom_mqtt::BrokerConfig { port, ..Default::default() },
        config: PublishConfig::default(),
        site: site.clone(),
        outbox: outbox.clone(),
        health: health.clone(),
        status_file: None,
        commands: None,
    };
    let (done_tx, done_rx) = watch::channel(false);
    let publisher = tokio::spawn(publisher.run(done_rx));

    let events_topic = site.topics.air_event();
    // Listens for longer than the flapping lasts: a third event would be caught.
    let live = tokio::spawn(subscribe(port, vec![events_topic.clone()], Duration::from_secs(6), |_| false));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = now_ms() - 60 * 60_000;
    let values: Vec<f32> = (0..10)
        .map(|m| if m % 2 == 0 { 37.0 } else { 34.0 })
        .chain([50.0; 8])
        .chain([20.0; 8])
        .chain((0..10).map(|m| if m % 2 == 0 { 37.0 } else { 30.0 }))
        .collect();
    for (m, v) in values.iter().enumerate() {
        indoor.send(particles(start + m as i64 * 60_000, *v)).await.expect("send");
    }
    let events = live.await.expect("subscriber");
    let states: Vec<(&str, bool)> = events.iter().map(|(_, r, e)| (e["state"].as_str().unwrap_or(""), *r)).collect();
    assert_eq!(states, [("exceeded", false), ("recovered", false)]);
    // Let telemetry flow for a while, then stop everything and read what the broker kept.
    indoor.send(particles(now_ms(), 12.0)).await.expect("send");
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.trigger();
    stage.await.expect("stage");
    done_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(20), publisher).await.expect("publisher drains").expect("task");
    assert_eq!(outbox.depth().expect("depth"), 0, "everything delivered");

    let telemetry_topic = site.topics.air_telemetry();
    let ha_filter = format!("{prefix}/#");
    let kept =
        subscribe(port, vec![telemetry_topic.clone(), ha_filter], Duration::from_secs(20), |got| got.len() > announced)
            .await;
    let telemetry: Vec<&Value> = kept.iter().filter(|(t, _, _)| *t == telemetry_topic).map(|(_, _, v)| v).collect();
    assert_eq!(telemetry.len(), 1);
    assert_eq!(telemetry[0]["indoor"]["pm25"]["value"], 12.0, "the newest: {}", telemetry[0]);
    let configs = kept.iter().filter(|(t, r, _)| *r && t.starts_with(&prefix)).count();
    assert_eq!(configs, announced);

    // Leave the shared broker as it was: clear what this test retained.
    use dolbom_mqtt::{Outgoing5, Protocol, Session, SessionEvent};
    let mut cleaner = Session::new(
        Protocol::V5,
        &dolbom_mqtt::BrokerConfig { port, ..Default::default() }.connect_options(&format!("{center}-clean")),
    );
    let topics: Vec<String> = kept.iter().map(|(t, _, _)| t.clone()).chain([site.topics.status()]).collect();
    let mut acked = 0;
    while acked < topics.len() {
        match tokio::time::timeout(Duration::from_secs(10), cleaner.poll()).await {
            Ok(Ok(SessionEvent::Connected)) => {
                for t in &topics {
                    let clear = Outgoing5 {
                        topic: t.clone(),
                        payload: Vec::new(),
                        retain: true,
                        expiry_secs: None,
                        user_properties: Vec::new(),
                    };
                    cleaner.publish(&clear).expect("clear");
                }
            }
            Ok(Ok(SessionEvent::Acked { .. })) => acked += 1,
            Ok(Ok(_)) => {}
            other => panic!("cleaning up: {other:?}"),
        }
    }
    cleaner.disconnect();
}

/// A restart in the middle of an excursion: the new stage does not raise it again, and it tells
/// the recovery when it comes.
#[tokio::test]
async fn an_excursion_survives_a_restart_and_recovers_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("k.db");
    let start = |outbox: Outbox| {
        let stage = AirStage::new(site(), outbox, AirLimitsConfig::default(), 3_600_000);
        let (indoor_tx, indoor_rx) = mpsc::channel(64);
        let (_outdoor_tx, outdoor_rx) = watch::channel(OutdoorAir::default());
        let shutdown = Shutdown::new();
        let task = tokio::spawn(stage.run(indoor_rx, outdoor_rx, shutdown.clone()));
        (indoor_tx, shutdown, task, _outdoor_tx)
    };
    let open = || {
        let store = Arc::new(Store::open(&db).expect("store"));
        Outbox::new(store, 1000, Arc::new(Health::default())).expect("outbox")
    };
    let states = |outbox: &Outbox| -> Vec<String> {
        of_kind(outbox, EVENT_KIND).iter().map(|e| e["state"].as_str().unwrap_or("?").to_string()).collect()
    };
    let t0 = now_ms() - 3_600_000;
    let minute = 60_000;

    let outbox = open();
    let (indoor, shutdown, task, _keep) = start(outbox.clone());
    for m in 0..7 {
        indoor.send(co2(t0 + m * minute, 1400.0)).await.expect("send");
    }
    wait("the excursion", || states(&outbox) == ["exceeded"]).await;
    shutdown.trigger();
    task.await.expect("stage");
    drop(outbox);

    let outbox = open();
    let (indoor, shutdown, task, _keep) = start(outbox.clone());
    // Still high after the restart: nothing new. Then low for six minutes: one recovery.
    for m in 7..14 {
        indoor.send(co2(t0 + m * minute, 1400.0)).await.expect("send");
    }
    for m in 14..21 {
        indoor.send(co2(t0 + m * minute, 600.0)).await.expect("send");
    }
    wait("the recovery", || states(&outbox).len() >= 2).await;
    shutdown.trigger();
    task.await.expect("stage");
    assert_eq!(states(&outbox), ["exceeded", "recovered"]);
    let conn = outbox.store().lock().expect("store");
    let left: i64 = conn.query_row("SELECT COUNT(*) FROM air_excursions", [], |r| r.get(0)).expect("count");
    assert_eq!(left, 0, "nothing exceeded any more");
}

//! Relay throughput and latency: events published to Mosquitto → `dolbom relay` (durable dedupe)
//! → a webhook gateway double on loopback.
//!
//!     cargo bench --bench relay                                  # 1,000 events, one relay, SQLite
//!     cargo bench --bench relay -- --quick                       # 100 events (CI)
//!     cargo bench --bench relay -- --postgres --relays 2         # two relays sharing PostgreSQL
//!     cargo bench --bench relay -- --gateway-ms 100              # a gateway that takes 100 ms to answer
//!
//! Prints sustained events/s (first publish to last text at the gateway) and p50/p99 latency from
//! an event's publish to its gateway request. One guardian per child, so one text per event.
//! PostgreSQL is the test server (`DOLBOM_TEST_POSTGRES`, else the `dolbom_test` role scripts/test.sh
//! creates), in a scratch database.

#[path = "../tests/common/gateway.rs"]
mod gateway;
#[path = "../tests/common/postgres.rs"]
mod postgres_db;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rumqttc::{MqttOptions, QoS};

/// Event ids are UUIDs, as the contract has them; the last group numbers the bench's events.
const EVENT_ID_PREFIX: &str = "01b00000-0000-7000-8000-";

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(default)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let use_postgres = std::env::args().any(|a| a == "--postgres");
    let n: usize = arg("--events", if quick { 100 } else { 1000 });
    let relays: usize = arg("--relays", 1);
    let gateway_ms: u64 = arg("--gateway-ms", 0);
    let senders: usize = arg("--senders", 4);
    assert!(relays == 1 || use_postgres, "several relays share a store: add --postgres");
    let keep = std::env::var_os("DOLBOM_BENCH_KEEP").is_some();
    let dir = tempfile::tempdir().expect("tempdir");
    if keep {
        eprintln!("work dir: {}", dir.path().display());
    }
    let gw = gateway::Gateway::start();
    gw.answer_by_default(gateway::Reply { delay: Duration::from_millis(gateway_ms), ..gateway::Reply::ok() });
    let db = use_postgres.then(postgres_db::TempDb::create);
    let center = format!("bench{}", std::process::id());
    let mut directory = format!("[[center]]\nid = \"{center}\"\nname = \"햇살어린이집\"\nsender = \"0212345678\"\n");
    for i in 0..50 {
        directory.push_str(&format!(
            "\n[[child]]\nid = \"c{i}\"\ncenter = \"{center}\"\nname = \"아이{i}\"\n[[child.guardian]]\nname = \"g{i}\"\nphone = \"0101234{i:04}\"\nnotify = [\"arrival\"]\n"
        ));
    }
    std::fs::write(dir.path().join("directory.toml"), directory).expect("directory");
    let store = match &db {
        Some(db) => format!("{}share_group = \"bench-{center}\"", postgres_db::relay_keys(&db.params(), dir.path())),
        None => "database = \"relay.db\"".into(),
    };
    let mut running: Vec<Child> = (0..relays)
        .map(|r| {
            let config = dir.path().join(format!("relay{r}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[mqtt]\nclient_id = \"bench-relay-{center}-{r}\"\n\n[relay]\ntopics = [\"dolbom/v1/{center}/+/event/attendance\"]\n{store}\ndirectory = \"directory.toml\"\nrate_limit_per_hour = 100000\nsenders = {senders}\n\n[provider]\nkind = \"webhook\"\nurl = \"{}/send\"\n",
                    gw.url()
                ),
            )
            .expect("config");
            let log = dir.path().join(format!("relay{r}.log"));
            let child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
                .args(["relay", "--config"])
                .arg(&config)
                .env("DOLBOM_LOG", "warn,dolbom_relay=info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log"))
                .spawn()
                .expect("relay");
            let until = Instant::now() + Duration::from_secs(20);
            while !std::fs::read_to_string(&log).unwrap_or_default().contains("subscribed") {
                assert!(Instant::now() < until, "relay did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            child
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // Publish from one client as fast as the broker acknowledges, remembering each send time.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut sent_at: Vec<SystemTime> = Vec::with_capacity(n);
    let started = Instant::now();
    rt.block_on(async {
        let mut opts = MqttOptions::new(format!("bench-pub-{center}"), "127.0.0.1", 1883);
        opts.set_inflight(100);
        let (client, mut el) = rumqttc::AsyncClient::new(opts, 200);
        let poller = tokio::spawn(async move { while el.poll().await.is_ok() {} });
        for i in 0..n {
            let payload = serde_json::json!({
                "schema": "dolbom.attendance/1", "event_id": format!("{EVENT_ID_PREFIX}{i:012}"), "center": center, "kiosk": "k",
                "ts": jiff::Timestamp::now().to_string(), "kind": "arrival",
                "person": {"id": format!("c{}", i % 50), "role": "child"}, "confidence": 0.9,
                "temperature_c": null, "temperature_status": "screening_off", "method": "face",
            });
            sent_at.push(SystemTime::now());
            client
                .publish(format!("dolbom/v1/{center}/k/event/attendance"), QoS::AtLeastOnce, false, payload.to_string())
                .await
                .expect("publish");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        poller.abort();
    });
    let until = Instant::now() + Duration::from_secs(120);
    while gw.received().len() < n {
        assert!(Instant::now() < until, "only {} of {n} texts arrived", gw.received().len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let received_at = gw.received_at();
    for relay in &mut running {
        let _ = Command::new("kill").arg("-TERM").arg(relay.id().to_string()).status();
        let _ = relay.wait();
    }

    let mut latencies: Vec<f64> = gw
        .received()
        .iter()
        .zip(&received_at)
        .filter_map(|(r, at)| {
            let i: usize = r.body["event_id"].as_str()?.strip_prefix(EVENT_ID_PREFIX)?.parse().ok()?;
            Some(at.duration_since(sent_at[i]).ok()?.as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "relay ({relays} × {}, {senders} senders each, gateway answers in {gateway_ms} ms): {n} events → {} texts in {elapsed:.2} s = {:.0} events/s sustained",
        if use_postgres { "PostgreSQL" } else { "SQLite" },
        gw.received().len(),
        n as f64 / elapsed
    );
    println!(
        "publish → gateway request latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

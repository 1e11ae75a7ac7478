//! Real MQTT for the tests: the machine's Mosquitto on 127.0.0.1:1883, or a private Mosquitto
//! on a free port that a test can stop, freeze and restart; and a subscriber that records
//! everything it receives.
//!
//! `DOLBOM_TEST_TLS=1` runs the same tests over TLS: the "system" broker is then a Mosquitto of
//! this test binary's own with a TLS listener only (a CA and a certificate for 127.0.0.1 made by
//! `openssl` in a temporary directory), private brokers listen with TLS too, the tests' own
//! clients trust that CA, and every daemon config the tests write gets `[mqtt.tls]` from
//! [`tls_toml`].
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rumqttc::{Event, Incoming, MqttOptions, QoS};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Whether the tests run over TLS (`DOLBOM_TEST_TLS=1`).
pub fn tls_on() -> bool {
    std::env::var("DOLBOM_TEST_TLS").is_ok_and(|v| v == "1")
}

/// The TLS side of a test binary under `DOLBOM_TEST_TLS=1`: the CA directory, the client
/// settings that trust it, and the binary's own TLS Mosquitto standing in for the system one.
struct TlsEnv {
    dir: PathBuf,
    client: rumqttc::TlsConfiguration,
    port: u16,
    /// The shell holding that Mosquitto, and its stdin: closing it (when the test binary exits)
    /// stops the broker and removes `dir`.
    _lifeline: Mutex<(Child, ChildStdin)>,
}

fn tls_env() -> &'static TlsEnv {
    static ENV: OnceLock<TlsEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("dolbom-test-tls").tempdir().expect("tempdir").keep();
        super::tls::make_ca(&dir, "ca");
        super::tls::make_leaf_for(&dir, "ca", "broker", "localhost", "DNS:localhost,IP:127.0.0.1");
        // The product's own TLS settings (crates/mqtt/src/tls.rs), trusting the test CA.
        let client = dolbom_mqtt::TlsConfig { ca_file: Some(dir.join("ca.crt")), ..Default::default() }
            .client_config("127.0.0.1", &dir)
            .expect("the test CA loads");
        let client = rumqttc::TlsConfiguration::Rustls(client);
        let port = free_port();
        std::fs::write(
            dir.join("system.conf"),
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{}", tls_listener_lines(&dir)),
        )
        .expect("mosquitto.conf");
        // Statics are never dropped: a shell holds the broker and ends it, and the directory,
        // when this process's end of its stdin closes, however the test binary exits.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"mosquitto -c "$1/system.conf" 2>"$1/system.log" & m=$!; read -r _; kill $m; wait $m; rm -rf "$1""#)
            .arg("sh")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("sh");
        let lifeline = child.stdin.take().expect("stdin");
        wait_for_port(port, Duration::from_secs(10));
        TlsEnv { dir, client, port, _lifeline: Mutex::new((child, lifeline)) }
    })
}

/// A Mosquitto listener's TLS lines with the test CA's broker certificate.
fn tls_listener_lines(dir: &Path) -> String {
    // As root, Mosquitto would drop to its own user, who cannot read the private key here.
    format!("cafile {d}/ca.crt\ncertfile {d}/broker.crt\nkeyfile {d}/broker.key\nuser root\n", d = dir.display())
}

/// The `[mqtt.tls]` table every daemon config a test writes ends its `[mqtt]` section with;
/// empty without `DOLBOM_TEST_TLS=1`.
pub fn tls_toml() -> String {
    if tls_on() {
        format!("\n[mqtt.tls]\nca_file = \"{}\"\n", tls_env().dir.join("ca.crt").display())
    } else {
        String::new()
    }
}

/// Options for a test's own rumqttc client on `port`, over TLS under `DOLBOM_TEST_TLS=1`.
pub fn mqtt_options(client_id: String, port: u16) -> MqttOptions {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    if tls_on() {
        opts.set_transport(rumqttc::Transport::Tls(tls_env().client.clone()));
    }
    opts
}

/// The shared broker the machine runs (scripts/setup.sh starts one if missing); under
/// `DOLBOM_TEST_TLS=1`, this test binary's TLS Mosquitto.
pub fn system_broker_port() -> u16 {
    if tls_on() {
        return tls_env().port;
    }
    std::env::var("DOLBOM_TEST_MQTT_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(1883)
}

/// A private Mosquitto with persistence, so queued messages for a persistent subscriber survive
/// a broker restart.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    pub fn start(dir: &Path) -> Self {
        let mut b = Broker { port: free_port(), dir: dir.to_path_buf(), child: None };
        let tls = if tls_on() { tls_listener_lines(&tls_env().dir) } else { String::new() };
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n{tls}",
                b.port,
                dir.display()
            ),
        )
        .expect("mosquitto.conf");
        b.resume_process();
        b
    }

    fn resume_process(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (scripts/setup.sh)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10));
    }

    /// Stops the broker cleanly (it saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "TERM");
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.resume_process();
    }

    /// Freezes the broker: connections stay open but nothing is answered.
    pub fn pause(&self) {
        if let Some(c) = &self.child {
            signal(c.id(), "STOP");
        }
    }

    pub fn unpause(&self) {
        if let Some(c) = &self.child {
            signal(c.id(), "CONT");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.unpause();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

pub fn wait_for_port(port: u16, timeout: Duration) {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: serde_json::Value,
    pub retained: bool,
}

/// Subscribes with a persistent session (QoS 1) and keeps reconnecting; records every message.
pub struct Subscriber {
    pub messages: Arc<Mutex<Vec<Received>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Subscriber {
    pub fn start(port: u16, filter: &str) -> Self {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let subscribed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m, s, sub, filter) = (messages.clone(), stop.clone(), subscribed.clone(), filter.to_string());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let mut opts = mqtt_options(format!("test-sub-{}", free_port()), port);
                // Big enough for the poison the soak floods commands with (rumqttc's 10 KiB
                // default would end this subscriber's connection on every one).
                opts.set_clean_session(false)
                    .set_keep_alive(Duration::from_secs(5))
                    .set_max_packet_size(8 << 20, 8 << 20);
                let (client, mut el) = rumqttc::AsyncClient::new(opts, 100);
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(200), el.poll()).await {
                        Ok(Ok(Event::Incoming(Incoming::ConnAck(_)))) => {
                            let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                        }
                        Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => {
                            sub.store(true, std::sync::atomic::Ordering::Relaxed)
                        }
                        Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                            let payload = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                            if let Ok(mut v) = m.lock() {
                                v.push(Received { topic: p.topic.clone(), payload, retained: p.retain });
                            }
                        }
                        Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
                        _ => {}
                    }
                }
            });
        });
        let until = Instant::now() + Duration::from_secs(10);
        while !subscribed.load(std::sync::atomic::Ordering::Relaxed) {
            assert!(Instant::now() < until, "subscriber could not subscribe on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Subscriber { messages, stop }
    }

    pub fn snapshot(&self) -> Vec<Received> {
        self.messages.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Messages whose topic ends with `suffix`.
    pub fn on(&self, suffix: &str) -> Vec<Received> {
        self.snapshot().into_iter().filter(|m| m.topic.ends_with(suffix)).collect()
    }

    /// Waits until `pred` holds for the messages received so far.
    pub fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&[Received]) -> bool) {
        let until = Instant::now() + timeout;
        loop {
            if pred(&self.snapshot()) {
                return;
            }
            assert!(Instant::now() < until, "timed out waiting for {what}; received: {:#?}", self.snapshot());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Publishes one QoS 1 message and waits for the broker's acknowledgement.
pub fn publish(port: u16, topic: &str, payload: &[u8]) {
    send(port, topic, payload, false)
}

/// Clears what is retained on `topic` (an empty retained message), acknowledged.
pub fn clear_retained(port: u16, topic: &str) {
    send(port, topic, b"", true)
}

fn send(port: u16, topic: &str, payload: &[u8], retain: bool) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let (client, mut el) = rumqttc::AsyncClient::new(mqtt_options(format!("test-pub-{}", free_port()), port), 10);
        client.publish(topic, QoS::AtLeastOnce, retain, payload.to_vec()).await.expect("queue publish");
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < until, "no PUBACK for {topic}");
            if let Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) =
                tokio::time::timeout(Duration::from_secs(1), el.poll()).await
            {
                break;
            }
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_millis(300), el.poll()).await;
    });
}

//! Real MQTT for the tests: the machine's Mosquitto on 127.0.0.1:1883, or a private Mosquitto
//! on a free port that a test can stop, freeze and restart; and a subscriber that records
//! everything it receives.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Event, Incoming, MqttOptions, QoS};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The shared broker the machine runs (scripts/setup.sh starts one if missing).
pub fn system_broker_port() -> u16 {
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
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n",
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
                let mut opts = MqttOptions::new(format!("test-sub-{}", free_port()), "127.0.0.1", port);
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
        let (client, mut el) =
            rumqttc::AsyncClient::new(MqttOptions::new(format!("test-pub-{}", free_port()), "127.0.0.1", port), 10);
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

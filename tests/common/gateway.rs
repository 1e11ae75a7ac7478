//! A real HTTP server on loopback playing the SMS gateway: records every request and answers
//! from a script (status, Retry-After, delay), defaulting to 200. Started with a check, it first
//! refuses what the real gateway would refuse (a header or signature not as documented).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn ok() -> Self {
        Reply { status: 200, retry_after: None, delay: Duration::ZERO, body: "{}".into() }
    }
    pub fn status(status: u16) -> Self {
        Reply { status, ..Reply::ok() }
    }
}

/// What the real gateway refuses before it looks at the message, as its answer.
pub type Check = Arc<dyn Fn(&Request) -> Option<Reply> + Send + Sync>;

pub struct Gateway {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// When each request was read, in the same order.
    pub times: Arc<Mutex<Vec<std::time::SystemTime>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// The answer once the script has run out.
    default: Arc<Mutex<Reply>>,
}

impl Gateway {
    pub fn start() -> Self {
        Self::start_checking(Arc::new(|_: &Request| None))
    }

    /// NHN Cloud SMS v3.0: the documented `Content-Type: application/json;charset=UTF-8` and an
    /// `X-Secret-Key`, or 400/401 as NHN answers them.
    pub fn nhn() -> Self {
        Self::start_checking(Arc::new(|r: &Request| {
            let content_type = r.header("Content-Type").unwrap_or("").replace(' ', "").to_ascii_lowercase();
            if content_type != "application/json;charset=utf-8" {
                return Some(Reply {
                    body: format!(r#"{{"error":"Content-Type {content_type}"}}"#),
                    ..Reply::status(400)
                });
            }
            r.header("X-Secret-Key").is_none().then(|| Reply::status(401))
        }))
    }

    /// Solapi v4: `HMAC-SHA256 apiKey=…, date=…, salt=…, signature=…` with `secret`, the date
    /// in ISO 8601 as its SDKs write it (at most microseconds) and within 15 minutes of now, or
    /// 401 as Solapi answers a bad signature. (The signature is checked with the relay's own
    /// function, so only where the relay is built.)
    #[cfg(feature = "relay")]
    pub fn solapi(secret: &'static str) -> Self {
        Self::start_checking(Arc::new(move |r: &Request| {
            let refuse = |why: &str| Some(Reply { body: format!(r#"{{"errorCode":"{why}"}}"#), ..Reply::status(401) });
            let auth = r.header("Authorization").unwrap_or("");
            let Some(fields) = auth.strip_prefix("HMAC-SHA256 ") else { return refuse("InvalidAuthType") };
            let field = |name: &str| {
                fields.split(", ").find_map(|p| p.strip_prefix(&format!("{name}="))).unwrap_or("").to_string()
            };
            let date = field("date");
            let fraction = date.split_once('.').map_or(0, |(_, f)| f.chars().take_while(char::is_ascii_digit).count());
            let Ok(at) = date.parse::<jiff::Timestamp>() else { return refuse("InvalidDate") };
            let skew = (jiff::Timestamp::now().as_millisecond() - at.as_millisecond()).abs();
            if fraction > 6 || skew > 15 * 60_000 {
                return refuse("RequestTimeTooSkewed");
            }
            let want = dolbom_relay::provider::solapi_signature(secret, &date, &field("salt"));
            (field("apiKey").is_empty() || field("signature") != want)
                .then(|| refuse("SignatureDoesNotMatch"))
                .flatten()
        }))
    }

    pub fn start_checking(check: Check) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let times: Arc<Mutex<Vec<std::time::SystemTime>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let default = Arc::new(Mutex::new(Reply::ok()));
        let (r, s, tm, d) = (requests.clone(), script.clone(), times.clone(), default.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, s, tm, d, check) = (r.clone(), s.clone(), tm.clone(), d.clone(), check.clone());
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let (method, path) =
                            (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
                        let mut headers = Vec::new();
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                            if let Some((k, v)) = h.trim_end().split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    len = v.trim().parse().unwrap_or(0);
                                }
                                headers.push((k.trim().to_string(), v.trim().to_string()));
                            }
                        }
                        let mut body = vec![0u8; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let request = Request {
                            method,
                            path,
                            headers,
                            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                        };
                        // A request the real gateway would refuse does not use up the script.
                        let reply = check(&request).unwrap_or_else(|| {
                            let next = s.lock().expect("script").pop_front();
                            next.unwrap_or_else(|| d.lock().expect("default").clone())
                        });
                        // One lock order for both lists keeps them aligned.
                        let mut requests = r.lock().expect("requests");
                        tm.lock().expect("times").push(std::time::SystemTime::now());
                        requests.push(request);
                        drop(requests);
                        std::thread::sleep(reply.delay);
                        let retry = reply.retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
                        let resp = format!(
                            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{retry}\r\n{}",
                            reply.status,
                            reply.body.len(),
                            reply.body
                        );
                        if stream.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Gateway { port, requests, times, script, default }
    }

    /// How the gateway answers once the script has run out (a real gateway's latency, say).
    pub fn answer_by_default(&self, reply: Reply) {
        *self.default.lock().expect("default") = reply;
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("script").extend(replies);
    }

    pub fn received(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }

    pub fn received_at(&self) -> Vec<std::time::SystemTime> {
        self.times.lock().expect("times").clone()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

//! What the console's tests share: a config on a temporary directory, the pages served on
//! loopback behind a stand-in for the session layer, a plain HTTP client, kiosk payloads.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use dolbom_contract::{
    AttendanceEvent, AttendanceKind, CheckInMethod, ConsentState, PersonRef, Role, Roster, RosterEntry,
    TemperatureStatus,
};

use super::Center;
use crate::lang::Lang;
use crate::web::{App, Staff};
use crate::ConsoleConfig;

pub const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// A center id no other test (or run) uses, so retained messages and sessions do not meet.
pub fn center_id() -> String {
    format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[16..])
}

pub fn config(dir: &Path, center: &str, port: u16, answer_secs: u64) -> ConsoleConfig {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("console.key");
    std::fs::write(&key, KEY).expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = format!(
        "[site]\ncenter_id = \"{center}\"\ntimezone = \"Asia/Seoul\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nreconnect_initial_ms = 100\nreconnect_max_ms = 1000\n\
         [commands]\nkey_id = \"console\"\nkey_file = \"{}\"\nanswer_timeout_secs = {answer_secs}\n\
         [state]\ndir = \"{}\"\nkeep_days = 30\n\
         [web]\nusers_file = \"{}\"\n\
         [[classes]]\nname = \"해님반\"\nchildren = [\"minji\"]\n",
        key.display(),
        dir.join("state").display(),
        dir.join("no-users.toml").display()
    );
    let config: ConsoleConfig = toml::from_str(&text).expect("config parses");
    config.validate().expect("config is valid");
    config
}

/// The center without a broker: commands go nowhere and are not answered.
pub fn offline(config: ConsoleConfig) -> Arc<Center> {
    let (center, rx) = Center::open(Arc::new(config)).expect("center opens");
    drop(rx);
    center
}

pub fn staff() -> Staff {
    Staff {
        id: "kim".into(),
        name: "김선생".into(),
        csrf: "token".into(),
        lang: Lang::Ko,
        center: "햇살어린이집".into(),
        here: "/".into(),
    }
}

/// The pages on a loopback port, every request coming from [`staff`] (as the session layer
/// would put them in the request).
pub async fn serve(center: Arc<Center>) -> SocketAddr {
    let config = center.config.clone();
    let auth = crate::auth::Auth::open(&config).expect("auth");
    let app = App { config, auth: Arc::new(auth), center };
    let router = crate::web::pages::router().layer(axum::Extension(staff())).with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(60))).expect("timeout");
        s.write_all(request.as_bytes()).expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut bytes = raw[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            bytes = dechunk(&bytes);
        }
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
        Reply { status, body: String::from_utf8_lossy(&bytes).into_owned(), head, bytes }
    })
    .await
    .expect("http task")
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

pub fn attendance(
    center: &str,
    kiosk: &str,
    person: &str,
    ts: &str,
    kind: AttendanceKind,
    t: Option<f32>,
) -> AttendanceEvent {
    AttendanceEvent {
        schema: dolbom_contract::ATTENDANCE_SCHEMA.into(),
        event_id: dolbom_contract::new_event_id(),
        center: center.into(),
        kiosk: kiosk.into(),
        ts: ts.into(),
        kind,
        person: PersonRef { id: person.into(), role: Role::Child },
        confidence: 0.93,
        temperature_c: t,
        temperature_status: if t.is_some() { TemperatureStatus::Normal } else { TemperatureStatus::NotMeasured },
        temperature_site: None,
        method: if t.is_some() { CheckInMethod::Face } else { CheckInMethod::Staff },
    }
}

pub fn roster(center: &str, kiosk: &str, people: &[(&str, &str, bool, ConsentState)]) -> Roster {
    Roster {
        schema: dolbom_contract::ROSTER_SCHEMA.into(),
        center: center.into(),
        kiosk: kiosk.into(),
        ts: jiff::Timestamp::now().to_string(),
        people: people
            .iter()
            .map(|&(id, name, face, consent)| RosterEntry {
                id: id.into(),
                name: name.into(),
                role: Role::Child,
                face,
                tags: 0,
                pin: false,
                consent,
            })
            .collect(),
    }
}

/// Now, as a kiosk writes it.
pub fn now_ts() -> String {
    dolbom_contract::rfc3339(jiff::Timestamp::now(), &jiff::tz::TimeZone::get("Asia/Seoul").expect("tz"))
}

//! The staff console for tests: a config in a temporary directory (the system broker unless
//! told otherwise, a center id of its own), accounts added through the real `dolbom console
//! passwd`, `dolbom console` started as a child on a free port (killed on drop), and raw
//! loopback HTTP with cookies, forms and headers as a browser sends them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::http::{self, Response};

/// What differs between the tests' consoles.
#[derive(Debug, Clone)]
pub struct ConsoleSetup {
    pub broker_port: u16,
    /// Lines added to `[web]`, e.g. `login_attempts = 3`.
    pub web: String,
    /// HTTPS with a certificate for 127.0.0.1 and `localhost` from a fresh test CA (`ca.crt`).
    pub tls: bool,
}

impl Default for ConsoleSetup {
    fn default() -> Self {
        ConsoleSetup { broker_port: 1883, web: String::new(), tls: false }
    }
}

pub struct Console {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
    pub center: String,
    pub tls: bool,
    child: Option<Child>,
}

/// A session: the cookie to send (`dolbom_session=…`) and the token its forms carry.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub cookie: String,
    pub csrf: String,
}

/// Writes `console.toml` (and its signing key) into `dir`; returns its path and center id.
pub fn write_config(dir: &Path, port: u16, setup: &ConsoleSetup) -> (PathBuf, String) {
    let center = format!("console-{}", uuid::Uuid::now_v7().simple());
    let key = dir.join("console.key");
    std::fs::write(&key, "4f1c2a9e8d7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877\n").expect("key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    let tls = if setup.tls {
        super::tls::make_ca(dir, "ca");
        super::tls::make_leaf_for(dir, "ca", "web", "localhost", "DNS:localhost,IP:127.0.0.1");
        std::fs::set_permissions(dir.join("web.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod web.key");
        "[web.tls]\ncert = \"web.crt\"\nkey = \"web.key\"\n"
    } else {
        ""
    };
    let text = format!(
        "[site]\ncenter_id = \"{center}\"\nname = \"햇살어린이집\"\ntimezone = \"Asia/Seoul\"\n\
         [web]\nlisten = \"127.0.0.1:{port}\"\nusers_file = \"users.toml\"\n{web}\n{tls}\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\n{mqtt_tls}\n\
         [commands]\nkey_id = \"console\"\nkey_file = \"console.key\"\n\
         [state]\ndir = \"state\"\n",
        web = setup.web,
        broker = setup.broker_port,
        mqtt_tls = super::broker::tls_toml(),
    );
    let path = dir.join("console.toml");
    std::fs::write(&path, text).expect("write console.toml");
    (path, center)
}

/// `dolbom console passwd ID --name NAME` with `password` on stdin.
pub fn passwd(config: &Path, id: &str, name: &str, password: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["console", "passwd", "--config"])
        .arg(config)
        .args([id, "--name", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dolbom console passwd");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write password");
    child.wait_with_output().expect("passwd ends")
}

impl Console {
    /// Writes the config, adds the accounts (`(id, name, password)`), starts the console and
    /// waits until it answers.
    pub fn start(setup: ConsoleSetup, accounts: &[(&str, &str, &str)]) -> Console {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::broker::free_port();
        let (config, center) = write_config(dir.path(), port, &setup);
        for (id, name, pw) in accounts {
            let out = passwd(&config, id, name, pw);
            assert!(out.status.success(), "passwd {id}: {}", super::stderr(&out));
        }
        let log = std::fs::File::create(dir.path().join("console.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
            .args(["console", "--config"])
            .arg(&config)
            .env("DOLBOM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dolbom console");
        let mut console = Console { dir, config, port, center, tls: setup.tls, child: Some(child) };
        let until = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = console.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("dolbom console exited ({status}):\n{}", console.log());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(std::time::Instant::now() < until, "the console did not listen:\n{}", console.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        console
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One request with these headers (Host is added) and body; plain HTTP only.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the console");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("send head");
        stream.write_all(body).expect("send body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the answer");
        http::parse(&raw)
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
        self.send("GET", path, &headers, b"")
    }

    /// A form POST as a browser on this site sends it (its own Origin), with `cookie` if given.
    pub fn post(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Response {
        let origin = self.origin();
        self.post_from(path, cookie, fields, Some(&origin))
    }

    pub fn post_from(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Response {
        let body = form(fields);
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        self.send("POST", path, &headers, body.as_bytes())
    }

    /// Logs in; panics unless the console answers with a session cookie.
    pub fn login(&self, id: &str, password: &str) -> LoggedIn {
        let res = self.post("/login", None, &[("id", id), ("password", password), ("next", "/whoami")]);
        assert_eq!(res.status, 303, "login of {id}: {}", res.text());
        let cookie = session_cookie(&res).unwrap_or_else(|| panic!("no session cookie: {:?}", res.headers));
        let page = self.get("/", Some(&cookie));
        let csrf = csrf_of(&page.text()).unwrap_or_else(|| panic!("no csrf field on /: {}", page.text()));
        LoggedIn { cookie, csrf }
    }

    /// SIGTERM, then its exit status (None when it had been stopped already).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        super::broker::signal(c.id(), "TERM");
        c.wait().ok()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `a=1&b=2`, percent-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// `dolbom_session=…` from a response's Set-Cookie, when it sets a non-empty one.
pub fn session_cookie(res: &Response) -> Option<String> {
    set_cookies(res)
        .into_iter()
        .filter_map(|c| c.split(';').next().map(str::trim).map(str::to_string))
        .find(|c| c.starts_with("dolbom_session=") && c.len() > "dolbom_session=".len())
}

pub fn set_cookies(res: &Response) -> Vec<String> {
    res.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.clone()).collect()
}

/// The value of the first hidden `csrf` field in a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().map(str::to_string)
}

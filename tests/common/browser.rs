//! A real browser for tests: Debian's `chromedriver` on a free port driving headless Debian
//! `chromium` (a temporary profile, a fixed window), spoken to in W3C WebDriver over loopback
//! HTTP ([`super::http`]). Both are killed when the [`Browser`] is dropped. A missing browser
//! fails the test: CI installs it (`scripts/setup.sh --tests`).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The kiosk's 7-inch display, and the screenshots' size.
pub const WINDOW: (u32, u32) = (1024, 600);

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and opens a session in a new headless Chromium.
    pub fn start() -> Browser {
        for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install {package} (scripts/setup.sh --tests); browser tests do not skip"
            );
        }
        let port = super::broker::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: dropping the browser kills chromedriver and every Chromium
            // process it started, even when the session could not be closed.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut browser =
            Browser { driver, port, session: String::new(), _profile: tempfile::tempdir().expect("profile") };
        super::wait_until("chromedriver to listen", Duration::from_secs(20), || {
            http::request(port, "GET", "/status", None).is_ok_and(|r| r.json()["value"]["ready"] == true)
        });
        let mut args = vec![
            "--headless=new".to_string(),
            format!("--user-data-dir={}", browser._profile.path().display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            "--force-device-scale-factor=1".into(),
            "--hide-scrollbars".into(),
            "--lang=ko-KR".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
        ];
        // Chromium's sandbox cannot start as root (CI containers).
        if unsafe { libc::geteuid() } == 0 {
            args.push("--no-sandbox".into());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let session = browser.call("POST", "/session", Some(&caps));
        browser.session = session["sessionId"].as_str().expect("a session id").to_string();
        browser
    }

    /// One WebDriver command; its `value`. Panics with the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let r = http::request(self.port, method, path, body).unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let mut v = r.json();
        assert_eq!(r.status, 200, "WebDriver {method} {path}: {v}");
        v["value"].take()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({"url": url})));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.session_call("POST", "/execute/sync", Some(&json!({"script": script, "args": args})))
    }

    /// Runs `script` asynchronously: it ends by calling its last argument with the result
    /// (e.g. after a `fetch`), which is returned.
    pub fn run_async(&self, script: &str, args: Value) -> Value {
        self.session_call("POST", "/execute/async", Some(&json!({"script": script, "args": args})))
    }

    /// The visible text of the element `css`, or None when there is none.
    pub fn text(&self, css: &str) -> Option<String> {
        let v =
            self.run("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", json!([css]));
        v.as_str().map(str::to_string)
    }

    /// Waits until the text of `css` satisfies `want`, checking every 50 ms, and returns it.
    pub fn wait_text(&self, css: &str, what: &str, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + timeout;
        let mut last = None;
        loop {
            let text = self.text(css);
            if let Some(t) = text.as_deref().filter(|t| want(t)) {
                return t.to_string();
            }
            if Instant::now() > until {
                panic!(
                    "timed out after {timeout:?} waiting for {what} in `{css}`; last text: {text:?} (before: {last:?})"
                );
            }
            last = text;
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `script` (a function body) returns true in the page.
    pub fn wait_js(&self, script: &str, what: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while self.run(script, json!([])) != Value::Bool(true) {
            assert!(Instant::now() < until, "timed out after {timeout:?} waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Saves a PNG of the window.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.session_call("GET", "/screenshot", None);
        let png = decode_base64(b64.as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http::request(self.port, "DELETE", &format!("/session/{}", self.session), None);
        }
        // The whole group: chromedriver and whatever Chromium it left.
        let pgid = self.driver.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, c)| n | (value(*c) as u32) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

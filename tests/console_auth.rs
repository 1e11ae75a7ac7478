//! The staff console's doors: accounts, login, the login limit, sessions, CSRF and Origin
//! checks, logout, cookies, HTTPS, the accounts CLI, and one login in a real Chromium. Each test
//! runs its own `dolbom console` on loopback.
//!
//! `DOLBOM_SCREENSHOTS=docs/img` saves `console-login.png` (the refusal of a wrong password).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::browser::Browser;
use common::console::{self, Console, ConsoleSetup};
use serde_json::json;

const KIM: (&str, &str, &str) = ("kim", "김선생", "sunflower-seven-7");

fn start(web: &str) -> Console {
    Console::start(ConsoleSetup { web: web.into(), ..Default::default() }, &[KIM])
}

fn whoami(c: &Console, cookie: &str) -> (u16, String) {
    let r = c.get("/whoami", Some(cookie));
    (r.status, r.header("location").map(str::to_string).unwrap_or_else(|| r.text()))
}

#[test]
fn the_right_password_opens_a_session_with_a_strict_http_only_cookie() {
    let c = start("");
    let res = c.post("/login", None, &[("id", "kim"), ("password", KIM.2), ("next", "/whoami")]);
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(res.header("location"), Some("/whoami"));
    let set = console::set_cookies(&res);
    let session = set.iter().find(|s| s.starts_with("dolbom_session=")).expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: no Secure flag ({session})");
    let cookie = console::session_cookie(&res).expect("cookie");
    assert_eq!(whoami(&c, &cookie), (200, "kim".to_string()));

    // The page frame: the center, the staff member, the token in the logout form.
    let page = c.get("/", Some(&cookie));
    let html = page.text();
    assert!(html.contains("햇살어린이집") && html.contains("김선생"), "{html}");
    assert!(console::csrf_of(&html).is_some_and(|t| t.len() == 64), "{html}");
    for (h, want) in [
        ("content-security-policy", "default-src 'self'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert!(page.header(h).is_some_and(|v| v.contains(want)), "{h}: {:?}", page.header(h));
    }
    let css = c.get("/static/console.css", None);
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").is_some_and(|t| t.starts_with("text/css")));
    assert!(css.header("x-frame-options").is_some());

    // A login only ever sends staff to a path of this site.
    let res = c.post("/login", None, &[("id", "kim"), ("password", KIM.2), ("next", "//evil.example/x")]);
    assert_eq!((res.status, res.header("location")), (303, Some("/")));
}

#[test]
fn a_wrong_password_and_an_unknown_id_get_the_same_clear_refusal() {
    let c = start("");
    let wrong = c.post("/login", None, &[("id", "kim"), ("password", "sunflower-seven-8")]);
    let unknown = c.post("/login", None, &[("id", "nobody"), ("password", KIM.2)]);
    for (what, res) in [("wrong password", &wrong), ("unknown id", &unknown)] {
        assert_eq!(res.status, 401, "{what}");
        let text = res.text();
        assert!(
            text.contains("아이디 또는 비밀번호가 맞지 않습니다") && text.contains("The ID or password is wrong"),
            "{what}: {text}"
        );
        assert!(console::session_cookie(res).is_none(), "{what} set a session");
        assert!(text.contains("id=\"login-password\""), "{what}: the form is shown again");
    }
    assert!(c.log().contains("login refused"), "refusals are logged:\n{}", c.log());
}

#[test]
fn past_the_attempts_even_the_right_password_waits_for_the_window() {
    let c = start("login_attempts = 3\nlogin_window = \"3s\"");
    for _ in 0..3 {
        let res = c.post("/login", None, &[("id", "kim"), ("password", "guess-guess-guess")]);
        assert_eq!(res.status, 401);
    }
    let res = c.post("/login", None, &[("id", "kim"), ("password", KIM.2)]);
    assert_eq!(res.status, 429, "{}", res.text());
    let text = res.text();
    assert!(text.contains("틀린 비밀번호가 너무 많습니다") && text.contains("Too many wrong passwords"), "{text}");
    assert!(console::session_cookie(&res).is_none());
    assert!(res.header("retry-after").is_some());
    // Counted per client address too: this phone cannot go on guessing another account.
    let res = c.post("/login", None, &[("id", "lee"), ("password", "guess-guess-guess")]);
    assert_eq!(res.status, 429, "the address is held back as well");
    std::thread::sleep(Duration::from_millis(3300));
    let res = c.post("/login", None, &[("id", "kim"), ("password", KIM.2)]);
    assert_eq!(res.status, 303, "after the window: {}", res.text());
}

#[test]
fn an_idle_session_expires_and_is_sent_to_the_login_page() {
    let c = start("session_idle = \"2s\"");
    let s = c.login("kim", KIM.2);
    assert_eq!(whoami(&c, &s.cookie).0, 200);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(whoami(&c, &s.cookie).0, 200, "use refreshes the idle time");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(whoami(&c, &s.cookie).0, 200, "still within 2 s of the last use");
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(whoami(&c, &s.cookie), (303, "/login?next=/whoami".to_string()));
    // No session at all: the same.
    assert_eq!(c.get("/alerts?day=1", None).header("location"), Some("/login?next=/alerts%3Fday%3D1"));
    // A live page refreshing itself (console.js sends the header) does not keep the session alive.
    let s = c.login("kim", KIM.2);
    let refresh =
        |c: &Console| c.send("GET", "/whoami", &[("cookie", &s.cookie), ("x-dolbom-refresh", "1")], b"").status;
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(refresh(&c), 200, "within 2 s of the login");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(refresh(&c), 303, "the refresh 1.2 s ago did not count as use");
}

#[test]
fn forged_posts_change_nothing() {
    let c = start("");
    let s = c.login("kim", KIM.2);
    let alive = |why: &str| assert_eq!(whoami(&c, &s.cookie), (200, "kim".to_string()), "{why}");

    let res = c.post("/logout", None, &[("csrf", &s.csrf)]);
    assert_eq!(res.status, 403, "no session cookie");
    alive("after a POST without the cookie");

    let res = c.post("/logout", Some(&s.cookie), &[]);
    assert_eq!(res.status, 403, "no csrf field");
    assert!(res.text().contains("Reload the page"), "{}", res.text());
    alive("after a POST without csrf");

    let res = c.post("/logout", Some(&s.cookie), &[("csrf", &"0".repeat(64))]);
    assert_eq!(res.status, 403, "wrong csrf");
    alive("after a POST with a wrong csrf");

    let res = c.post_from("/logout", Some(&s.cookie), &[("csrf", &s.csrf)], Some("http://evil.example"));
    assert_eq!(res.status, 403, "foreign Origin");
    assert!(res.text().contains("another site"), "{}", res.text());
    alive("after a POST from another origin");

    let res = c.get("/logout", Some(&s.cookie));
    assert_ne!(res.status, 303, "GET changes nothing");
    alive("after GET /logout");

    // The real thing: the same form from this site.
    let res = c.post("/logout", Some(&s.cookie), &[("csrf", &s.csrf)]);
    assert_eq!((res.status, res.header("location")), (303, Some("/login")));
    assert!(console::set_cookies(&res).iter().any(|c| c.starts_with("dolbom_session=;") && c.contains("Max-Age=0")));
    assert_eq!(whoami(&c, &s.cookie).0, 303, "logout ended the session");
    // A POST without Origin (some browsers, scripts) is judged by its token alone.
    let s = c.login("kim", KIM.2);
    let res = c.post_from("/logout", Some(&s.cookie), &[("csrf", &s.csrf)], None);
    assert_eq!(res.status, 303);
    // A script's token in the X-CSRF-Token header; a wrong one there is refused too.
    let s = c.login("kim", KIM.2);
    let bad = "f".repeat(64);
    let res = c.send("POST", "/logout", &[("Cookie", &s.cookie), ("X-CSRF-Token", &bad)], b"");
    assert_eq!(res.status, 403);
    assert_eq!(whoami(&c, &s.cookie).0, 200);
    let res = c.send("POST", "/logout", &[("Cookie", &s.cookie), ("X-CSRF-Token", &s.csrf)], b"");
    assert_eq!(res.status, 303);
    assert_eq!(whoami(&c, &s.cookie).0, 303);
}

#[test]
fn the_language_switch_sets_only_a_display_cookie_and_stays_on_site() {
    let c = start("");
    let res = c.get("/lang?set=en&next=%2Flogin", None);
    assert_eq!((res.status, res.header("location")), (303, Some("/login")));
    let set = console::set_cookies(&res).join("\n");
    assert!(set.starts_with("lang=en;") && set.contains("SameSite=Strict"), "{set}");
    let page = c.get("/login", Some("lang=en"));
    assert!(page.text().contains("Staff login") && page.text().contains("lang=\"en\""));
    let page = c.get("/login", None);
    assert!(page.text().contains("직원 로그인"));
    assert_eq!(c.get("/lang?set=en&next=https://evil.example", None).header("location"), Some("/"));
}

fn curl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("curl")
        .current_dir(dir)
        .args(["-sS", "-i", "--cacert", "ca.crt", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn https_serves_the_login_and_marks_the_cookie_secure() {
    let c = Console::start(ConsoleSetup { tls: true, ..Default::default() }, &[KIM]);
    let base = format!("https://127.0.0.1:{}", c.port);
    let page = curl(c.dir.path(), &[&format!("{base}/login")]);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("직원 로그인"));
    let origin = format!("Origin: {base}");
    let body = console::form(&[("id", "kim"), ("password", KIM.2)]);
    let res = curl(c.dir.path(), &["-H", &origin, "--data", &body, &format!("{base}/login")]);
    assert!(res.starts_with("HTTP/1.1 303"), "{res}");
    let cookie =
        res.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: dolbom_session=")).expect("cookie");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
    // The Origin check knows the scheme: the same host over plain http is another site.
    let res = curl(
        c.dir.path(),
        &["-H", &format!("Origin: http://127.0.0.1:{}", c.port), "--data", &body, &format!("{base}/login")],
    );
    assert!(res.starts_with("HTTP/1.1 403"), "{res}");
    // Plain HTTP to the HTTPS port gets no page.
    assert!(!plain_http_answers(c.port), "plain HTTP on the HTTPS port got a page");
    assert!(c.log().contains(&format!("staff console at https://127.0.0.1:{}", c.port)), "{}", c.log());
}

/// Whether plain HTTP to `port` gets an HTTP answer (it must not, on the HTTPS port).
fn plain_http_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = s.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    raw.starts_with(b"HTTP/1.1 200")
}

#[test]
fn the_accounts_cli_refuses_short_passwords_and_never_prints_hashes() {
    let dir = tempfile::tempdir().expect("tmp");
    let (config, _) = console::write_config(dir.path(), common::broker::free_port(), &ConsoleSetup::default());
    let out = console::passwd(&config, "lee", "이선생", "short");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("10") && err.contains("비밀번호가 너무 짧습니다"), "{err}");
    assert!(!dir.path().join("users.toml").exists(), "nothing written");

    let out = console::passwd(&config, "lee", "이선생", "a-long-enough-one");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let out = console::passwd(&config, "kim", "김선생", KIM.2);
    assert!(out.status.success(), "{}", common::stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("users.toml")).expect("users file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let file = std::fs::read_to_string(dir.path().join("users.toml")).expect("read");
    assert!(file.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{file}");

    let c = config.to_str().expect("utf-8");
    let out = common::dolbom(&["console", "users", "--config", c]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let listed = common::stdout(&out);
    assert!(listed.contains("lee\t이선생") && listed.contains("kim\t김선생"), "{listed}");
    assert!(!listed.contains("argon2") && !listed.contains('$'), "a hash was printed: {listed}");

    let out = common::dolbom(&["console", "remove", "--config", c, "lee"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let listed = common::stdout(&common::dolbom(&["console", "users", "--config", c]));
    assert!(!listed.contains("lee") && listed.contains("kim"), "{listed}");
    let out = common::dolbom(&["console", "remove", "--config", c, "lee"]);
    assert!(!out.status.success(), "removing twice fails");
}

#[test]
fn a_changed_password_or_a_removed_account_ends_its_sessions_at_once() {
    let c = start("");
    let s = c.login("kim", KIM.2);
    assert_eq!(whoami(&c, &s.cookie).0, 200);
    let out = console::passwd(&c.config, "kim", "김선생", "a-brand-new-password");
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(whoami(&c, &s.cookie).0, 303, "the session with the old password went on");
    let s = c.login("kim", "a-brand-new-password");
    assert_eq!(whoami(&c, &s.cookie).0, 200);
    let out = common::dolbom(&["console", "remove", "--config", c.config.to_str().expect("utf-8"), "kim"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(whoami(&c, &s.cookie).0, 303);
}

fn screenshot(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("DOLBOM_SCREENSHOTS") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        browser.screenshot(&dir.join(name));
    }
}

#[test]
fn a_teacher_logs_in_and_out_in_chromium() {
    let c = start("");
    let browser = Browser::start();
    browser.goto(&format!("http://127.0.0.1:{}/", c.port));
    browser.wait_js("return !!document.getElementById('login');", "the login page", Duration::from_secs(20));
    let submit = "document.getElementById('login-id').value = arguments[0];\
                  document.getElementById('login-password').value = arguments[1];\
                  document.getElementById('login-submit').click(); return true;";
    browser.run(submit, json!(["kim", "not-the-password"]));
    let refusal = browser.wait_text("#login-error", "the refusal", Duration::from_secs(20), |t| !t.is_empty());
    assert!(refusal.contains("비밀번호가 맞지 않습니다") && refusal.contains("wrong"), "{refusal}");
    screenshot(&browser, "console-login.png");

    browser.run(submit, json!(["kim", KIM.2]));
    browser.wait_text("#staff-name", "the staff member's name", Duration::from_secs(20), |t| t == "김선생");
    assert_eq!(browser.run("return location.pathname;", json!([])), json!("/"));
    assert_eq!(browser.text("#center-name").as_deref(), Some("햇살어린이집"));
    // The session cookie is not for scripts.
    assert_eq!(browser.run("return document.cookie.includes('dolbom_session');", json!([])), json!(false));

    browser.run("document.getElementById('logout-button').click(); return true;", json!([]));
    browser.wait_js(
        "return location.pathname === '/login' && !!document.getElementById('login');",
        "the login page after logout",
        Duration::from_secs(20),
    );
    browser.goto(&format!("http://127.0.0.1:{}/whoami", c.port));
    browser.wait_js("return location.pathname === '/login';", "the session to be gone", Duration::from_secs(20));
}

#[test]
fn without_an_accounts_file_no_one_logs_in_and_sigterm_stops_it_cleanly() {
    let mut c = Console::start(ConsoleSetup::default(), &[]);
    let res = c.post("/login", None, &[("id", "admin"), ("password", "admin-admin-admin")]);
    assert_eq!(res.status, 401, "no default account");
    assert!(c.log().contains("no staff accounts file"), "said loudly:\n{}", c.log());
    // An account added while it runs works at once.
    let out = console::passwd(&c.config, "kim", "김선생", KIM.2);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let s = c.login("kim", KIM.2);
    assert_eq!(whoami(&c, &s.cookie).0, 200);
    let status = c.stop();
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}:\n{}", c.log());
    assert!(c.log().contains("staff console stopped"), "{}", c.log());
}

/// `dolbom console passwd` at a terminal (a pty from util-linux `script`): typed twice, not echoed.
fn passwd_at_terminal(config: &Path, first: &str, second: &str) -> (bool, String) {
    use std::io::Write;
    let cmd =
        format!("{} console passwd --config {} lee --name 이선생", env!("CARGO_BIN_EXE_dolbom"), config.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().expect("stdin");
    // Each line once its prompt can have been shown: the terminal drops nothing typed early, but
    // the echo setting must be in place before the typing for the check to mean anything.
    std::thread::sleep(Duration::from_millis(700));
    stdin.write_all(format!("{first}\n").as_bytes()).expect("type");
    std::thread::sleep(Duration::from_millis(700));
    stdin.write_all(format!("{second}\n").as_bytes()).expect("type");
    std::thread::sleep(Duration::from_millis(700));
    drop(stdin);
    let out = child.wait_with_output().expect("script ends");
    (out.status.success(), format!("{}{}", common::stdout(&out), common::stderr(&out)))
}

#[test]
fn at_a_terminal_the_password_is_asked_twice_and_never_echoed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (config, _) = console::write_config(dir.path(), common::broker::free_port(), &ConsoleSetup::default());
    let (ok, screen) = passwd_at_terminal(&config, "tulip-tulip-42", "tulip-tulip-43");
    assert!(!ok && screen.contains("두 비밀번호가 다릅니다"), "{screen}");
    assert!(!screen.contains("tulip"), "echoed: {screen}");
    assert!(!dir.path().join("users.toml").exists());
    let (ok, screen) = passwd_at_terminal(&config, "tulip-tulip-42", "tulip-tulip-42");
    assert!(ok && screen.contains("new password") && screen.contains("again"), "{screen}");
    assert!(!screen.contains("tulip"), "echoed: {screen}");
    let listed = common::stdout(&common::dolbom(&["console", "users", "--config", config.to_str().expect("utf-8")]));
    assert!(listed.contains("lee\t이선생"), "{listed}");
}

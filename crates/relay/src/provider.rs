//! SMS gateways behind one trait. `console` prints (the demo's default), `webhook` POSTs JSON,
//! `solapi` and `nhn` speak those Korean gateways' HTTP APIs (base URL configurable, so tests
//! point them at a double on loopback).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::sms::{MessageType, Text};

/// One text to one recipient.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Stable per event and recipient; sent where a gateway can deduplicate on it.
    pub idempotency_key: String,
    pub to: String,
    pub from: String,
    pub text: Text,
    pub event_id: String,
    pub center: String,
    pub notice: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    Sent {
        gateway_id: Option<String>,
    },
    /// Worth trying again (5xx, 429, timeouts), after `after` if the gateway said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Cannot succeed (bad number, bad credentials): recorded and reported, not retried.
    Failed {
        reason: String,
    },
    /// The request went out but no answer came back, and the gateway cannot deduplicate a retry:
    /// it may have been sent. Recorded, never retried (a parent must not get it twice).
    Unknown {
        reason: String,
    },
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

pub trait SmsGateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether a repeated request for the same text is recognised by the gateway (an idempotency
    /// key), so a request whose answer was lost may be retried.
    fn idempotent(&self) -> bool;
    fn send<'a>(&'a self, msg: &'a Outgoing) -> SendFuture<'a>;
}

/// Debug by hand below: the gateway secrets are never printed.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    Console,
    Webhook {
        url: String,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    Solapi {
        #[serde(default = "solapi_base")]
        base_url: String,
        api_key: String,
        #[serde(default)]
        api_secret: String,
        /// The secret's file instead (see `dolbom_secret`).
        #[serde(default)]
        api_secret_file: Option<PathBuf>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    Nhn {
        #[serde(default = "nhn_base")]
        base_url: String,
        app_key: String,
        #[serde(default)]
        secret_key: String,
        /// The secret's file instead (see `dolbom_secret`).
        #[serde(default)]
        secret_key_file: Option<PathBuf>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
}

/// A secret as Debug shows it: whether there is one, never what it is.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        "\"\""
    } else {
        "<redacted>"
    }
}

/// A webhook URL as Debug and the logs show it: scheme, host and port only. A hook's token
/// often rides in the path (`/services/T0/B0/XXXX`), the query (`?token=…`) or the user info
/// (`https://user:token@host`), so none of those is shown.
pub fn site_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hidden = rest.len() > authority.len() || authority.contains('@');
    let scheme = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
    format!("{scheme}{host}{}", if hidden { "/<redacted>" } else { "" })
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderConfig::Console => f.write_str("Console"),
            ProviderConfig::Webhook { url, timeout_ms } => f
                .debug_struct("Webhook")
                .field("url", &format_args!("{:?}", site_of(url)))
                .field("timeout_ms", timeout_ms)
                .finish(),
            ProviderConfig::Solapi { base_url, api_key, api_secret, api_secret_file, timeout_ms } => f
                .debug_struct("Solapi")
                .field("base_url", base_url)
                .field("api_key", api_key)
                .field("api_secret", &format_args!("{}", redacted(api_secret)))
                .field("api_secret_file", api_secret_file)
                .field("timeout_ms", timeout_ms)
                .finish(),
            ProviderConfig::Nhn { base_url, app_key, secret_key, secret_key_file, timeout_ms } => f
                .debug_struct("Nhn")
                .field("base_url", base_url)
                .field("app_key", app_key)
                .field("secret_key", &format_args!("{}", redacted(secret_key)))
                .field("secret_key_file", secret_key_file)
                .field("timeout_ms", timeout_ms)
                .finish(),
        }
    }
}

impl ProviderConfig {
    /// The HTTP timeout of gateways that have one.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            ProviderConfig::Console => None,
            ProviderConfig::Webhook { timeout_ms, .. }
            | ProviderConfig::Solapi { timeout_ms, .. }
            | ProviderConfig::Nhn { timeout_ms, .. } => Some(*timeout_ms),
        }
    }

    /// The gateway's secret: exactly one of the inline key and its `_file` key must be set.
    pub fn check_secret(&self) -> Result<(), String> {
        let (key, inline, file) = match self {
            ProviderConfig::Solapi { api_secret, api_secret_file, .. } => ("api_secret", api_secret, api_secret_file),
            ProviderConfig::Nhn { secret_key, secret_key_file, .. } => ("secret_key", secret_key, secret_key_file),
            ProviderConfig::Console | ProviderConfig::Webhook { .. } => return Ok(()),
        };
        // A secret written in the config file leaks with every copy and backup of it.
        match (inline.is_empty(), file.is_some()) {
            (true, true) => Ok(()),
            (false, _) => Err(format!(
                "`provider.{key}` written in the config file is refused: put the secret in a file only the relay \
                 can read and name it with `provider.{key}_file` (or hand it over with systemd's LoadCredential= \
                 and `provider.{key}_file = \"$CREDENTIALS_DIRECTORY/NAME\"`)"
            )),
            (true, false) => Err(format!("`provider.{key}_file` must be set")),
        }
    }

    /// Reads the gateway secret's file (relative to `base`, the config file's directory).
    pub fn load_secrets(&mut self, base: &Path) -> Result<(), dolbom_secret::SecretError> {
        let (key, secret, file) = match self {
            ProviderConfig::Solapi { api_secret, api_secret_file, .. } => {
                ("provider.api_secret_file", api_secret, api_secret_file)
            }
            ProviderConfig::Nhn { secret_key, secret_key_file, .. } => {
                ("provider.secret_key_file", secret_key, secret_key_file)
            }
            ProviderConfig::Console | ProviderConfig::Webhook { .. } => return Ok(()),
        };
        if let Some(spec) = file.take() {
            *secret = dolbom_secret::read(key, &spec, base)?;
        }
        Ok(())
    }
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn solapi_base() -> String {
    "https://api.solapi.com".into()
}
fn nhn_base() -> String {
    "https://api-sms.cloud.toast.com".into()
}

pub fn build(config: &ProviderConfig) -> Result<Box<dyn SmsGateway>, String> {
    let client = |timeout_ms: u64| {
        // A separate connect timeout, so "never reached the gateway" (safe to retry) is told
        // apart from "no answer after the request went out" (maybe sent).
        let total = Duration::from_millis(timeout_ms);
        reqwest::Client::builder()
            .timeout(total)
            // Well inside the total, so a slow connect ends as a connect error (never sent).
            .connect_timeout((total / 2).min(Duration::from_secs(5)))
            .build()
            .map_err(|e| e.to_string())
    };
    Ok(match config {
        ProviderConfig::Console => Box::new(Console),
        ProviderConfig::Webhook { url, timeout_ms } => {
            Box::new(Webhook { url: url.clone(), http: client(*timeout_ms)? })
        }
        ProviderConfig::Solapi { base_url, api_key, api_secret, timeout_ms, .. } => Box::new(Solapi {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.clone(),
            api_secret: api_secret.clone(),
            http: client(*timeout_ms)?,
        }),
        ProviderConfig::Nhn { base_url, app_key, secret_key, timeout_ms, .. } => Box::new(Nhn {
            base_url: base_url.trim_end_matches('/').to_string(),
            app_key: app_key.clone(),
            secret_key: secret_key.clone(),
            http: client(*timeout_ms)?,
        }),
    })
}

/// Prints the text: the demo's SMS sink. The number is masked as in the logs (the demo's
/// output may be shared); the text itself names no number.
pub struct Console;

impl SmsGateway for Console {
    fn name(&self) -> &'static str {
        "console"
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let subject = m.text.subject.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
            let to = crate::phone::mask(&m.to);
            println!("{} to {to} from {}{}: {}", m.text.kind.name(), m.from, subject, m.text.body);
            SendOutcome::Sent { gateway_id: None }
        })
    }
}

pub struct Webhook {
    url: String,
    http: reqwest::Client,
}

impl SmsGateway for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }
    fn idempotent(&self) -> bool {
        true // the Idempotency-Key header
    }
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let body = serde_json::json!({
                "id": m.idempotency_key, "to": m.to, "from": m.from, "type": m.text.kind,
                "subject": m.text.subject, "text": m.text.body, "bytes": m.text.bytes,
                "event_id": m.event_id, "center": m.center, "notice": m.notice,
            });
            let r = self.http.post(&self.url).header("Idempotency-Key", &m.idempotency_key).json(&body).send().await;
            classify(r, self.idempotent()).await.map_or_else(|o| o, |_| SendOutcome::Sent { gateway_id: None })
        })
    }
}

/// Solapi v4: `POST /messages/v4/send`, `Authorization: HMAC-SHA256 apiKey=…, date=…, salt=…,
/// signature=hex(HMAC-SHA256(secret, date + salt))`.
pub struct Solapi {
    base_url: String,
    api_key: String,
    api_secret: String,
    http: reqwest::Client,
}

/// The `date` of Solapi's signature as its own SDK (and the examples in its documentation) write
/// it: ISO 8601, UTC, whole seconds (`2026-12-01T08:42:07Z`).
pub fn solapi_date(now: jiff::Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Solapi answers a single send with the message's own status: `statusCode` "2000" is taken
/// (정상 접수); any other code is that recipient refused.
fn solapi_outcome(v: &serde_json::Value) -> SendOutcome {
    let id = v["messageId"].as_str().map(str::to_string);
    match v["statusCode"].as_str() {
        Some("2000") => SendOutcome::Sent { gateway_id: id },
        Some(code) => SendOutcome::Failed {
            reason: format!("Solapi refused the recipient: {code} {}", text_of(&v["statusMessage"])),
        },
        // Taken, but the answer does not say what became of this recipient.
        None => SendOutcome::Unknown { reason: format!("Solapi answer without a statusCode: {}", clip(v)) },
    }
}

/// A gateway's message, printable and short, for the record.
fn text_of(v: &serde_json::Value) -> String {
    let s = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    dolbom_contract::text::visible(s.trim()).chars().take(200).collect()
}

fn clip(v: &serde_json::Value) -> String {
    dolbom_contract::text::visible(&v.to_string()).chars().take(200).collect()
}

pub fn solapi_signature(secret: &str, date: &str, salt: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC takes keys of any length; cannot happen
    };
    mac.update(date.as_bytes());
    mac.update(salt.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl SmsGateway for Solapi {
    fn name(&self) -> &'static str {
        "solapi"
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let date = solapi_date(jiff::Timestamp::now());
            let salt = hex::encode(rand::random::<[u8; 16]>());
            let auth = format!(
                "HMAC-SHA256 apiKey={}, date={date}, salt={salt}, signature={}",
                self.api_key,
                solapi_signature(&self.api_secret, &date, &salt)
            );
            let mut message = serde_json::json!({"to": m.to, "from": m.from, "text": m.text.body, "type": m.text.kind});
            if let (MessageType::Lms, Some(s)) = (m.text.kind, &m.text.subject) {
                message["subject"] = serde_json::Value::from(s.as_str());
            }
            let r = self
                .http
                .post(format!("{}/messages/v4/send", self.base_url))
                .header("Authorization", auth)
                .json(&serde_json::json!({ "message": message }))
                .send()
                .await;
            match classify(r, self.idempotent()).await {
                Err(o) => o,
                Ok(v) => solapi_outcome(&v),
            }
        })
    }
}

/// NHN Cloud SMS v3.0: `POST /sms/v3.0/appKeys/{appKey}/sender/sms` (or `/sender/mms` for long
/// texts), `X-Secret-Key`; the result is in the body's `header.isSuccessful`.
pub struct Nhn {
    base_url: String,
    app_key: String,
    secret_key: String,
    http: reqwest::Client,
}

impl SmsGateway for Nhn {
    fn name(&self) -> &'static str {
        "nhn"
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let (path, mut body) = match m.text.kind {
                MessageType::Sms => ("sms", serde_json::json!({"body": m.text.body})),
                MessageType::Lms => ("mms", serde_json::json!({"title": m.text.subject, "body": m.text.body})),
            };
            body["sendNo"] = serde_json::Value::from(m.from.as_str());
            body["recipientList"] = serde_json::json!([{ "recipientNo": m.to }]);
            let r = self
                .http
                .post(format!("{}/sms/v3.0/appKeys/{}/sender/{path}", self.base_url, self.app_key))
                .header("X-Secret-Key", &self.secret_key)
                // As documented; reqwest's `.json()` would send it without the charset.
                .header(reqwest::header::CONTENT_TYPE, "application/json;charset=UTF-8")
                .body(body.to_string())
                .send()
                .await;
            match classify(r, self.idempotent()).await {
                Err(o) => o,
                Ok(v) => nhn_outcome(&v, &m.to),
            }
        })
    }
}

/// NHN Cloud answers in two layers: `header.isSuccessful` says the request was taken, and
/// `body.data.sendResultList[]` says, per recipient, whether that number was (`resultCode` 0)
/// or was refused (a bad or blocked number) although the request succeeded.
fn nhn_outcome(v: &serde_json::Value, to: &str) -> SendOutcome {
    let header = &v["header"];
    if header["isSuccessful"] != true {
        return SendOutcome::Failed {
            reason: format!("NHN result {}: {}", header["resultCode"], text_of(&header["resultMessage"])),
        };
    }
    let data = &v["body"]["data"];
    let id = data["requestId"].as_str().map(str::to_string);
    let results = data["sendResultList"].as_array().map(Vec::as_slice).unwrap_or_default();
    // Our one recipient's result: by its number (compared as digits, however NHN writes it
    // back), or the only result there is.
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let mine = results.iter().find(|r| r["recipientNo"].as_str().map(digits) == Some(digits(to))).or(match results {
        [only] => Some(only),
        _ => None,
    });
    match mine {
        Some(r) if r["resultCode"] == 0 => SendOutcome::Sent { gateway_id: id },
        Some(r) => SendOutcome::Failed {
            reason: format!("NHN refused the recipient: {} {}", r["resultCode"], text_of(&r["resultMessage"])),
        },
        // Taken, but nothing says what became of this recipient.
        None => SendOutcome::Unknown { reason: format!("NHN answer without this recipient's result: {}", clip(v)) },
    }
}

/// Maps an HTTP exchange to an outcome: 2xx → the JSON body (or null), 503/429/408 → retry
/// (honouring Retry-After), other 4xx → failed. Other 5xx, and no answer at all: retry when the
/// request never left (connection failed) or the gateway deduplicates; otherwise unknown, never
/// retried, because the text may have gone out.
async fn classify(
    r: Result<reqwest::Response, reqwest::Error>,
    idempotent: bool,
) -> Result<serde_json::Value, SendOutcome> {
    // reqwest's errors name the URL, which may carry the hook's token: never in a reason.
    let r = r.map_err(reqwest::Error::without_url);
    let resp = match r {
        Ok(resp) => resp,
        Err(e) if e.is_connect() => {
            return Err(SendOutcome::Retry { after: None, reason: format!("gateway unreachable: {e}") })
        }
        Err(e) => {
            let reason = if e.is_timeout() { "gateway timed out".to_string() } else { format!("no answer: {e}") };
            return Err(if idempotent {
                SendOutcome::Retry { after: None, reason }
            } else {
                SendOutcome::Unknown { reason }
            });
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // A body cut off mid-answer is an error that names the URL too.
    let text = match resp.text().await.map_err(reqwest::Error::without_url) {
        Ok(text) => text,
        // Accepted, but the answer was cut off: whether it went out is not known.
        Err(e) if status.is_success() && !idempotent => {
            return Err(SendOutcome::Unknown { reason: format!("HTTP {}, answer unreadable: {e}", status.as_u16()) })
        }
        Err(_) => String::new(),
    };
    if status.is_success() {
        return Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null));
    }
    // The gateway's words go into the record and the log: shown, never obeyed by a terminal.
    let reason = format!(
        "HTTP {}: {}",
        status.as_u16(),
        dolbom_contract::text::visible(&text.chars().take(200).collect::<String>())
    );
    match status.as_u16() {
        // Not taken: try again later.
        503 | 429 | 408 => Err(SendOutcome::Retry { after: retry_after, reason }),
        // An error inside or behind the gateway (a proxy's 502/504): it may have gone out, so
        // only a gateway that deduplicates gets it again.
        500..=599 if idempotent => Err(SendOutcome::Retry { after: retry_after, reason }),
        500..=599 => Err(SendOutcome::Unknown { reason }),
        _ => Err(SendOutcome::Failed { reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_gateway_secret() {
        for text in [
            "kind = \"solapi\"\napi_key = \"KEY\"\napi_secret = \"TOPSECRET\"",
            "kind = \"nhn\"\napp_key = \"APP\"\nsecret_key = \"TOPSECRET\"",
        ] {
            let c: ProviderConfig = toml::from_str(text).expect("parses");
            let shown = format!("{c:?} {c:#?}");
            assert!(!shown.contains("TOPSECRET") && shown.contains("<redacted>"), "{shown}");
        }
        let c: ProviderConfig = toml::from_str("kind = \"solapi\"\napi_key = \"KEY\"").expect("parses");
        assert!(format!("{c:?}").contains("api_secret: \"\""), "an empty secret shows as empty: {c:?}");
        // A webhook's token, wherever the URL carries it.
        for url in [
            "https://hooks.example.com/send?token=TOPSECRET",
            "https://bot:TOPSECRET@hooks.example.com/send",
            "https://hooks.example.com/services/T0/TOPSECRET",
            "http://127.0.0.1:8080/TOPSECRET#x",
        ] {
            let c: ProviderConfig = toml::from_str(&format!("kind = \"webhook\"\nurl = \"{url}\"")).expect("parses");
            let shown = format!("{c:?} {c:#?}");
            assert!(!shown.contains("TOPSECRET") && shown.contains("/<redacted>"), "{shown}");
        }
        assert_eq!(site_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(site_of("https://bot:pw@hooks.example.com"), "https://hooks.example.com/<redacted>");
    }

    /// A gateway that cannot be reached: the reason names no URL (its token stays out of the
    /// store and the log).
    #[tokio::test]
    async fn a_failed_request_never_repeats_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}/send?token=TOPSECRET");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let r = reqwest::Client::new().post(&url).send().await;
        match classify(r, true).await {
            Err(SendOutcome::Retry { reason, .. }) => assert!(!reason.contains("TOPSECRET"), "{reason}"),
            other => panic!("a refused connection is retried: {other:?}"),
        }
        // Taken, then cut off: headers promise more body than comes before the socket closes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://127.0.0.1:{}/send?token=TOPSECRET", listener.local_addr().expect("addr").port());
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).expect("read");
                assert!(n > 0, "the request ends before its headers");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ok\"")
                .expect("write");
        });
        let r = reqwest::Client::new().post(&url).send().await;
        match classify(r, false).await {
            Err(SendOutcome::Unknown { reason }) => {
                assert!(reason.contains("answer unreadable") && !reason.contains("TOPSECRET"), "{reason}")
            }
            other => panic!("a cut-off answer to a taken request is unknown: {other:?}"),
        }
        server.join().expect("server");
    }

    #[test]
    fn nhn_answers_are_read_to_the_recipient() {
        let answer = |successful: bool, results: serde_json::Value| {
            serde_json::json!({"header": {"isSuccessful": successful, "resultCode": if successful { 0 } else { -1000 },
                "resultMessage": "msg"}, "body": {"data": {"requestId": "R1", "statusCode": "2", "sendResultList": results}}})
        };
        let to = "01012345678";
        let ok =
            serde_json::json!([{"recipientNo": to, "resultCode": 0, "resultMessage": "SUCCESS", "recipientSeq": 1}]);
        assert_eq!(nhn_outcome(&answer(true, ok), to), SendOutcome::Sent { gateway_id: Some("R1".into()) });
        for (code, message) in [(-2003, "Invalid recipient number"), (-2018, "수신 거부"), (1, "?")] {
            let refused = serde_json::json!([{"recipientNo": to, "resultCode": code, "resultMessage": message}]);
            match nhn_outcome(&answer(true, refused), to) {
                SendOutcome::Failed { reason } => {
                    assert!(reason.contains(&code.to_string()) && reason.contains(message), "{reason}")
                }
                other => panic!("a refused recipient is failed, never sent: {other:?}"),
            }
        }
        let other = serde_json::json!([{"recipientNo": "01099999999", "resultCode": 0}, {"recipientNo": "01088888888", "resultCode": 0}]);
        assert!(matches!(nhn_outcome(&answer(true, other), to), SendOutcome::Unknown { .. }));
        let written_back = serde_json::json!([{"recipientNo": "01099999999", "resultCode": 0},
            {"recipientNo": "010-1234-5678", "resultCode": -2003, "resultMessage": "Invalid"}]);
        assert!(matches!(nhn_outcome(&answer(true, written_back), to), SendOutcome::Failed { .. }));
        assert!(matches!(nhn_outcome(&answer(true, serde_json::Value::Null), to), SendOutcome::Unknown { .. }));
        assert!(matches!(nhn_outcome(&answer(false, serde_json::json!([])), to), SendOutcome::Failed { .. }));
    }

    #[test]
    fn solapi_answers_are_read_to_the_recipient() {
        let sent = serde_json::json!({"messageId": "M1", "statusCode": "2000", "statusMessage": "정상 접수"});
        assert_eq!(solapi_outcome(&sent), SendOutcome::Sent { gateway_id: Some("M1".into()) });
        for code in ["1062", "3059", "2001"] {
            let refused = serde_json::json!({"messageId": "M1", "statusCode": code, "statusMessage": "refused"});
            assert!(matches!(solapi_outcome(&refused), SendOutcome::Failed { reason } if reason.contains(code)));
        }
        assert!(matches!(solapi_outcome(&serde_json::json!({})), SendOutcome::Unknown { .. }));
    }

    #[test]
    fn solapi_dates_are_whole_seconds_in_utc() {
        let t: jiff::Timestamp = "2026-12-01T08:42:07.123456789+09:00".parse().expect("ts");
        assert_eq!(solapi_date(t), "2026-11-30T23:42:07Z");
    }

    #[test]
    fn solapi_signature_is_hex_hmac_sha256_of_date_and_salt() {
        // RFC 4231 test case 2 key and data, split into date + salt.
        let sig = solapi_signature("Jefe", "what do ya want ", "for nothing?");
        assert_eq!(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}

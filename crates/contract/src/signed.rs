//! Signed staff commands. A command (`{"alert_id", "by", "request_id"}` today, whatever later
//! actions carry tomorrow) travels as the `body` string of an envelope:
//!
//! ```json
//! {"v": 1, "key_id": "office", "ts_ms": 1764650000000, "nonce": "9f2c…", "body": "{\"alert_id\":…}", "mac": "hex"}
//! ```
//!
//! `mac` is HMAC-SHA256, with the key named by `key_id`, over the canonical form
//! `dolbom-cmd-v1\n{topic}\n{key_id}\n{ts_ms}\n{nonce}\n{body}`. The body is signed as the exact
//! string sent, so no JSON canonicalisation is needed; the topic is signed so a silence cannot be
//! replayed as a resolve or to another kiosk. Freshness (`ts_ms`) and single use (`nonce`) are
//! checked by the receiver, which must remember nonces for as long as it accepts their age.
//!
//! No I/O: the kiosk verifies, `dolbom alerts` and a staff console sign.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const VERSION: u8 = 1;
const DOMAIN: &str = "dolbom-cmd-v1";
/// A shared key shorter than this is refused (e.g. `openssl rand -hex 32` gives 64).
pub const MIN_KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommand {
    pub v: u8,
    pub key_id: String,
    pub ts_ms: i64,
    pub nonce: String,
    pub body: String,
    pub mac: String,
}

/// Why a command was not accepted; the text goes back on `cmd/result` (staff read it: English,
/// then Korean) and into the audit log; [`Refusal::code`] is the machine-readable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unsigned: this kiosk accepts signed commands only (see docs/security.md) / 서명된 명령만 받습니다")]
    Unsigned,
    #[error("malformed signed command: {0} / 서명된 명령의 형식이 잘못되었습니다")]
    Malformed(String),
    #[error("unknown key id `{0}` / 알 수 없는 키 id입니다")]
    UnknownKey(String),
    #[error(
        "bad signature: the command was not signed with key `{0}`, or was changed on the way / \
         서명이 맞지 않습니다: 그 키로 서명되지 않았거나 전달 중 바뀌었습니다"
    )]
    BadSignature(String),
    #[error(
        "expired: signed {age_secs} s ago, more than the {window_secs} s allowed / \
         만료됨: {age_secs}초 전에 서명되어 허용된 {window_secs}초를 넘었습니다"
    )]
    Expired { age_secs: i64, window_secs: i64 },
    #[error(
        "from the future: signed {ahead_secs} s ahead of this kiosk's clock, more than the {skew_secs} s allowed / \
         키오스크 시계보다 {ahead_secs}초 앞서 서명되어 허용된 {skew_secs}초를 넘었습니다"
    )]
    FromTheFuture { ahead_secs: i64, skew_secs: i64 },
    #[error("replayed: nonce `{0}` was already used / 이미 쓰인 nonce입니다 (재전송)")]
    Replayed(String),
}

impl Refusal {
    /// A short name for counting and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::Malformed(_) => "malformed",
            Refusal::UnknownKey(_) => "unknown-key",
            Refusal::BadSignature(_) => "bad-signature",
            Refusal::Expired { .. } => "expired",
            Refusal::FromTheFuture { .. } => "future",
            Refusal::Replayed(_) => "replayed",
        }
    }
}

/// The bytes the MAC covers.
pub fn canonical(topic: &str, key_id: &str, ts_ms: i64, nonce: &str, body: &str) -> String {
    format!("{DOMAIN}\n{topic}\n{key_id}\n{ts_ms}\n{nonce}\n{body}")
}

fn mac(key: &[u8], text: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(text.as_bytes());
    m
}

/// Signs `body` for `topic`. `nonce` must be unique per key (e.g. 16 random bytes in hex, or a
/// UUIDv7); 8 to 64 characters of `[0-9A-Za-z_-]`.
pub fn sign(key: &[u8], key_id: &str, topic: &str, body: &str, ts_ms: i64, nonce: &str) -> SignedCommand {
    let tag = mac(key, &canonical(topic, key_id, ts_ms, nonce, body)).finalize().into_bytes();
    SignedCommand {
        v: VERSION,
        key_id: key_id.into(),
        ts_ms,
        nonce: nonce.into(),
        body: body.into(),
        mac: hex::encode(tag),
    }
}

/// How fresh a command must be.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub max_age_secs: i64,
    pub max_skew_secs: i64,
}

/// What a message on a command topic is: a signed envelope (a JSON object with `mac`), or
/// anything else, which is unsigned (and, if let through, judged by the command handler).
/// `Err` for an envelope that does not parse.
pub fn parse(payload: &[u8]) -> Result<Option<SignedCommand>, Refusal> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return Ok(None);
    };
    if value.get("mac").is_none() {
        return Ok(None);
    }
    serde_json::from_value(value).map(Some).map_err(|e| Refusal::Malformed(e.to_string()))
}

/// Checks signature and age (not the nonce's single use: that needs the receiver's memory).
/// `key` looks a key up by id.
pub fn verify<'k>(
    signed: &SignedCommand,
    topic: &str,
    key: impl Fn(&str) -> Option<&'k [u8]>,
    now_ms: i64,
    window: Window,
) -> Result<(), Refusal> {
    if signed.v != VERSION {
        return Err(Refusal::Malformed(format!("version {} (this kiosk knows {VERSION})", signed.v)));
    }
    let nonce_ok = (8..=64).contains(&signed.nonce.len())
        && signed.nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !nonce_ok {
        return Err(Refusal::Malformed("nonce must be 8 to 64 of [0-9A-Za-z_-]".into()));
    }
    let key = key(&signed.key_id).ok_or_else(|| Refusal::UnknownKey(printable(&signed.key_id)))?;
    let tag = hex::decode(&signed.mac).map_err(|_| Refusal::BadSignature(printable(&signed.key_id)))?;
    // Constant-time comparison.
    mac(key, &canonical(topic, &signed.key_id, signed.ts_ms, &signed.nonce, &signed.body))
        .verify_slice(&tag)
        .map_err(|_| Refusal::BadSignature(printable(&signed.key_id)))?;
    let age_ms = now_ms.saturating_sub(signed.ts_ms);
    if age_ms > window.max_age_secs.saturating_mul(1000) {
        return Err(Refusal::Expired { age_secs: age_ms / 1000, window_secs: window.max_age_secs });
    }
    if -age_ms > window.max_skew_secs.saturating_mul(1000) {
        return Err(Refusal::FromTheFuture { ahead_secs: -age_ms / 1000, skew_secs: window.max_skew_secs });
    }
    Ok(())
}

fn printable(s: &str) -> String {
    crate::text::visible_cut(s, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const TOPIC: &str = "dolbom/v1/c1/k1/cmd/silence";
    const BODY: &str = r#"{"alert_id":"a1","by":"kim","request_id":"r1"}"#;
    const W: Window = Window { max_age_secs: 300, max_skew_secs: 30 };

    /// A fixed vector, so another implementation (a web console) can check itself against it.
    /// Computed independently with:
    /// `printf 'dolbom-cmd-v1\ndolbom/v1/c1/k1/cmd/silence\noffice\n1764650000000\nn0nce-0001\n{"alert_id":"a1","by":"kim","request_id":"r1"}' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef`
    #[test]
    fn fixed_vector() {
        let s = sign(KEY, "office", TOPIC, BODY, 1_764_650_000_000, "n0nce-0001");
        assert_eq!(s.mac, FIXED_MAC);
        assert_eq!(
            canonical(TOPIC, "office", 1_764_650_000_000, "n0nce-0001", BODY),
            "dolbom-cmd-v1\ndolbom/v1/c1/k1/cmd/silence\noffice\n1764650000000\nn0nce-0001\n{\"alert_id\":\"a1\",\"by\":\"kim\",\"request_id\":\"r1\"}"
        );
    }

    const FIXED_MAC: &str = "91fe5e127e2ab22921b0b6b6756f9bd02eb8f705d4c4bab21c153dc6454a5fd3";

    fn keys(id: &str) -> Option<&'static [u8]> {
        (id == "office").then_some(KEY)
    }

    #[test]
    fn a_fresh_signed_command_verifies_and_round_trips() {
        let now = 1_764_650_000_000;
        let s = sign(KEY, "office", TOPIC, BODY, now - 1000, "n0nce-0001");
        let wire = serde_json::to_vec(&s).expect("json");
        let parsed = parse(&wire).expect("parses").expect("signed");
        assert_eq!(verify(&parsed, TOPIC, keys, now, W), Ok(()));
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let now = 1_764_650_000_000;
        let ok = sign(KEY, "office", TOPIC, BODY, now, "n0nce-0001");
        let mut changed = ok.clone();
        changed.body = BODY.replace("kim", "lee");
        assert_eq!(verify(&changed, TOPIC, keys, now, W).map_err(|e| e.code()), Err("bad-signature"));
        assert_eq!(
            verify(&ok, "dolbom/v1/c1/k1/cmd/resolve", keys, now, W).map_err(|e| e.code()),
            Err("bad-signature"),
            "the topic is signed"
        );
        let forged = sign(b"another key entirely, 32 bytes!!", "office", TOPIC, BODY, now, "n0nce-0001");
        assert_eq!(verify(&forged, TOPIC, keys, now, W).map_err(|e| e.code()), Err("bad-signature"));
        let stranger = sign(KEY, "home", TOPIC, BODY, now, "n0nce-0001");
        assert_eq!(verify(&stranger, TOPIC, keys, now, W).map_err(|e| e.code()), Err("unknown-key"));
        let old = sign(KEY, "office", TOPIC, BODY, now - 600_000, "n0nce-0001");
        assert_eq!(verify(&old, TOPIC, keys, now, W), Err(Refusal::Expired { age_secs: 600, window_secs: 300 }));
        let ahead = sign(KEY, "office", TOPIC, BODY, now + 31_000, "n0nce-0001");
        assert_eq!(verify(&ahead, TOPIC, keys, now, W).map_err(|e| e.code()), Err("future"));
        let short = sign(KEY, "office", TOPIC, BODY, now, "n1");
        assert_eq!(verify(&short, TOPIC, keys, now, W).map_err(|e| e.code()), Err("malformed"));
        assert_eq!(parse(BODY.as_bytes()), Ok(None), "an unsigned command");
        assert_eq!(parse(b"\xff{not json"), Ok(None), "garbage is unsigned too");
        assert!(parse(b"{\"mac\": 1}").is_err());
    }
}

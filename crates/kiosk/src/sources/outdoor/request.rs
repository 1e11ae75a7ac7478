//! One GET to a data.go.kr service: the query built with the key encoded exactly once, and the
//! transport's failures turned into [`OutdoorError`]s.

use std::time::Duration;

use reqwest::Url;

use super::answer::{OutdoorError, Service};

/// The operation's URL: `base/operation?serviceKey=…&params…`, every value form-encoded once.
///
/// data.go.kr hands out each key twice, "Encoding" (already percent-encoded: `%2B`, `%2F`,
/// `%3D`) and "Decoding" (raw: `+`, `/`, `=`). Either may be pasted into the key file; the
/// encoded one is decoded first, so the service never sees `%252B` or a bare `+` (a space).
pub fn url(
    service: Service,
    base: &str,
    operation: &str,
    key: &str,
    params: &[(&str, &str)],
) -> Result<Url, OutdoorError> {
    let mut url = Url::parse(&format!("{}/{operation}", base.trim_end_matches('/')))
        .map_err(|e| OutdoorError::Garbage { service: service.name, detail: format!("base URL {base:?}: {e}") })?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("serviceKey", &raw_key(key.trim()));
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    Ok(url)
}

/// The raw key: `%XX` sequences decoded (a raw data.go.kr key never holds a `%`).
pub fn raw_key(key: &str) -> String {
    if !key.contains('%') {
        return key.to_string();
    }
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer's text on HTTP 2xx; anything else is an error (a body on a 200 may still be one:
/// see [`super::answer::open`]).
pub async fn get_text(
    client: &reqwest::Client,
    service: Service,
    url: Url,
    timeout: Duration,
) -> Result<String, OutdoorError> {
    let secs = timeout.as_secs();
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            OutdoorError::Timeout { service: service.name, secs }
        } else {
            // Without the URL: it carries the key.
            OutdoorError::Unreachable { service: service.name, detail: e.without_url().to_string() }
        }
    };
    let response = client.get(url).send().await.map_err(transport)?;
    let status = response.status();
    // The gateway also refuses keys and callers at the HTTP level, without its envelope.
    let code = || format!("HTTP {}", status.as_u16());
    let reason = || status.canonical_reason().unwrap_or_default().to_string();
    match status.as_u16() {
        200..=299 => {}
        401 | 403 => {
            return Err(OutdoorError::KeyRefused {
                service: service.name,
                key: service.key_file,
                code: code(),
                reason: reason(),
            })
        }
        429 => return Err(OutdoorError::OverQuota { service: service.name, code: code() }),
        other => return Err(OutdoorError::Http { service: service.name, status: other }),
    }
    response.text().await.map_err(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Service = Service { name: "AirKorea", key_file: "outdoor.airkorea.service_key_file" };

    #[test]
    fn the_key_is_encoded_once_whichever_form_was_pasted() {
        for key in ["ab+c/d==", "ab%2Bc%2Fd%3D%3D", "ab%2bc%2fd%3d%3d"] {
            let url = url(S, "http://127.0.0.1:9/svc/", "op", key, &[("stationName", "종로구")]).expect("url");
            assert_eq!(
                url.as_str(),
                "http://127.0.0.1:9/svc/op?serviceKey=ab%2Bc%2Fd%3D%3D&stationName=%EC%A2%85%EB%A1%9C%EA%B5%AC",
                "{key}"
            );
        }
    }
}

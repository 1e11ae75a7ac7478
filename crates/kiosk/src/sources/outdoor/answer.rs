//! What data.go.kr services answer besides data: error codes in the body with HTTP 200, the XML
//! error envelope (`OpenAPI_ServiceResponse`) served even when JSON was asked, and values that are
//! "-", "" or null. One error type for both services, each variant with a message an integrator
//! can act on, in Korean and English.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutdoorError {
    #[error("{service}: no answer within {secs} s / 응답 시간 초과 ({secs}초)")]
    Timeout { service: &'static str, secs: u64 },
    #[error("{service}: cannot reach the service: {detail} / 서비스에 연결할 수 없습니다")]
    Unreachable { service: &'static str, detail: String },
    #[error("{service}: HTTP {status} from the service / 서비스가 HTTP {status} 오류를 돌려주었습니다")]
    Http { service: &'static str, status: u16 },
    #[error("{service}: the service key was refused ({code} {reason}): check `{key}` and that the key is approved for this API on data.go.kr / 서비스 키가 거부되었습니다: 키 파일과 공공데이터포털의 활용 승인을 확인하세요")]
    KeyRefused { service: &'static str, key: &'static str, code: String, reason: String },
    #[error("{service}: the key's daily request quota is used up ({code}); polling resumes and succeeds after the quota resets / 서비스 키의 일일 호출 한도를 초과했습니다")]
    OverQuota { service: &'static str, code: String },
    #[error("{service}: no data for this request ({code} {reason}) / 요청한 자료가 없습니다")]
    NoData { service: &'static str, code: String, reason: String },
    #[error("{service}: the service answered error {code} {reason} / 서비스 오류 {code}")]
    Service { service: &'static str, code: String, reason: String },
    #[error("{service}: no measured value in the answer (station under maintenance, or all values flagged) / 측정값이 없습니다 (점검 중이거나 모든 값에 플래그)")]
    NoValues { service: &'static str },
    #[error("{service}: the answer is not what the service documents: {detail} / 알 수 없는 응답입니다")]
    Garbage { service: &'static str, detail: String },
}

/// The service and the config key of its key file, for the messages.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub key_file: &'static str,
}

/// The JSON envelope both services share: `{"response": {"header": {...}, "body": {...}}}`.
#[derive(Debug, Deserialize)]
struct Envelope<B> {
    response: Response<B>,
}

#[derive(Debug, Deserialize)]
struct Response<B> {
    header: Header,
    /// Absent from error answers (a missing `Option` field is `None`).
    body: Option<B>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    result_code: String,
    #[serde(default)]
    result_msg: Option<String>,
}

/// The body of a successful answer, or the error its header or an XML envelope carries.
pub fn open<B: serde::de::DeserializeOwned>(service: Service, text: &str) -> Result<B, OutdoorError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('<') {
        return Err(xml_error(service, trimmed));
    }
    let envelope: Envelope<B> = serde_json::from_str(trimmed)
        .map_err(|e| OutdoorError::Garbage { service: service.name, detail: format!("{e}: {}", excerpt(trimmed)) })?;
    let header = envelope.response.header;
    if header.result_code != "00" {
        return Err(classify(service, header.result_code, header.result_msg.unwrap_or_default()));
    }
    envelope
        .response
        .body
        .ok_or_else(|| OutdoorError::Garbage { service: service.name, detail: "resultCode 00 without a body".into() })
}

/// The gateway's XML error envelope:
/// `<OpenAPI_ServiceResponse><cmmMsgHeader><returnAuthMsg>…</returnAuthMsg><returnReasonCode>30…`.
fn xml_error(service: Service, text: &str) -> OutdoorError {
    let code = tag(text, "returnReasonCode").or_else(|| tag(text, "resultCode"));
    let reason = tag(text, "returnAuthMsg").or_else(|| tag(text, "errMsg")).or_else(|| tag(text, "resultMsg"));
    match code {
        Some(code) => classify(service, code, reason.unwrap_or_default()),
        None => OutdoorError::Garbage {
            service: service.name,
            detail: format!("XML without an error code: {}", excerpt(text)),
        },
    }
}

/// The text of the first `<name>…</name>` element; enough for the gateway's flat envelope.
fn tag(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].trim().to_string())
}

/// The gateway's codes (공공데이터포털 에러 코드): 03 no data, 22 over quota, 20/21/30/31/32/33
/// the key or the caller is not allowed.
fn classify(service: Service, code: String, reason: String) -> OutdoorError {
    match code.as_str() {
        "03" => OutdoorError::NoData { service: service.name, code, reason },
        "22" => OutdoorError::OverQuota { service: service.name, code },
        "20" | "21" | "30" | "31" | "32" | "33" => {
            OutdoorError::KeyRefused { service: service.name, key: service.key_file, code, reason }
        }
        _ => OutdoorError::Service { service: service.name, code, reason },
    }
}

fn excerpt(text: &str) -> String {
    let short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// A measured value as the services send it: a string number, or "-", "" or null for none.
/// KMA marks missing observations with values beyond ±900; those are none too.
pub fn number(raw: Option<&str>) -> Option<f32> {
    let v: f32 = raw?.trim().parse().ok()?;
    (v.is_finite() && v.abs() < 900.0).then_some(v)
}

/// Accepts a string, a number or null where the services are not consistent about which.
pub fn loose_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Service = Service { name: "AirKorea", key_file: "outdoor.airkorea.service_key_file" };

    #[test]
    fn missing_values_are_none_and_numbers_are_read() {
        assert_eq!(number(Some("23")), Some(23.0));
        assert_eq!(number(Some(" -3.5 ")), Some(-3.5));
        for raw in [Some("-"), Some(""), None, Some("점검중"), Some("-998.9"), Some("999"), Some("NaN")] {
            assert_eq!(number(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn the_xml_envelope_names_the_refused_key() {
        let xml = "<OpenAPI_ServiceResponse>\n\t<cmmMsgHeader>\n\t\t<errMsg>SERVICE ERROR</errMsg>\n\t\t<returnAuthMsg>SERVICE_KEY_IS_NOT_REGISTERED_ERROR</returnAuthMsg>\n\t\t<returnReasonCode>30</returnReasonCode>\n\t</cmmMsgHeader>\n</OpenAPI_ServiceResponse>";
        let err = open::<serde_json::Value>(S, xml).expect_err("key error");
        assert!(matches!(&err, OutdoorError::KeyRefused { code, .. } if code == "30"), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("outdoor.airkorea.service_key_file") && text.contains("서비스 키"), "{text}");
        assert!(matches!(open::<serde_json::Value>(S, "<html>oops</html>"), Err(OutdoorError::Garbage { .. })));
    }
}

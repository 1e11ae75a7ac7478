//! Korean SMS rules: an SMS is at most 90 bytes in EUC-KR (45 Hangul); longer text goes as LMS
//! (title at most 40 bytes, body at most 2,000 bytes, cut on a character boundary). Characters
//! EUC-KR cannot carry (emoji, most symbols outside KS X 1001) are replaced by '?', never a
//! failed send.

use encoding_rs::EUC_KR;

pub const SMS_MAX_BYTES: usize = 90;
pub const LMS_TITLE_MAX_BYTES: usize = 40;
pub const LMS_BODY_MAX_BYTES: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MessageType {
    #[serde(rename = "SMS")]
    Sms,
    #[serde(rename = "LMS")]
    Lms,
}

impl MessageType {
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Sms => "SMS",
            MessageType::Lms => "LMS",
        }
    }
}

/// A text ready for a Korean gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub kind: MessageType,
    /// LMS only.
    pub subject: Option<String>,
    pub body: String,
    /// EUC-KR length of `body`.
    pub bytes: usize,
}

/// Bytes `c` takes in EUC-KR, or None when EUC-KR cannot encode it.
fn euc_kr_len(c: char) -> Option<usize> {
    if c.is_ascii() {
        return Some(1);
    }
    let mut buf = [0u8; 4];
    let (bytes, _, unmappable) = EUC_KR.encode(c.encode_utf8(&mut buf));
    (!unmappable).then_some(bytes.len())
}

/// Replaces what EUC-KR cannot carry with '?'.
pub fn sanitize(text: &str) -> String {
    text.chars().map(|c| if euc_kr_len(c).is_some() { c } else { '?' }).collect()
}

pub fn byte_len(text: &str) -> usize {
    text.chars().map(|c| euc_kr_len(c).unwrap_or(1)).sum()
}

/// The longest prefix of `text` within `max` EUC-KR bytes.
pub fn truncate(text: &str, max: usize) -> String {
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        let n = euc_kr_len(c).unwrap_or(1);
        if used + n > max {
            break;
        }
        used += n;
        out.push(c);
    }
    out
}

/// SMS when it fits in 90 bytes, otherwise LMS with `title`.
pub fn compose(body: &str, title: &str) -> Text {
    let body = sanitize(body);
    let bytes = byte_len(&body);
    if bytes <= SMS_MAX_BYTES {
        return Text { kind: MessageType::Sms, subject: None, body, bytes };
    }
    let body = truncate(&body, LMS_BODY_MAX_BYTES);
    let bytes = byte_len(&body);
    Text { kind: MessageType::Lms, subject: Some(truncate(&sanitize(title), LMS_TITLE_MAX_BYTES)), body, bytes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangul_is_two_bytes_ascii_one() {
        assert_eq!(byte_len("가나다"), 6);
        assert_eq!(byte_len("abc"), 3);
        assert_eq!(byte_len("36.5℃"), 6, "℃ is in KS X 1001");
    }

    #[test]
    fn forty_five_hangul_fit_an_sms_forty_six_do_not() {
        let fits = "가".repeat(45);
        assert_eq!(compose(&fits, "t").kind, MessageType::Sms);
        let long = "가".repeat(46);
        let t = compose(&long, "[햇살어린이집] 알림");
        assert_eq!(t.kind, MessageType::Lms);
        assert_eq!(t.subject.as_deref(), Some("[햇살어린이집] 알림"));
    }

    #[test]
    fn the_typical_arrival_text_is_an_sms() {
        let t = compose("[햇살어린이집] 김민지 어린이가 08:42에 등원했습니다. (체온 36.5℃)", "t");
        assert_eq!(t.kind, MessageType::Sms, "{} bytes", t.bytes);
        assert_eq!(t.bytes, 66); // Python: len(text.encode("euc-kr"))
    }

    #[test]
    fn emoji_are_replaced_not_fatal() {
        let t = compose("민지 등원 😀👍", "t");
        assert_eq!(t.body, "민지 등원 ??");
    }

    #[test]
    fn lms_limits_are_bytes_on_character_boundaries() {
        let t = compose(&"가".repeat(1500), &"제".repeat(30));
        assert_eq!(t.kind, MessageType::Lms);
        assert_eq!(t.bytes, 2000);
        assert_eq!(byte_len(t.subject.as_deref().unwrap_or("")), 40);
    }
}

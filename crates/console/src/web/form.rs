//! Small parsers the web layer needs without pulling in more of axum: form bodies and query
//! strings (`application/x-www-form-urlencoded`), cookies, percent-encoding, and the check that a
//! `next` target stays on this site.

use axum::http::HeaderMap;

/// The pairs of a form body or query string, decoded.
pub fn parse(text: &[u8]) -> Vec<(String, String)> {
    text.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

/// The first value of `name` in a form body or query string.
pub fn field(text: &[u8], name: &str) -> Option<String> {
    parse(text).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                match std::str::from_utf8(&raw[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters (for a query value).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// `next` when it is a path on this site (`/…`, not `//host` or `/\host`, no control
/// characters), else `/`: a login must not send staff elsewhere.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Compares in time that depends only on the lengths (which are public: tokens have one length).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The field `name` of a `multipart/form-data` body (an upload form's `csrf`), when it is there
/// as a plain text part.
pub fn multipart_field(body: &[u8], name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = body.windows(marker.len()).position(|w| w == marker.as_bytes())?;
    let rest = &body[at + marker.len()..];
    let start = rest.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let value = &rest[start..];
    let end = value.windows(4).position(|w| w == b"\r\n--")?;
    Some(String::from_utf8_lossy(&value[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let f = parse(b"id=kim&password=a+b%26c%3D&next=%2Fvisitors%3Fday%3D1&bad=%zz&end=%4");
        assert_eq!(f[0], ("id".into(), "kim".into()));
        assert_eq!(f[1].1, "a b&c=");
        assert_eq!(f[2].1, "/visitors?day=1");
        assert_eq!(f[3].1, "%zz");
        assert_eq!(f[4].1, "%4");
        assert_eq!(field("x=%ED%95%9C".as_bytes(), "x").as_deref(), Some("한"));
        assert_eq!(encode("/a b?c=한"), "/a%20b%3Fc%3D%ED%95%9C");
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/alerts?x=1")), "/alerts?x=1");
        for bad in ["//evil.example", "/\\evil", "https://evil.example", "", "/a\r\nSet-Cookie: x"] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn cookies_and_multipart_fields_are_found() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "lang=en; dolbom_session=abc".parse().expect("header"));
        assert_eq!(cookie(&h, "dolbom_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "none"), None);
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok123\r\n--XX--\r\n";
        assert_eq!(multipart_field(body, "csrf").as_deref(), Some("tok123"));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}

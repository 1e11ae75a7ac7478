//! `application/x-www-form-urlencoded` bodies and query strings, read into a map (the forms are
//! small and flat; a repeated name keeps every value).

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Form(HashMap<String, Vec<String>>);

impl Form {
    pub fn parse(text: &str) -> Form {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(decode(k)).or_default().push(decode(v));
        }
        Form(map)
    }

    pub fn query(uri: &axum::http::Uri) -> Form {
        Form::parse(uri.query().unwrap_or(""))
    }

    /// The first value, trimmed; None when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.get(key).cloned().unwrap_or_default()
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_korean_plus_and_stray_percents() {
        let f = Form::parse("name=%EA%B9%80+%EB%AF%BC%EC%A7%80&p=a&p=b&bad=%zz%&empty=");
        assert_eq!(f.get("name"), Some("김 민지"));
        assert_eq!(f.all("p"), vec!["a", "b"]);
        assert_eq!(f.get("bad"), Some("%zz%"));
        assert_eq!(f.get("empty"), None);
    }
}

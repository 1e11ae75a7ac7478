//! The pages' forms and query strings as a map (the forms are small and flat; a repeated name
//! keeps every value), decoded by the web layer's [`crate::web::form::parse`].

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Form(HashMap<String, Vec<String>>);

impl Form {
    pub fn parse(text: &str) -> Form {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in crate::web::form::parse(text.as_bytes()) {
            map.entry(k).or_default().push(v);
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

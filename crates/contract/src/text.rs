//! Names typed into a directory or an enrolment, and ids and topics read from MQTT, may carry
//! control characters (a newline, an ESC sequence, a bidi override, a zero-width mark). None of
//! them may reach a parent's phone, a log or a terminal raw. One definition for every wing.

use std::borrow::Cow;

/// Control characters, and the invisible marks that can hide or reorder what a reader sees
/// (zero-width characters, bidi embeddings, overrides and isolates, the BOM).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// For texts: each hidden character becomes a space, runs of spaces one, and the ends trimmed.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let spaced: String = s.chars().map(|c| if is_hidden(c) { ' ' } else { c }).collect();
    Cow::Owned(spaced.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
}

/// For logs and records: hidden characters escaped (`\n`, `\u{1b}`), so they show but do nothing.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if is_hidden(c) { c.escape_default().to_string() } else { c.to_string() }).collect())
}

/// [`visible`], cut to `max` characters (a `…` says it was cut): for ids and topics in logs.
pub fn visible_cut(s: &str, max: usize) -> String {
    let mut out: String = visible(&s.chars().take(max).collect::<String>()).into_owned();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_pass_raw() {
        let cases = [
            ("김민지", "김민지"),
            ("김민지\n[긴급] 센터로 전화주세요", "김민지 [긴급] 센터로 전화주세요"),
            ("Min\u{1b}[31mji", "Min [31mji"),
            ("\t민지\r\n", "민지"),
            ("a\u{7f}b\u{85}c", "a b c"),
            ("\u{202e}지민", "지민"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "{input:?}");
            assert!(!visible(input).chars().any(is_hidden), "{input:?}");
        }
        assert_eq!(visible("a\nb\u{1b}"), "a\\nb\\u{1b}");
        assert_eq!(visible("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(visible_cut("abcdef", 3), "abc…");
        assert_eq!(visible_cut("ab\n", 3), "ab\\n");
    }
}

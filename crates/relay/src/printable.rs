//! Names typed into a directory and ids read from MQTT may carry control characters (a newline,
//! an ESC sequence, a bidi override). None of them may reach a parent's phone or a terminal raw.

use std::borrow::Cow;

/// Control characters and the invisible bidi controls that can reorder what a reader sees.
fn is_hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
    }
}

//! Korean mobile numbers as people write them, reduced to the domestic digits gateways want
//! (`01012345678`). Guardians' numbers come from a hand-edited directory: `+82-10-…` must not
//! become `821012345678`, and `1-2-3-4-5-6-7-8` is not a number at all.

/// Why a string is not a Korean mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("empty")]
    Empty,
    #[error("`{0}` is not allowed (digits, spaces, '-', '.', '(', ')' and a leading '+' only)")]
    Character(char),
    #[error("only Korean numbers (+82) are texted")]
    Country,
    #[error("the digits are not grouped like a phone number (010-1234-5678)")]
    Grouping,
    #[error("not a Korean mobile number (010, or 011/016/017/018/019)")]
    NotMobile,
    #[error("{0} digits: a mobile number has 11 (010) or 10-11 (011, 016-019)")]
    Length(usize),
}

/// A number as it may appear in a log: the prefix and the last four digits (`010-****-5678`),
/// enough to tell which guardian it was without writing a child's family's number down.
pub fn mask(number: &str) -> String {
    let mut digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    // "+82 10-…" shows as the domestic "010-…", as the number is known here.
    if number.trim_start().starts_with('+') && digits.starts_with(&['8', '2']) && digits.get(2) != Some(&'0') {
        digits.splice(..2, ['0']);
    }
    if digits.len() < 8 {
        return "***".into();
    }
    let head: String = digits[..3].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("{head}-****-{tail}")
}

/// `text` (a gateway's answer, an error) with every number of 9 or more digits that starts
/// with `0` or `+` masked as [`mask`] does. A number's digit groups may be joined by one space,
/// '-' or '.' each, as people write them: `010 1234 5678`, `010.1234.5678`, `+82 10-1234-5678`.
pub fn mask_in(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !(digit(i) || (matches!(chars[i], '+' | '(') && digit(i + 1))) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // "(010) 1234-5678": the parenthesis closes once, after the first group.
        let mut open = chars[i] == '(';
        let mut end = i + 1;
        loop {
            if digit(end) {
                end += 1;
            } else if open && chars.get(end) == Some(&')') && (digit(end + 1) || digit(end + 2)) {
                open = false;
                end += 1;
            } else if chars.get(end).copied().is_some_and(is_separator) && digit(end + 1) {
                end += 2;
            } else {
                break;
            }
        }
        let run: String = chars[i..end].iter().collect();
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if digits >= 9 && (run.trim_start_matches('(').starts_with('0') || run.starts_with('+')) {
            out.push_str(&mask(&run));
        } else {
            out.push_str(&run);
        }
        i = end;
    }
    out
}

/// A phone field the directory refused, for its complaint: masked whole when it holds 7 or more
/// digits, however they are written (`010/1234/5678` too), since most of a number is still
/// someone's number; shorter ones are shown so the director can see the typo.
pub fn mask_field(input: &str) -> String {
    if input.chars().filter(char::is_ascii_digit).count() >= 7 {
        mask(input)
    } else {
        input.to_string()
    }
}

/// Separators people put between digit groups.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.')
}

/// The domestic digits of a Korean mobile number written in a domestic or international form.
pub fn normalize_mobile(input: &str) -> Result<String, PhoneError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(PhoneError::Empty);
    }
    if let Some(c) = s.chars().find(|&c| !(c.is_ascii_digit() || is_separator(c) || "()+".contains(c))) {
        return Err(PhoneError::Character(c));
    }
    if s[1..].contains('+') {
        return Err(PhoneError::Character('+'));
    }
    // The country code: +82, 0082, or a bare 82 (no domestic number starts with 8).
    let national = if let Some(rest) = s.strip_prefix('+') {
        rest.trim_start().strip_prefix("82").ok_or(PhoneError::Country)?
    } else if let Some(rest) = s.strip_prefix("0082") {
        rest
    } else if s.starts_with("00") {
        return Err(PhoneError::Country);
    } else if let Some(rest) = s.strip_prefix("82") {
        rest
    } else {
        return domestic(s);
    };
    let national = national.trim_start_matches(is_separator);
    // The trunk zero, written "(0)" after the country code, or (a common slip) written plainly.
    let national = national.strip_prefix("(0)").map(|r| r.trim_start_matches(is_separator)).unwrap_or(national);
    if national.is_empty() || national.starts_with(is_separator) {
        return Err(PhoneError::Grouping);
    }
    if national.starts_with('0') {
        domestic(national)
    } else {
        domestic(&format!("0{national}"))
    }
}

/// A domestic form: one run of digits, or groups of 3, 3-4 and 4 digits (the first may be in
/// parentheses, as in "(010) 1234-5678").
fn domestic(s: &str) -> Result<String, PhoneError> {
    let s = match s.strip_prefix('(') {
        Some(rest) => {
            let (area, tail) = rest.split_once(')').ok_or(PhoneError::Grouping)?;
            if area.is_empty() || !area.chars().all(|c| c.is_ascii_digit()) {
                return Err(PhoneError::Grouping);
            }
            format!("{area} {tail}")
        }
        None => s.to_string(),
    };
    if s.contains(['(', ')', '+']) {
        return Err(PhoneError::Grouping);
    }
    let groups: Vec<&str> = s.split(is_separator).filter(|g| !g.is_empty()).collect();
    let digits: String = groups.concat();
    let n = digits.len();
    let mobile = matches!(digits.get(..3), Some("010" | "011" | "016" | "017" | "018" | "019"));
    if !mobile {
        return Err(PhoneError::NotMobile);
    }
    // Two separators in a row ("010--1234") are a typo we forgive; other shapes are not numbers.
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if !matches!(lengths.as_slice(), [_] | [3, 7 | 8] | [3, 3 | 4, 4]) {
        return Err(PhoneError::Grouping);
    }
    match n {
        11 => Ok(digits),
        10 if !digits.starts_with("010") => Ok(digits),
        _ => Err(PhoneError::Length(n)),
    }
}

/// A center's sender number (a landline or a representative number is fine there): the digits,
/// when the string is digits and separators only and has a plausible count of them.
pub fn normalize_sender(input: &str) -> Result<String, PhoneError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(PhoneError::Empty);
    }
    if let Some(c) = s.chars().find(|&c| !(c.is_ascii_digit() || is_separator(c))) {
        return Err(PhoneError::Character(c));
    }
    let groups: Vec<&str> = s.split(is_separator).filter(|g| !g.is_empty()).collect();
    if groups.len() > 3 || groups.iter().any(|g| g.len() < 2) {
        return Err(PhoneError::Grouping);
    }
    let digits: String = groups.concat();
    if !(8..=12).contains(&digits.len()) {
        return Err(PhoneError::Length(digits.len()));
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_in_logs() {
        assert_eq!(mask("01012345678"), "010-****-5678");
        assert_eq!(mask("010-1234-5678"), "010-****-5678");
        assert_eq!(mask("123"), "***");
        assert_eq!(
            mask_in("recipient 01012345678 refused (code -2018), to 010-9876-5432."),
            "recipient 010-****-5678 refused (code -2018), to 010-****-5432."
        );
        assert_eq!(mask_in("status 502 after 2500 ms"), "status 502 after 2500 ms");
        for (written, masked) in [
            ("010 1234 5678", "010-****-5678"),
            ("010.1234.5678", "010-****-5678"),
            ("+82 10-1234-5678", "010-****-5678"),
            ("+82-10-1234-5678", "010-****-5678"),
            ("+821012345678", "010-****-5678"),
            ("0082 10 1234 5678", "008-****-5678"),
            ("(010) 1234-5678", "010-****-5678"),
            ("(010)1234-5678", "010-****-5678"),
        ] {
            let line = format!("to {written}, refused.");
            assert_eq!(mask_in(&line), format!("to {masked}, refused."), "{written}");
        }
        // Dates, versions and short codes stay as they are.
        for plain in ["on 2026.11.25 at 08:30", "v1.2.3", "code -2018", "+1 of 3", "1 2 3", "(see 2)"] {
            assert_eq!(mask_in(plain), plain);
        }
        assert_eq!(mask_field("010/1234/5678"), "010-****-5678");
        assert_eq!(mask_field("1-2-3-4-5-6-7-8"), "123-****-5678");
        assert_eq!(mask_field("0111234x"), "***");
        assert_eq!(mask_field("010-12"), "010-12");
    }

    #[test]
    fn every_way_of_writing_a_mobile_number_gives_the_domestic_digits() {
        let cases = [
            ("010-1234-5678", "01012345678"),
            ("01012345678", "01012345678"),
            ("010 1234 5678", "01012345678"),
            ("010.1234.5678", "01012345678"),
            ("  010-1234-5678  ", "01012345678"),
            ("(010) 1234-5678", "01012345678"),
            ("010-12345678", "01012345678"),
            ("011-123-4567", "0111234567"),
            ("016-1234-5678", "01612345678"),
            ("017-123-4567", "0171234567"),
            ("018 123 4567", "0181234567"),
            ("019-1234-5678", "01912345678"),
            ("+82-10-1234-5678", "01012345678"),
            ("+82 10 1234 5678", "01012345678"),
            ("+821012345678", "01012345678"),
            ("+82 (0)10-1234-5678", "01012345678"),
            ("+82(0)10 1234 5678", "01012345678"),
            ("+82 010-1234-5678", "01012345678"),
            ("82-10-1234-5678", "01012345678"),
            ("821012345678", "01012345678"),
            ("0082-10-1234-5678", "01012345678"),
            ("0082 10 1234 5678", "01012345678"),
            ("+82-11-123-4567", "0111234567"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_mobile(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn what_is_not_a_korean_mobile_number_is_refused_with_the_reason() {
        use PhoneError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("1-2-3-4-5-6-7-8", NotMobile),
            ("0-1-0-1-2-3-4-5-6-7-8", Grouping),
            ("010-1234-567", Grouping),
            ("010-12-345678", Grouping),
            ("02-123-4567", NotMobile),
            ("0212345678", NotMobile),
            ("031-123-4567", NotMobile),
            ("070-1234-5678", NotMobile),
            ("1588-1234", NotMobile),
            ("0101234567", Length(10)),
            ("010123456789", Length(12)),
            ("0111234", Length(7)),
            ("010-1234-5678a", Character('a')),
            ("010-ABCD-5678", Character('A')),
            ("010/1234/5678", Character('/')),
            ("010-1234+5678", Character('+')),
            ("+1-202-555-0100", Country),
            ("+44 7700 900123", Country),
            ("001-82-10-1234-5678", Country),
            ("+82", Grouping),
            ("010-1234-5678-9", Grouping),
            ("+82-2-123-4567", NotMobile),
            ("+82--", Grouping),
            ("(010 1234-5678", Grouping),
            ("010 (1234) 5678", Grouping),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_mobile(input), Err(want.clone()), "{input:?}");
        }
    }

    #[test]
    fn sender_numbers_may_be_landlines_or_representative_numbers() {
        for (input, want) in [("02-123-4567", "021234567"), ("1588-1234", "15881234"), ("031 123 4567", "0311234567")] {
            assert_eq!(normalize_sender(input).as_deref(), Ok(want), "{input}");
        }
        for input in ["", "1-2-3-4-5-6-7-8", "02-123-4567x", "1234567", "+82-2-123-4567"] {
            assert!(normalize_sender(input).is_err(), "{input:?}");
        }
    }
}

//! Text rules shared by every edge that decodes what users send: the one
//! rule for what may be a business key value, a system name or an id
//! ([`check_printable`], applied by the receivers at ingest and by the
//! console at lookup), and percent-decoding.

/// Whether `c` is a control character (C0 U+0000-U+001F, DEL U+007F, C1
/// U+0080-U+009F) or a bidi control (U+061C, U+200E, U+200F,
/// U+202A-U+202E, U+2066-U+2069): characters that do not show as
/// themselves, so two values that look the same may differ by one, and a
/// bidi control reorders the text around it on a page.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// A text that holds a character [`is_unprintable`] refuses: which, and at
/// which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "holds the {} U+{:04X} at byte {at}; business keys, system names and ids are printable text: remove control characters and bidi controls",
    if ch.is_control() { "control character" } else { "bidi control" },
    *ch as u32
)]
pub struct Unprintable {
    pub ch: char,
    pub at: usize,
}

/// The rule for business key values, system (service) names and event ids
/// and sources: no character that [`is_unprintable`]. Receivers refuse a
/// record that breaks it (the record alone, saying which field); the
/// console refuses such a lookup, so whatever is stored can be looked up.
pub fn check_printable(text: &str) -> Result<(), Unprintable> {
    match text.char_indices().find(|(_, c)| is_unprintable(*c)) {
        Some((at, ch)) => Err(Unprintable { ch, at }),
        None => Ok(()),
    }
}

/// Decodes `%xx` escapes (invalid ones are kept as written); with `form`,
/// `+` is a space as in `application/x-www-form-urlencoded` query strings.
/// Bytes that are not UTF-8 after decoding become U+FFFD.
pub fn percent_decode(text: &str, form: bool) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if form => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_plus_and_bad_escapes() {
        assert_eq!(percent_decode("SO%2D1+x", true), "SO-1 x");
        assert_eq!(percent_decode("SO%2D1+x", false), "SO-1+x");
        assert_eq!(percent_decode("%zz%4", true), "%zz%4");
        assert_eq!(percent_decode("%C3%A9", false), "é");
    }

    #[test]
    fn control_and_bidi_characters_are_refused_with_what_and_where() {
        assert_eq!(check_printable("SO-1 é 注文"), Ok(()));
        for (text, what, at) in [
            ("x\u{0}y", "U+0000", 1),
            ("SO-\u{1b}[31m", "U+001B", 3),
            ("SO-1\u{7f}", "U+007F", 4),
            ("é\u{85}", "U+0085", 2),
            ("SO-\u{202e}1", "U+202E", 3),
            ("\u{2066}x", "U+2066", 0),
            ("a\u{200f}", "U+200F", 1),
            ("tab\there", "U+0009", 3),
        ] {
            let error = check_printable(text).unwrap_err();
            assert_eq!(error.at, at, "{text:?}");
            let message = error.to_string();
            assert!(
                message.contains(what) && message.contains(&format!("byte {at}")),
                "{text:?}: {message}"
            );
            assert!(
                !message.contains(error.ch),
                "the character itself is not echoed"
            );
        }
        assert!(is_unprintable('\u{0}') && is_unprintable('\u{202a}') && is_unprintable('\u{9f}'));
        assert!(!is_unprintable('a') && !is_unprintable('\u{a0}') && !is_unprintable('\u{200b}'));
    }
}

//! How user text is written into a page: askama's HTML escaping, and then
//! the characters that do not show as themselves (control characters and
//! bidi controls, [`domain::text::is_unprintable`]) as a visible escape
//! (`\u{202e}`), so a stored U+202E cannot reorder a page and NUL never
//! reaches one. Tab, line feed and carriage return stay (log bodies, stack
//! traces). [`Html`] is the escaper of every `.html` template
//! (`console/askama.toml`); [`html`] is the same for SVG built by hand
//! (`svg::esc`).

use std::fmt::{self, Write};

/// Whether a page shows `c` as an escape instead of itself.
pub fn hidden(c: char) -> bool {
    domain::text::is_unprintable(c) && !matches!(c, '\t' | '\n' | '\r')
}

/// The escaper of the console's templates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut start = 0;
        for (at, c) in text.char_indices().filter(|(_, c)| hidden(*c)) {
            askama::filters::Html.write_escaped_str(&mut dest, &text[start..at])?;
            write!(dest, "\\u{{{:x}}}", c as u32)?;
            start = at + c.len_utf8();
        }
        askama::filters::Html.write_escaped_str(&mut dest, &text[start..])
    }
}

/// `text` escaped as a page writes it.
pub fn html(text: &str) -> String {
    use askama::filters::Escaper;
    let mut out = String::with_capacity(text.len());
    // Writing to a String cannot fail.
    let _ = Html.write_escaped_str(&mut out, text);
    out
}

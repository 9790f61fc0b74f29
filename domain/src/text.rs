//! Text rules shared by every edge that decodes what users send.

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
    use super::percent_decode;

    #[test]
    fn escapes_plus_and_bad_escapes() {
        assert_eq!(percent_decode("SO%2D1+x", true), "SO-1 x");
        assert_eq!(percent_decode("SO%2D1+x", false), "SO-1+x");
        assert_eq!(percent_decode("%zz%4", true), "%zz%4");
        assert_eq!(percent_decode("%C3%A9", false), "é");
    }
}

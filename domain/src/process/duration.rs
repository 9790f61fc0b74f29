//! Durations as people write them in definitions: `90s`, `15m`, `4h`, `2d`,
//! `1h30m`, `500ms`, `1w`.

/// Nanoseconds in `text`, or `None` when it is not a duration.
pub fn parse_ns(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ns: u64 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "w" => 604_800_000_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit_ns)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// The shortest exact form: `15m`, `1h30m`, `90s`, `250ms`.
pub fn format_ns(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let units = [
        ("d", 86_400_000_000_000u64),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    let mut out = String::new();
    let mut rest = ns;
    for (name, size) in units {
        if rest >= size {
            out.push_str(&format!("{}{name}", rest / size));
            rest %= size;
        }
    }
    if out.is_empty() {
        out = format!("{ns}ns");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_ns("15m"), Some(900_000_000_000));
        assert_eq!(parse_ns("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_ns("2d"), Some(172_800_000_000_000));
        assert_eq!(parse_ns("500ms"), Some(500_000_000));
        for bad in ["", "15", "m", "15 minutes", "1.5h", "-1h", "15M"] {
            assert_eq!(parse_ns(bad), None, "{bad}");
        }
        assert_eq!(format_ns(5_400_000_000_000), "1h30m");
        assert_eq!(format_ns(250_000_000), "250ms");
    }
}

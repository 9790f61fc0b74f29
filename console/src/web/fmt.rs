//! How figures read on a page: times in UTC, durations in the two largest
//! units that matter, percentages to one decimal, counts with separators.

use time::OffsetDateTime;

/// `2026-11-26 14:03:12` (UTC); empty for 0.
pub fn time(ns: u64) -> String {
    if ns == 0 {
        return String::new();
    }
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

/// `14:03:12.345` (UTC).
pub fn clock(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .map(|t| {
            format!(
                "{:02}:{:02}:{:02}.{:03}",
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        })
        .unwrap_or_default()
}

/// `850 µs`, `120 ms`, `4.2 s`, `12m 05s`, `3h 12m`, `2d 04h`.
pub fn duration(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    match ns {
        0 => "0".into(),
        n if n < MS => format!("{} µs", n / US),
        n if n < S => format!("{} ms", n / MS),
        n if n < 60 * S => format!("{:.1} s", n as f64 / S as f64),
        n if n < 3600 * S => format!("{}m {:02}s", n / (60 * S), (n / S) % 60),
        n if n < 86_400 * S => format!("{}h {:02}m", n / (3600 * S), (n / (60 * S)) % 60),
        n => format!("{}d {:02}h", n / (86_400 * S), (n / (3600 * S)) % 24),
    }
}

/// `98.5%`, or `–` when nothing was judged.
pub fn percent(p: Option<f64>) -> String {
    match p {
        Some(p) if p > 0.0 && p < 0.1 => "<0.1%".into(),
        Some(p) => format!("{p:.1}%"),
        None => "–".into(),
    }
}

/// `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `12.3/min`, `1,204/min`.
/// Bytes in binary units: `512 B`, `1.5 KiB`, `12.3 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A partition id as a date: `20261130` -> `2026-11-30`, `202611` ->
/// `2026-11`; any other id as it is.
pub fn partition(id: &str) -> String {
    let digits = id.bytes().all(|b| b.is_ascii_digit());
    match id.len() {
        8 if digits => format!("{}-{}-{}", &id[..4], &id[4..6], &id[6..]),
        6 if digits => format!("{}-{}", &id[..4], &id[4..]),
        _ => id.to_string(),
    }
}

pub fn rate(per_minute: f64) -> String {
    if per_minute >= 100.0 {
        format!("{}/min", count(per_minute.round() as u64))
    } else {
        format!("{per_minute:.1}/min")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(duration(1_500_000), "1 ms");
        assert_eq!(duration(4_200_000_000), "4.2 s");
        assert_eq!(duration(725 * 1_000_000_000), "12m 05s");
        assert_eq!(duration(27 * 3_600 * 1_000_000_000), "1d 03h");
        assert_eq!(percent(Some(98.54)), "98.5%");
        assert_eq!(percent(None), "–");
        assert_eq!(time(1_764_164_592_000_000_000), "2025-11-26 13:43:12");
    }

    #[test]
    fn sizes_and_partitions_read_as_people_say_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(50 << 30), "50.0 GiB");
        assert_eq!(partition("20261130"), "2026-11-30");
        assert_eq!(partition("202611"), "2026-11");
        assert_eq!(partition("all"), "all");
        assert_eq!(partition("5983632"), "5983632");
    }
}

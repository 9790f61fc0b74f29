//! `from` / `to` query parameters: RFC 3339 timestamps or relative forms
//! (`now`, `now-15m`, `now-24h`, `now-7d`), as Grafana writes them.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::AppError;

/// Parses one bound against `now_ns`; the error says what is accepted.
pub fn parse(param: &str, text: &str, now_ns: u64) -> Result<u64, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{param}` {text:?} is not a time; use RFC 3339 (2026-11-26T13:00:00Z) or now, now-15m, now-24h, now-7d"
        )
    };
    if let Some(rest) = text.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ns);
        }
        let amount = rest.strip_prefix('-').ok_or_else(bad)?;
        let (number, unit) =
            amount.split_at(amount.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let unit_ns: u64 = match unit {
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "w" => 7 * 86_400 * 1_000_000_000,
            _ => return Err(bad()),
        };
        return Ok(now_ns.saturating_sub(n.saturating_mul(unit_ns)));
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?;
    u64::try_from(t.unix_timestamp_nanos()).map_err(|_| bad())
}

/// A resolved range, and the key its aggregates are cached under: a range
/// relative to now (`now-24h` to `now`) keeps its key as time moves on, so
/// one answer serves every request while it is fresh; an absolute range is keyed by its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub from_ns: u64,
    pub to_ns: u64,
    pub key: String,
    /// Only this plant's records (`plant=`), for the aggregates that have
    /// a plant dimension; `None`: every record.
    pub plant: Option<String>,
}

impl Window {
    /// The same range, for one plant (`plant=`; absent or empty: all).
    /// A plant no record names answers empty, as a label filter does in
    /// Grafana or SigNoz; a name that could never be stored is a 400.
    pub fn with_plant(mut self, plant: Option<&str>) -> Result<Self, AppError> {
        let Some(plant) = self::plant(plant)? else {
            return Ok(self);
        };
        self.key = format!("{}|plant={plant}", self.key);
        self.plant = Some(plant);
        Ok(self)
    }
}

/// A `plant=` parameter, checked: `None` when absent or empty (all
/// plants). A plant no record names answers empty, as a label filter does
/// in Grafana or SigNoz; a name that could never be stored is a 400.
pub fn plant(plant: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(plant) = plant.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    domain::text::check_printable(plant)
        .map_err(|e| AppError::BadRequest(format!("`plant` {plant:?}: {e}")))?;
    if plant.len() > 256 {
        return Err(AppError::BadRequest(
            "`plant` is longer than 256 bytes; give a plant's name as its edge collector's `plant` sets it".into(),
        ));
    }
    Ok(Some(plant.to_string()))
}

/// The range the console shows when none is given.
pub const DEFAULT_FROM: &str = "now-24h";
pub const DEFAULT_TO: &str = "now";

/// [`range`], with its cache key.
pub fn window(from: Option<&str>, to: Option<&str>, now_ns: u64) -> Result<Window, AppError> {
    let (from_ns, to_ns) = range(from, to, now_ns)?;
    let from = from.unwrap_or(DEFAULT_FROM).trim();
    let to = to.unwrap_or(DEFAULT_TO).trim();
    let key = if from.starts_with("now") && to.starts_with("now") {
        format!("{from}|{to}")
    } else {
        format!("{from_ns}|{to_ns}")
    };
    Ok(Window {
        from_ns,
        to_ns,
        key,
        plant: None,
    })
}

/// The `from` / `to` pair of a request: default the last 24 hours.
pub fn range(from: Option<&str>, to: Option<&str>, now_ns: u64) -> Result<(u64, u64), AppError> {
    let from_ns =
        parse("from", from.unwrap_or(DEFAULT_FROM), now_ns).map_err(AppError::BadRequest)?;
    let to_ns = parse("to", to.unwrap_or(DEFAULT_TO), now_ns).map_err(AppError::BadRequest)?;
    if from_ns > to_ns {
        return Err(AppError::BadRequest("`from` is after `to`".into()));
    }
    Ok((from_ns, to_ns))
}

#[cfg(test)]
mod tests {
    use super::parse;

    const NOW: u64 = 1_764_164_488_000_000_000;

    #[test]
    fn relative_and_absolute_forms() {
        assert_eq!(parse("from", "now", NOW), Ok(NOW));
        assert_eq!(parse("from", "now-15m", NOW), Ok(NOW - 900_000_000_000));
        assert_eq!(parse("from", "now-24h", NOW), Ok(NOW - 86_400_000_000_000));
        assert_eq!(
            parse("from", "now-7d", NOW),
            Ok(NOW - 7 * 86_400_000_000_000)
        );
        assert_eq!(parse("to", "2025-11-26T13:41:28Z", NOW), Ok(NOW));
    }

    #[test]
    fn mistakes_say_what_is_accepted() {
        for bad in [
            "yesterday",
            "now-",
            "now-5",
            "now+1h",
            "now-1y",
            "2026-13-01",
        ] {
            let err = parse("from", bad, NOW).unwrap_err();
            assert!(err.contains("use RFC 3339"), "{bad}: {err}");
        }
    }
}

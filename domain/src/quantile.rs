//! Quantiles of a set of durations, computed one way everywhere (pages,
//! API, alert rules), so a figure on a page and the value a rule checks
//! agree.

/// The value at quantile `q` (0.0 to 1.0) of `values`, sorting them:
/// the element at rank `round((n - 1) * q)`. `None` for no values.
pub fn quantile(values: &mut [u64], q: f64) -> Option<u64> {
    values.sort_unstable();
    at(values, q)
}

/// As [`quantile`], for values already sorted.
pub fn at(sorted: &[u64], q: f64) -> Option<u64> {
    let rank = rank(sorted.len() as u64, q)?;
    sorted.get(rank as usize).copied()
}

/// The rule itself: the 0-based rank of quantile `q` among `n` sorted
/// values, `round((n - 1) * q)`; `None` for no values.
pub fn rank(n: u64, q: f64) -> Option<u64> {
    let last = n.checked_sub(1)?;
    let rank = ((last as f64) * q.clamp(0.0, 1.0)).round() as u64;
    Some(rank.min(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_of_sorted_values() {
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [7], 0.99), Some(7));
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), Some(51));
        assert_eq!(at(&v, 0.95), Some(95));
        assert_eq!(at(&v, 0.99), Some(99));
        assert_eq!(at(&v, 1.0), Some(100));
    }
}

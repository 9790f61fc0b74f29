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
    let last = sorted.len().checked_sub(1)?;
    let rank = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
    sorted.get(rank.min(last)).copied()
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

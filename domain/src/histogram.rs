//! Duration histograms over log-linear buckets: the rollups (`span_minutes`)
//! keep one per minute and operation instead of every duration, and the
//! pages read p50 and p95 from them.
//!
//! Durations under 8 ns have a bucket each; above, every power of two is
//! cut into 8 equal buckets (HdrHistogram's layout with 3 bits of
//! precision). A bucket's width is at most 1/8 of its lower bound, so a
//! quantile read from a histogram is within 12.5 % of the exact one (and
//! within 6.25 % of the middle value [`representative`] gives). The bucket
//! of a duration is integer arithmetic, the same in SQL
//! (`sql/0013_rollups.sql`) as here, so a test can check a rollup's
//! quantile lands in the bucket of the exact one. Durations of hours or
//! days are fine (`quantileTiming` would cap them at 30 s).

/// The bucket of a duration in nanoseconds.
pub fn bucket(duration_ns: u64) -> u16 {
    if duration_ns < 8 {
        return duration_ns as u16;
    }
    let top = 63 - u64::from(duration_ns.leading_zeros());
    let sub = (duration_ns >> (top - 3)) & 7;
    ((top - 2) * 8 + sub) as u16
}

/// The smallest duration in `bucket`.
pub fn lower(bucket: u16) -> u64 {
    let b = u64::from(bucket.min(LAST));
    if b < 8 {
        return b;
    }
    (8 + b % 8) << (b / 8 - 1)
}

/// The largest duration in `bucket`.
pub fn upper(bucket: u16) -> u64 {
    if bucket >= LAST {
        return u64::MAX;
    }
    lower(bucket + 1) - 1
}

/// The bucket of the largest durations.
const LAST: u16 = 495;

/// The value a quantile in `bucket` is shown as: its middle.
pub fn representative(bucket: u16) -> u64 {
    let (lo, hi) = (lower(bucket), upper(bucket));
    lo + (hi - lo) / 2
}

/// The quantile `q` of the durations counted in `buckets` ((bucket, count)
/// pairs, any order), by the rule of [`crate::quantile::at`]: the value at
/// rank `round((n - 1) * q)`, shown as its bucket's [`representative`].
/// `None` for an empty histogram.
pub fn quantile(buckets: &[(u16, u64)], q: f64) -> Option<u64> {
    let mut sorted: Vec<(u16, u64)> = buckets.iter().copied().filter(|b| b.1 > 0).collect();
    sorted.sort_unstable();
    let n: u64 = sorted.iter().map(|b| b.1).sum();
    let rank = crate::quantile::rank(n, q)?;
    let mut seen = 0u64;
    for (b, count) in sorted {
        seen += count;
        if seen > rank {
            return Some(representative(b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_have_a_bucket_each_and_larger_eight_per_power_of_two() {
        for d in 0..16 {
            assert_eq!(bucket(d), d as u16);
        }
        assert_eq!(bucket(16), 16);
        assert_eq!(bucket(17), 16);
        assert_eq!(bucket(31), 23);
        assert_eq!(bucket(32), 24);
        assert_eq!(bucket(100), 36);
        assert_eq!(bucket(1000), 63);
        // The values the SQL expression gave on ClickHouse 18.16.
        assert_eq!(bucket(4_294_967_295), 239);
        assert_eq!(bucket(4_294_967_296), 240);
        assert_eq!(bucket((1 << 54) - 1), 415);
        assert_eq!(bucket(1 << 54), 416);
        assert_eq!(bucket(u64::MAX), 495);
    }

    #[test]
    fn every_value_lies_within_its_bucket_and_buckets_are_narrow() {
        let mut d = 1u64;
        while d < u64::MAX / 3 {
            for v in [d - 1, d, d + 1, d + d / 3] {
                let b = bucket(v);
                assert!(lower(b) <= v && v <= upper(b), "{v} in {b}");
                assert_eq!(bucket(representative(b)), b);
                assert!((upper(b) - lower(b)) as f64 <= lower(b) as f64 / 8.0 + 1.0);
            }
            d = d * 3 / 2 + 1;
        }
    }

    #[test]
    fn quantiles_follow_the_nearest_rank_rule_by_bucket() {
        assert_eq!(quantile(&[], 0.5), None);
        let mut values: Vec<u64> = (1..=1000).map(|i| i * 7_919 % 100_003).collect();
        let mut counts = std::collections::BTreeMap::new();
        for v in &values {
            *counts.entry(bucket(*v)).or_insert(0u64) += 1;
        }
        let hist: Vec<(u16, u64)> = counts.into_iter().collect();
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            let exact = crate::quantile::quantile(&mut values, q).unwrap();
            let got = quantile(&hist, q).unwrap();
            assert_eq!(bucket(got), bucket(exact), "q {q}");
        }
    }
}

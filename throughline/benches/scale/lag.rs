//! The correlator's figures sampled every second, and what they say:
//! when a cycle ended and the largest lag over a span of time.

use std::time::Instant;

/// One sample of `up`'s figures, every second of the run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub records: f64,
    pub lag_s: f64,
    /// `up`'s resident memory (`VmRSS`) then, in KiB.
    pub rss_kib: u64,
}

/// The highest sampled `VmRSS` between `from` and `to`, in KiB.
pub fn max_rss(series: &[Sample], from: Instant, to: Instant) -> u64 {
    series
        .iter()
        .filter(|s| s.at >= from && s.at <= to)
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0)
}

/// The samples at which a correlator cycle had ended since the sample
/// before: its figures moved.
pub fn cycle_ends(series: &[Sample]) -> impl Iterator<Item = &Sample> {
    series
        .windows(2)
        .filter(|w| w[0].records != w[1].records || w[0].lag_s != w[1].lag_s)
        .map(|w| &w[1])
}

/// The largest lag in `series` between `from` and `to`: the gauge, and the
/// gauge plus the seconds since a cycle last ended (the watermark is at
/// least that old while a long cycle runs).
pub fn max_lag(series: &[Sample], from: Instant, to: Instant) -> (f64, f64, usize) {
    let (mut gauge, mut bound, mut n) = (0.0f64, 0.0f64, 0);
    let mut ended = series.first().map(|s| s.at);
    for w in series.windows(2) {
        let s = w[1];
        if w[0].records != s.records || w[0].lag_s != s.lag_s {
            ended = Some(s.at);
        }
        if s.at < from || s.at > to {
            continue;
        }
        n += 1;
        gauge = gauge.max(s.lag_s);
        bound = bound.max(s.lag_s + ended.map_or(0.0, |e| since(e, s.at)));
    }
    (gauge, bound, n)
}

/// Seconds from `a` to `b` (0 if `b` is earlier).
pub fn since(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64()
}

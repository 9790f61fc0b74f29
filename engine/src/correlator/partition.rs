//! Which share of the instances a correlator owns (`--correlator-partition
//! K/N`), so that N correlators share the work with no coordination but
//! their configuration.
//!
//! Correlator K of N reads the whole feed and resolves every record to its
//! root keys as one correlator would, then keeps only the steps whose root
//! key value hashes to K modulo N: the hash is 64-bit FNV-1a of the value's
//! UTF-8 bytes, computed in Rust on the resolved steps (no SQL filters by
//! it), stable across builds, platforms and restarts. An instance is one
//! (process, root value), so it belongs to exactly one partition: two
//! correlators never write the same instance, its steps or its breaches.
//!
//! Each partition keeps its own rows in `correlator_state` (its watermark
//! `correlator@K/N`, its rollup mark `process-rollups@K/N`), so one that
//! stops resumes from its own watermark; the single correlator (`0/1`, the
//! default) keeps the names it always had.

use std::fmt;

/// Correlator `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    index: u32,
    count: u32,
}

/// A `--correlator-partition` that is not `K/N` with `K < N`.
#[derive(Debug, thiserror::Error)]
#[error(
    "correlator_partition `{0}` is not K/N with 0 <= K < N (e.g. `0/2` and `1/2` for two correlators)"
)]
pub struct PartitionError(String);

impl Default for Partition {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl Partition {
    /// One correlator for everything.
    pub const WHOLE: Partition = Partition { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Self, PartitionError> {
        if count == 0 || index >= count {
            return Err(PartitionError(format!("{index}/{count}")));
        }
        Ok(Partition { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether there are several correlators.
    pub fn is_shared(&self) -> bool {
        self.count > 1
    }

    /// Whether this correlator owns the instances of `root_value`.
    pub fn owns(&self, root_value: &str) -> bool {
        self.count == 1
            || fnv1a64(root_value.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }

    /// Partition 0 also runs what must run once per deployment: the alert
    /// evaluator, the open breach counts, retention.
    pub fn is_first(&self) -> bool {
        self.index == 0
    }

    /// A `correlator_state` name of this partition: `base` itself for the
    /// single correlator, `base@K/N` otherwise.
    pub fn state_name(&self, base: &str) -> String {
        if self.is_shared() {
            format!("{base}@{self}")
        } else {
            base.to_string()
        }
    }

    /// Every partition of the same N, this one included.
    pub fn siblings(&self) -> impl Iterator<Item = Partition> {
        let count = self.count;
        (0..count).map(move |index| Partition { index, count })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Partition {
    type Err = PartitionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PartitionError(s.to_string());
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Partition::new(k, n).map_err(|_| bad())
    }
}

/// 64-bit FNV-1a: simple, stable, and written down, so that an operator
/// (or another tool) can tell which partition owns a root key.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        let p: Partition = "1/3".parse().unwrap();
        assert_eq!((p.index(), p.count()), (1, 3));
        assert_eq!(p.to_string(), "1/3");
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2", ""] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fnv1a64_is_the_published_function() {
        // Test vectors of the FNV reference (Fowler, Noll, Vo).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_root_has_exactly_one_owner() {
        let parts: Vec<Partition> = Partition::new(0, 3).unwrap().siblings().collect();
        let mut per = [0; 3];
        for i in 0..3000 {
            let root = format!("SO-{i}");
            let owners: Vec<_> = parts.iter().filter(|p| p.owns(&root)).collect();
            assert_eq!(owners.len(), 1, "{root}");
            per[owners[0].index() as usize] += 1;
        }
        assert!(per.iter().all(|n| *n > 500), "{per:?}");
        assert!(Partition::WHOLE.owns("anything"));
    }

    #[test]
    fn state_names_keep_the_single_correlators() {
        assert_eq!(Partition::WHOLE.state_name("correlator"), "correlator");
        let p = Partition::new(1, 2).unwrap();
        assert_eq!(p.state_name("correlator"), "correlator@1/2");
    }
}

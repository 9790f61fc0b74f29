//! Which keys may be carried by a walking record: one that reached a stage
//! but names no key of its process's root type, so it counts for a root only
//! through links. A link seen for the first time matters only if one of its
//! keys is such a key; every other new link (the order and customer of a new
//! trace's spans, say) is skipped without a read.
//!
//! A Bloom filter per day of record time, so memory is fixed whatever the
//! traffic: a key it has never been told about is answered "no" for sure; a
//! "yes" may be wrong (about 1 % at the sized load, more above it), which
//! costs one read of `correlator_walks` that finds nothing, never a missed
//! record. Days older than the horizon are dropped whole.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, Hasher};

use domain::model::BusinessKey;

const DAY_NS: u64 = 86_400 * 1_000_000_000;
/// Bits per day's filter: 2 MiB, about 1 % false answers at 1.75 M keys.
const BITS: usize = 1 << 24;
/// Bits set per key.
const HASHES: u64 = 5;

struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    fn new() -> Self {
        Bloom {
            bits: vec![0; BITS / 64],
        }
    }

    /// The bit positions of a key, by double hashing two 64-bit halves.
    fn positions(hash: (u64, u64)) -> impl Iterator<Item = usize> {
        (0..HASHES).map(move |i| (hash.0.wrapping_add(i.wrapping_mul(hash.1)) as usize) % BITS)
    }

    fn insert(&mut self, hash: (u64, u64)) {
        for p in Self::positions(hash) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn contains(&self, hash: (u64, u64)) -> bool {
        Self::positions(hash).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// The keys of walking records, by day of the record's time.
pub struct WalkingKeys {
    /// (day number, filter), oldest first.
    days: VecDeque<(u64, Bloom)>,
    hasher: std::collections::hash_map::RandomState,
    /// Days kept: the horizon's, plus the day in progress.
    keep: u64,
}

impl WalkingKeys {
    pub fn new(horizon_ns: u64) -> Self {
        WalkingKeys {
            days: VecDeque::new(),
            hasher: Default::default(),
            keep: horizon_ns.div_ceil(DAY_NS) + 1,
        }
    }

    fn hash(&self, key: &BusinessKey) -> (u64, u64) {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        let a = h.finish();
        // A second, independent hash: the first one's hasher fed once more.
        a.hash(&mut h);
        (a, h.finish() | 1)
    }

    /// Remembers `key` as carried by a walking record of time `time_ns`.
    pub fn insert(&mut self, key: &BusinessKey, time_ns: u64) {
        let day = time_ns / DAY_NS;
        let hash = self.hash(key);
        let slot = match self.days.iter().position(|(d, _)| *d == day) {
            Some(i) => i,
            None => {
                // Days arrive in any order (records are late or early):
                // keep the list sorted, drop what falls off the horizon.
                let at = self.days.iter().position(|(d, _)| *d > day);
                let at = at.unwrap_or(self.days.len());
                self.days.insert(at, (day, Bloom::new()));
                at
            }
        };
        self.days[slot].1.insert(hash);
        while self.days.len() as u64 > self.keep {
            self.days.pop_front();
        }
    }

    /// May a walking record carry `key`? `false` is certain.
    pub fn may_contain(&self, key: &BusinessKey) -> bool {
        let hash = self.hash(key);
        self.days.iter().any(|(_, b)| b.contains(hash))
    }

    /// Forgets the days entirely before `since_ns`.
    pub fn forget_before(&mut self, since_ns: u64) {
        let first = since_ns / DAY_NS;
        while self.days.front().is_some_and(|(d, _)| *d < first) {
            self.days.pop_front();
        }
    }

    /// Bytes held by the filters.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.days.len() * BITS / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> BusinessKey {
        BusinessKey::new("work_order", format!("WO-{n}"))
    }

    #[test]
    fn a_key_told_is_always_found_and_others_rarely() {
        let mut w = WalkingKeys::new(7 * DAY_NS);
        let now = 20_000 * DAY_NS;
        for n in 0..100_000 {
            w.insert(&key(n), now - (n % 5) * DAY_NS);
        }
        assert!((0..100_000).all(|n| w.may_contain(&key(n))));
        let wrong = (100_000..200_000)
            .filter(|n| w.may_contain(&key(*n)))
            .count();
        assert!(wrong < 1_000, "{wrong} false answers of 100000");
    }

    #[test]
    fn days_beyond_the_horizon_are_dropped() {
        let mut w = WalkingKeys::new(2 * DAY_NS);
        let base = 20_000 * DAY_NS;
        w.insert(&key(1), base);
        w.insert(&key(2), base + DAY_NS);
        w.insert(&key(3), base + 2 * DAY_NS);
        w.insert(&key(4), base + 3 * DAY_NS);
        assert_eq!(w.bytes(), 3 * BITS / 8);
        assert!(!w.may_contain(&key(1)));
        assert!(w.may_contain(&key(4)));
        w.forget_before(base + 3 * DAY_NS);
        assert!(!w.may_contain(&key(2)));
        assert!(w.may_contain(&key(4)));
    }
}

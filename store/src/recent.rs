//! A bounded set of recently written items, by 64-bit hash: the writer
//! skips a key link it wrote a moment ago. A trace's spans come from several
//! systems in separate requests, and each repeats the same few links; the
//! first write of a link is the one that counts (`key_links` keeps the first
//! ingestion), so the repeats are only bytes.
//!
//! Oldest first out at capacity. A hash collision skips a link that was
//! never written; at 64 bits and a few hundred thousand entries the chance
//! is about 1 in 10^8 per link, and a link is written again with every
//! record that carries it once it left the set.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

pub(crate) struct RecentSet {
    capacity: usize,
    inner: Mutex<(HashSet<u64>, VecDeque<u64>)>,
}

impl RecentSet {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentSet {
            capacity,
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// A stable hash of `item` (the same within one process).
    pub(crate) fn hash(item: &impl Hash) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        item.hash(&mut h);
        h.finish()
    }

    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.inner
            .lock()
            .expect("recent set lock")
            .0
            .contains(&hash)
    }

    /// Remembers `hashes`, forgetting the oldest beyond capacity.
    pub(crate) fn insert_all(&self, hashes: impl IntoIterator<Item = u64>) {
        let mut guard = self.inner.lock().expect("recent set lock");
        let (set, order) = &mut *guard;
        for h in hashes {
            if set.insert(h) {
                order.push_back(h);
            }
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_up_to_capacity() {
        let set = RecentSet::new(3);
        set.insert_all([1, 2, 3, 2]);
        assert!(set.contains(1) && set.contains(3));
        set.insert_all([4]);
        assert!(!set.contains(1));
        assert!(set.contains(2) && set.contains(3) && set.contains(4));
    }
}

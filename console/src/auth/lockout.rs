//! The delay after repeated failed sign-ins: from the fifth failure in a
//! row for one user name (known or not), that name is refused without a
//! password check for 30 s, doubling with each further failure up to 15
//! minutes. A success clears it. Failures older than an hour are forgotten.
//!
//! An attempt counts as a failure when it begins ([`Lockout::begin`]) and a
//! success takes it back, so guesses sent all at once get no more tries than
//! guesses sent one by one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before the first delay.
pub const FREE_FAILURES: u32 = 4;
const FIRST_DELAY: Duration = Duration::from_secs(30);
const LONGEST_DELAY: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Names remembered at most (oldest forgotten first), so a flood of made-up
/// names cannot grow memory.
const MAX_NAMES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Debug, Default)]
pub struct Lockout {
    failures: Mutex<HashMap<String, Failures>>,
}

fn delay(count: u32) -> Duration {
    if count <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES - 1).min(10);
    (FIRST_DELAY * 2u32.pow(doublings)).min(LONGEST_DELAY)
}

impl Lockout {
    /// Begins a sign-in attempt for `name`: `Err(wait)` when the name must
    /// still wait, else the attempt is counted as a failure until
    /// [`Lockout::succeeded`] takes it back.
    pub fn begin(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let key = name.to_lowercase();
        let mut failures = self.failures.lock().expect("lockout lock");
        if let Some(f) = failures.get(&key) {
            let until = f.last + delay(f.count);
            if until > now {
                return Err(until - now);
            }
        }
        failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        if failures.len() >= MAX_NAMES {
            if let Some(oldest) = failures
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| k.clone())
            {
                failures.remove(&oldest);
            }
        }
        let f = failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count += 1;
        f.last = now;
        Ok(())
    }

    pub fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .expect("lockout lock")
            .remove(&name.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_and_the_delay_doubles() {
        let l = Lockout::default();
        let t = Instant::now();
        // Five attempts begun at once (none has finished): the sixth waits.
        for _ in 0..5 {
            assert_eq!(l.begin("Ana", t), Ok(()));
        }
        assert_eq!(l.begin("ANA", t), Err(Duration::from_secs(30)));
        let later = t + Duration::from_secs(31);
        assert_eq!(l.begin("ana", later), Ok(()));
        assert_eq!(l.begin("ana", later), Err(Duration::from_secs(60)));
        assert_eq!(l.begin("bob", t), Ok(()));
        l.succeeded("ana");
        assert_eq!(l.begin("ana", later), Ok(()));
        assert_eq!(delay(40), LONGEST_DELAY);
    }
}

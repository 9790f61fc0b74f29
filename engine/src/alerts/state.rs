//! A rule's life, as Prometheus moves it: inactive -> pending (the condition
//! holds, not yet for `for`) -> firing -> resolved (-> pending again when it
//! holds again). Pure: the evaluator feeds it each cycle's answer and stores
//! the result; this module decides which notification is due.

pub use domain::alert::RuleState;
use domain::alert::{Notice, Phase};

/// How phases change from one cycle to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Phase,
    pub to: Phase,
}

/// A rule's life on its stored state (the state is `domain::alert`'s, so
/// the store keeps it as it is; the moves are the evaluator's).
pub trait Lifecycle {
    fn step(
        &self,
        holds: bool,
        now: u64,
        for_ns: u64,
        repeat_ns: u64,
    ) -> (RuleState, Option<Transition>);
    fn due<'a>(&self, all: &'a [String]) -> Vec<&'a String>;
    fn delivered_to(&mut self, receiver: &str, now: u64);
}

impl Lifecycle for RuleState {
    /// The state after a cycle at `now` found the condition `holds`, with the
    /// rule's `for_ns`; and the phase change, if any. `repeat_ns`: while
    /// firing, the firing notice is due again this long after it was sent.
    fn step(
        &self,
        holds: bool,
        now: u64,
        for_ns: u64,
        repeat_ns: u64,
    ) -> (RuleState, Option<Transition>) {
        let mut next = self.clone();
        let to = match (self.phase, holds) {
            (Phase::Inactive | Phase::Resolved, true) => {
                next.since_ns = now;
                if for_ns == 0 {
                    Phase::Firing
                } else {
                    Phase::Pending
                }
            }
            (Phase::Pending, true) if now.saturating_sub(self.since_ns) >= for_ns => Phase::Firing,
            (Phase::Pending, true) => Phase::Pending,
            // A condition that stops holding before `for` never fired.
            (Phase::Pending, false) => {
                next.since_ns = now;
                Phase::Inactive
            }
            (Phase::Firing, true) => {
                // The firing notice again, once it has been out repeat_ns.
                if self.notice == Some(Notice::Firing)
                    && self.sent_ns > 0
                    && now.saturating_sub(self.sent_ns) >= repeat_ns
                {
                    next.delivered.clear();
                    next.sent_ns = 0;
                }
                Phase::Firing
            }
            (Phase::Firing, false) => {
                next.resolved_ns = now;
                next.since_ns = now;
                // Nobody is told of the end of an alert they never heard of.
                next.notice = (!self.fired_to.is_empty()).then_some(Notice::Resolved);
                next.delivered.clear();
                next.sent_ns = 0;
                Phase::Resolved
            }
            (Phase::Inactive | Phase::Resolved, false) => self.phase,
        };
        if to == Phase::Firing && self.phase != Phase::Firing {
            next.fired_ns = now;
            next.resolved_ns = 0;
            next.notice = Some(Notice::Firing);
            next.delivered.clear();
            next.fired_to.clear();
            next.sent_ns = 0;
        }
        if self.phase == Phase::Inactive && to == Phase::Inactive && self.since_ns == 0 {
            next.since_ns = now;
        }
        next.phase = to;
        let transition = (to != self.phase).then_some(Transition {
            from: self.phase,
            to,
        });
        (next, transition)
    }

    /// The receivers of `all` that still wait for the current notice.
    fn due<'a>(&self, all: &'a [String]) -> Vec<&'a String> {
        match self.notice {
            None => Vec::new(),
            Some(Notice::Firing) => all.iter().filter(|r| !self.delivered.contains(r)).collect(),
            Some(Notice::Resolved) => all
                .iter()
                .filter(|r| self.fired_to.contains(r) && !self.delivered.contains(r))
                .collect(),
        }
    }

    /// Notes that `receiver` got the current notice at `now`.
    fn delivered_to(&mut self, receiver: &str, now: u64) {
        if !self.delivered.iter().any(|r| r == receiver) {
            self.delivered.push(receiver.to_string());
        }
        if self.notice == Some(Notice::Firing) && !self.fired_to.iter().any(|r| r == receiver) {
            self.fired_to.push(receiver.to_string());
        }
        if self.sent_ns == 0 {
            self.sent_ns = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Runs `holds` one cycle per second from t = 1 s; returns phases.
    fn run(holds: &[bool], for_ns: u64) -> Vec<Phase> {
        let mut s = RuleState::default();
        holds
            .iter()
            .enumerate()
            .map(|(i, h)| {
                s = s.step(*h, (i as u64 + 1) * S, for_ns, 3600 * S).0;
                s.phase
            })
            .collect()
    }

    use Phase::*;

    #[test]
    fn a_resolve_goes_only_to_receivers_that_had_the_firing() {
        let all = vec!["a".to_string(), "b".to_string()];
        let (mut s, _) = RuleState::default().step(true, S, 0, 3600 * S);
        s.delivered_to("a", S); // "b" was down the whole time
        let (s, _) = s.step(false, 2 * S, 0, 3600 * S);
        assert_eq!(s.notice, Some(Notice::Resolved));
        assert_eq!(s.due(&all), vec![&all[0]]);
        // Nobody had the firing: no resolve at all.
        let (s, _) = RuleState::default().step(true, S, 0, 3600 * S);
        let (s, _) = s.step(false, 2 * S, 0, 3600 * S);
        assert_eq!(s.notice, None);
        assert!(s.due(&all).is_empty());
    }

    #[test]
    fn inactive_pending_firing_resolved_with_for() {
        assert_eq!(
            run(&[false, true, true, true, false, false], 2 * S),
            [Inactive, Pending, Pending, Firing, Resolved, Resolved]
        );
    }

    #[test]
    fn without_for_a_rule_fires_at_once() {
        assert_eq!(run(&[true, false], 0), [Firing, Resolved]);
    }

    /// A flapping condition never holds for `for`, so it never fires.
    #[test]
    fn for_holds_back_a_flapping_condition() {
        let phases = run(&[true, false, true, false, true, true, false], 3 * S);
        assert!(!phases.contains(&Firing), "{phases:?}");
        assert_eq!(phases[1], Inactive);
    }

    #[test]
    fn notices_are_due_once_per_receiver_and_repeat_while_firing() {
        let receivers = vec!["hook".to_string(), "slack".to_string()];
        let s = RuleState::default();
        let (mut s, t) = s.step(true, 10 * S, 0, 100 * S);
        assert_eq!(
            t,
            Some(Transition {
                from: Inactive,
                to: Firing
            })
        );
        assert_eq!(s.notice, Some(Notice::Firing));
        assert_eq!(s.due(&receivers).len(), 2);
        s.delivered_to("hook", 10 * S);
        assert_eq!(s.due(&receivers), vec![&receivers[1]]);
        s.delivered_to("slack", 11 * S);
        assert!(s.due(&receivers).is_empty());
        let (s, t) = s.step(true, 50 * S, 0, 100 * S);
        assert_eq!(t, None);
        assert!(s.due(&receivers).is_empty());
        // Repeat once sent 100 s ago.
        let (mut s, _) = s.step(true, 110 * S, 0, 100 * S);
        assert_eq!(s.due(&receivers).len(), 2);
        s.delivered_to("hook", 110 * S);
        s.delivered_to("slack", 110 * S);
        let (s, t) = s.step(false, 120 * S, 0, 100 * S);
        assert_eq!(
            t,
            Some(Transition {
                from: Firing,
                to: Resolved
            })
        );
        assert_eq!(s.notice, Some(Notice::Resolved));
        assert_eq!(s.resolved_ns, 120 * S);
        assert_eq!(s.fired_ns, 10 * S);
        assert_eq!(s.due(&receivers).len(), 2);
    }

    /// A firing notice that was never delivered stays due; a pending rule
    /// that drops back sends nothing.
    #[test]
    fn an_undelivered_notice_stays_due() {
        let receivers = vec!["hook".to_string()];
        let (s, _) = RuleState::default().step(true, S, 0, 100 * S);
        let (s, _) = s.step(true, 2 * S, 0, 100 * S);
        assert_eq!(s.due(&receivers).len(), 1);
        let (s, _) = RuleState::default().step(true, S, 5 * S, 100 * S);
        let (s, _) = s.step(false, 2 * S, 5 * S, 100 * S);
        assert_eq!(s.phase, Inactive);
        assert!(s.due(&receivers).is_empty());
    }
}

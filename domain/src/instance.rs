//! Pure evaluation of one process instance: its status and the state of each
//! SLA at a moment. No I/O, so the rules are tested on their own.

use crate::process::{ProcessDef, SlaDef};

/// The first time a stage was reached, and whether a failed record reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageHit {
    pub time_ns: u64,
    pub failed: bool,
}

impl StageHit {
    /// What is known of a stage after `known` (if anything) and a hit at
    /// `time_ns`: the earliest time, failed if any hit failed.
    pub fn merged(known: Option<StageHit>, time_ns: u64, failed: bool) -> StageHit {
        match known {
            None => StageHit { time_ns, failed },
            Some(h) => StageHit {
                time_ns: h.time_ns.min(time_ns),
                failed: h.failed | failed,
            },
        }
    }
}

/// What is known of one instance: per stage of its process, the first hit.
///
/// Packed, 8 bytes a stage (0: not reached; else the time plus one, shifted
/// left once, and whether a failed record reached it in the low bit): the
/// correlator holds hundreds of thousands of instances in flight at a
/// plant's day, where `Option<StageHit>` took 16.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    hits: Box<[u64]>,
}

/// The latest time a hit can hold (the packing's top bit): year 2116.
const MAX_HIT_NS: u64 = (u64::MAX >> 1) - 1;

fn pack(hit: StageHit) -> u64 {
    ((hit.time_ns.min(MAX_HIT_NS) + 1) << 1) | u64::from(hit.failed)
}

fn unpack(packed: u64) -> Option<StageHit> {
    (packed != 0).then(|| StageHit {
        time_ns: (packed >> 1) - 1,
        failed: packed & 1 == 1,
    })
}

impl Instance {
    pub fn new(stages: usize) -> Self {
        Self {
            hits: vec![0; stages].into_boxed_slice(),
        }
    }

    /// The first hit of `stage`, if reached.
    pub fn hit_of(&self, stage: usize) -> Option<StageHit> {
        unpack(self.hits[stage])
    }

    /// Per stage, its first hit.
    pub fn hits(&self) -> impl Iterator<Item = Option<StageHit>> + '_ {
        self.hits.iter().map(|&h| unpack(h))
    }

    /// Records a hit; `true` when it changed what is known.
    pub fn hit(&mut self, stage: usize, time_ns: u64, failed: bool) -> bool {
        let slot = &mut self.hits[stage];
        let next = StageHit::merged(unpack(*slot), time_ns, failed);
        let before = *slot;
        *slot = pack(next);
        *slot != before
    }
}

/// One SLA of one instance at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaState {
    /// `from` not reached.
    NotStarted,
    /// `from` reached, `to` not yet, still within time.
    Running {
        due_ns: u64,
    },
    Met,
    /// `to` has not come and its time is past.
    Open {
        from_ns: u64,
        due_ns: u64,
    },
    /// `to` came, late.
    Closed {
        from_ns: u64,
        due_ns: u64,
        to_ns: u64,
    },
}

/// The instance's status, in the API's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    InFlight,
    Completed,
    Failed,
    Stalled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InFlight => "in_flight",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Stalled => "stalled",
        }
    }

    pub const ALL: [&'static str; 4] = ["in_flight", "completed", "failed", "stalled"];

    /// The status named `text` (as [`Status::as_str`] writes it).
    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::InFlight,
            Status::Completed,
            Status::Failed,
            Status::Stalled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A stored breach's state. `Cleared` is a breach that no longer holds
/// (its instance was re-evaluated with an earlier stage time): kept so the
/// row is replaced, never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreachState {
    Open,
    Closed,
    Cleared,
}

impl BreachState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreachState::Open => "open",
            BreachState::Closed => "closed",
            BreachState::Cleared => "cleared",
        }
    }

    pub fn parse(text: &str) -> Option<BreachState> {
        [BreachState::Open, BreachState::Closed, BreachState::Cleared]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// The stages an instance reached and when (the first time of each), in
/// definition order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StageTimes {
    pub ids: Vec<String>,
    pub times: Vec<u64>,
}

impl StageTimes {
    /// When `stage` was reached, if it was.
    pub fn time_of(&self, stage: &str) -> Option<u64> {
        self.ids
            .iter()
            .position(|s| s == stage)
            .and_then(|i| self.times.get(i).copied())
    }

    /// Per stage of `def`, its hit (times only; whether a failed record
    /// took part is not kept per stage).
    pub fn hits(&self, def: &ProcessDef) -> Vec<Option<StageHit>> {
        def.stages
            .iter()
            .map(|stage| {
                self.time_of(&stage.id).map(|time_ns| StageHit {
                    time_ns,
                    failed: false,
                })
            })
            .collect()
    }

    /// The reached stages of `instance` under `def`.
    pub fn of(def: &ProcessDef, instance: &Instance) -> Self {
        let (ids, times) = def
            .stages
            .iter()
            .zip(instance.hits())
            .filter_map(|(stage, hit)| hit.map(|h| (stage.id.clone(), h.time_ns)))
            .unzip();
        StageTimes { ids, times }
    }

    /// The state of `sla` (of `def`) at `now_ns`: the SLA rule of
    /// [`sla_state`] on these times.
    pub fn sla_state(&self, def: &ProcessDef, sla: &SlaDef, now_ns: u64) -> SlaState {
        let hit = |stage: usize| {
            self.time_of(&def.stages[stage].id).map(|time_ns| StageHit {
                time_ns,
                failed: false,
            })
        };
        sla_state(hit(sla.from), hit(sla.to), sla.within_ns, now_ns)
    }

    /// From `from` to `to`, when both were reached in that order.
    pub fn between(&self, from: &str, to: &str) -> Option<u64> {
        let (a, b) = (self.time_of(from)?, self.time_of(to)?);
        (b >= a).then(|| b - a)
    }
}

/// One process instance as the correlator stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub process_id: String,
    pub root_value: String,
    pub start_ns: u64,
    pub last_ns: u64,
    pub status: Status,
    /// The furthest stage reached; empty before any.
    pub current_stage: String,
    pub stages: StageTimes,
    pub failed: bool,
    pub open_breaches: u32,
    pub updated_ns: u64,
    /// The plant the first of its steps that named a plant came from; ""
    /// before one did (`crate::plant`).
    pub plant: String,
}

impl InstanceRecord {
    /// A hash of everything but `updated_ns`: equal for two rows that are
    /// [`InstanceRecord::same_as`] each other (within one process), so a
    /// writer can remember what it wrote in 8 bytes instead of the row.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.process_id.hash(&mut h);
        self.root_value.hash(&mut h);
        self.start_ns.hash(&mut h);
        self.last_ns.hash(&mut h);
        self.status.hash(&mut h);
        self.current_stage.hash(&mut h);
        self.stages.hash(&mut h);
        self.failed.hash(&mut h);
        self.open_breaches.hash(&mut h);
        self.plant.hash(&mut h);
        h.finish()
    }

    /// The same instance, whenever it was written.
    pub fn same_as(&self, other: &InstanceRecord) -> bool {
        InstanceRecord {
            updated_ns: 0,
            ..self.clone()
        } == InstanceRecord {
            updated_ns: 0,
            ..other.clone()
        }
    }
}

/// One SLA breach of one instance as stored. `to_ns` is 0 while open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub process_id: String,
    pub sla_id: String,
    pub root_value: String,
    pub from_ns: u64,
    pub due_ns: u64,
    pub to_ns: u64,
    pub late_ns: u64,
    pub state: BreachState,
    pub updated_ns: u64,
    /// Its instance's plant, or "".
    pub plant: String,
}

impl Breach {
    /// How late it is at `now_ns`: an open breach grows, a closed one is
    /// fixed.
    pub fn late_at(&self, now_ns: u64) -> u64 {
        match self.state {
            BreachState::Open => now_ns.saturating_sub(self.due_ns),
            _ => self.late_ns,
        }
    }

    /// The same breach as stored: an open breach is not rewritten just
    /// because it grew later.
    pub fn same_as(&self, other: &Breach) -> bool {
        self.state == other.state
            && self.from_ns == other.from_ns
            && self.due_ns == other.due_ns
            && self.to_ns == other.to_ns
            && self.plant == other.plant
            && (self.state == BreachState::Open || self.late_ns == other.late_ns)
    }
}

/// What an instance is at `now_ns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub status: Status,
    /// The furthest stage (in definition order) reached.
    pub current_stage: Option<usize>,
    pub start_ns: u64,
    pub last_ns: u64,
    pub failed: bool,
    pub slas: Vec<SlaState>,
}

pub fn sla_state(
    from: Option<StageHit>,
    to: Option<StageHit>,
    within_ns: u64,
    now_ns: u64,
) -> SlaState {
    let Some(from) = from else {
        return SlaState::NotStarted;
    };
    let due_ns = from.time_ns.saturating_add(within_ns);
    match to {
        Some(to) if to.time_ns <= due_ns => SlaState::Met,
        Some(to) => SlaState::Closed {
            from_ns: from.time_ns,
            due_ns,
            to_ns: to.time_ns,
        },
        None if now_ns > due_ns => SlaState::Open {
            from_ns: from.time_ns,
            due_ns,
        },
        None => SlaState::Running { due_ns },
    }
}

/// Completed when the last stage is reached; else failed when a failed or
/// dead-lettered record took part; else stalled while an SLA is open; else in
/// flight.
pub fn evaluate(def: &ProcessDef, instance: &Instance, now_ns: u64) -> Evaluation {
    let slas: Vec<SlaState> = def
        .slas
        .iter()
        .map(|sla| {
            sla_state(
                instance.hit_of(sla.from),
                instance.hit_of(sla.to),
                sla.within_ns,
                now_ns,
            )
        })
        .collect();
    let reached: Vec<(usize, StageHit)> = instance
        .hits()
        .enumerate()
        .filter_map(|(i, h)| h.map(|h| (i, h)))
        .collect();
    let failed = reached.iter().any(|(_, h)| h.failed);
    let completed = instance.hits().last().is_some_and(|h| h.is_some());
    let open = slas.iter().any(|s| matches!(s, SlaState::Open { .. }));
    let status = if completed {
        Status::Completed
    } else if failed {
        Status::Failed
    } else if open {
        Status::Stalled
    } else {
        Status::InFlight
    };
    Evaluation {
        status,
        current_stage: reached.last().map(|(i, _)| *i),
        start_ns: reached.iter().map(|(_, h)| h.time_ns).min().unwrap_or(0),
        last_ns: reached.iter().map(|(_, h)| h.time_ns).max().unwrap_or(0),
        failed,
        slas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyTypes;
    use crate::process::Processes;

    const MIN: u64 = 60_000_000_000;

    fn def() -> ProcessDef {
        Processes::parse(
            r#"id = "p"
key = "order"
[[stages]]
id = "a"
system = "crm"
event = "a"
[[stages]]
id = "b"
system = "erp"
event = "b"
[[slas]]
id = "ab"
from = "a"
to = "b"
within = "15m""#,
            "p.toml",
            &KeyTypes::default(),
        )
        .unwrap()
    }

    fn at(min: u64) -> Option<StageHit> {
        Some(StageHit {
            time_ns: min * MIN,
            failed: false,
        })
    }

    #[test]
    fn sla_states_over_time() {
        assert_eq!(
            sla_state(None, at(5), 15 * MIN, 100 * MIN),
            SlaState::NotStarted
        );
        assert_eq!(
            sla_state(at(0), None, 15 * MIN, 10 * MIN),
            SlaState::Running { due_ns: 15 * MIN }
        );
        assert_eq!(
            sla_state(at(0), None, 15 * MIN, 16 * MIN),
            SlaState::Open {
                from_ns: 0,
                due_ns: 15 * MIN
            }
        );
        assert_eq!(sla_state(at(0), at(15), 15 * MIN, 99 * MIN), SlaState::Met);
        assert_eq!(
            sla_state(at(0), at(20), 15 * MIN, 99 * MIN),
            SlaState::Closed {
                from_ns: 0,
                due_ns: 15 * MIN,
                to_ns: 20 * MIN
            }
        );
    }

    #[test]
    fn status_precedence() {
        let d = def();
        let mut i = Instance::new(2);
        i.hit(0, 0, false);
        assert_eq!(evaluate(&d, &i, MIN).status, Status::InFlight);
        assert_eq!(evaluate(&d, &i, 16 * MIN).status, Status::Stalled);
        i.hit(0, MIN, true);
        assert_eq!(evaluate(&d, &i, 16 * MIN).status, Status::Failed);
        assert!(i.hit(1, 30 * MIN, false));
        let e = evaluate(&d, &i, 31 * MIN);
        assert_eq!(e.status, Status::Completed);
        assert_eq!(e.current_stage, Some(1));
        assert_eq!((e.start_ns, e.last_ns), (0, 30 * MIN));
    }

    #[test]
    fn an_earlier_hit_moves_the_stage_time_and_a_repeat_changes_nothing() {
        let mut i = Instance::new(2);
        assert!(i.hit(0, 10, false));
        assert!(!i.hit(0, 10, false));
        assert!(!i.hit(0, 20, false));
        assert!(i.hit(0, 5, false));
        assert_eq!(i.hit_of(0).unwrap().time_ns, 5);
        assert!(i.hit(0, 7, true), "a failed record changes the hit");
        assert_eq!(
            i.hit_of(0),
            Some(StageHit {
                time_ns: 5,
                failed: true
            })
        );
        assert_eq!(i.hit_of(1), None);
        assert!(i.hit(1, 0, false), "time 0 is a hit, not an empty slot");
        assert_eq!(i.hit_of(1).unwrap().time_ns, 0);
    }
}

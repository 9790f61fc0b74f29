//! The instances the correlator holds in memory, compactly: per process, by
//! root value, the stage hits, the deadline waited for and what was last
//! written of the instance and of each of its breaches.
//!
//! At a plant's day hundreds of thousands of instances are in flight, so
//! every byte per instance counts: a root value is stored once (an
//! `Arc<str>` shared with the deadline that names it), what was written is
//! kept as a fingerprint and a breach's figures, not as rows with their
//! strings, and nothing lives in a second map keyed by the same root.

use std::collections::HashMap;
use std::sync::Arc;

use domain::instance::{Breach, BreachState, Instance};

/// A root value, shared by the instance and its deadline.
pub(super) type Root = Arc<str>;

/// What was last written of an instance: [`InstanceRecord::fingerprint`]
/// and its start (to see it move to another minute).
///
/// [`InstanceRecord::fingerprint`]: domain::instance::InstanceRecord::fingerprint
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Written {
    pub fingerprint: u64,
    pub start_ns: u64,
}

/// What was last written of one breach, without the names its instance
/// and SLA already give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WrittenBreach {
    pub from_ns: u64,
    pub due_ns: u64,
    pub to_ns: u64,
    pub late_ns: u64,
    pub updated_ns: u64,
    pub state: BreachState,
    /// Written with its instance's plant (an instance's plant, once set,
    /// never changes), or before the instance had one.
    pub with_plant: bool,
}

impl WrittenBreach {
    pub fn of(row: &Breach) -> Self {
        WrittenBreach {
            from_ns: row.from_ns,
            due_ns: row.due_ns,
            to_ns: row.to_ns,
            late_ns: row.late_ns,
            updated_ns: row.updated_ns,
            state: row.state,
            with_plant: !row.plant.is_empty(),
        }
    }

    /// The row again, named; `plant` is its instance's now.
    pub fn row(&self, process_id: &str, sla_id: &str, root_value: &str, plant: &str) -> Breach {
        Breach {
            plant: if self.with_plant {
                plant.to_string()
            } else {
                String::new()
            },
            process_id: process_id.to_string(),
            sla_id: sla_id.to_string(),
            root_value: root_value.to_string(),
            from_ns: self.from_ns,
            due_ns: self.due_ns,
            to_ns: self.to_ns,
            late_ns: self.late_ns,
            state: self.state,
            updated_ns: self.updated_ns,
        }
    }
}

/// An instance held in memory.
#[derive(Debug)]
pub(super) struct Held {
    pub instance: Instance,
    /// Its entry in `deadlines`: the earliest running SLA's (one per
    /// instance; a later one is scheduled when this one has passed).
    pub due: Option<u64>,
    pub written: Option<Written>,
    /// Per SLA of its process, the breach last written; allocated with the
    /// first one (most instances never breach).
    pub breaches: Option<Box<[Option<WrittenBreach>]>>,
    /// Its plant ([`Instances::plant_name`]); 0 before a step named one.
    pub plant: u16,
}

impl Held {
    fn new(stages: usize) -> Self {
        Held {
            instance: Instance::new(stages),
            due: None,
            written: None,
            breaches: None,
            plant: 0,
        }
    }

    pub fn breach(&self, sla: usize) -> Option<&WrittenBreach> {
        self.breaches.as_ref()?.get(sla)?.as_ref()
    }

    pub fn set_breach(&mut self, sla: usize, slas: usize, row: WrittenBreach) {
        let all = self
            .breaches
            .get_or_insert_with(|| vec![None; slas].into_boxed_slice());
        all[sla] = Some(row);
    }
}

/// The held instances, per process (by its index in the definitions), by
/// root value.
#[derive(Debug)]
pub(super) struct Instances {
    by_process: Vec<HashMap<Root, Held>>,
    /// The plants instances came from, each name once (a deployment has a
    /// few): an instance holds its plant's place here plus one.
    plants: Vec<Arc<str>>,
}

impl Instances {
    pub fn new(processes: usize) -> Self {
        Instances {
            by_process: (0..processes).map(|_| HashMap::new()).collect(),
            plants: Vec::new(),
        }
    }

    /// The number that stands for `plant` in [`Held::plant`]; 0 for "".
    pub fn plant_number(&mut self, plant: &str) -> u16 {
        if plant.is_empty() {
            return 0;
        }
        let at = match self.plants.iter().position(|p| &**p == plant) {
            Some(at) => at,
            None => {
                self.plants.push(Arc::from(plant));
                self.plants.len() - 1
            }
        };
        u16::try_from(at + 1).unwrap_or(u16::MAX)
    }

    /// The plant [`Instances::plant_number`] numbered `n`; "" for 0.
    pub fn plant_name(&self, n: u16) -> &str {
        match n {
            0 => "",
            n => self.plants.get(usize::from(n) - 1).map_or("", |p| p),
        }
    }

    /// Gives the instance `plant` unless it has one already (the first
    /// plant named stays).
    pub fn name_plant(&mut self, process: usize, root: &str, plant: &str) {
        if plant.is_empty() {
            return;
        }
        let n = self.plant_number(plant);
        if let Some(held) = self.get_mut(process, root) {
            if held.plant == 0 {
                held.plant = n;
            }
        }
    }

    pub fn get(&self, process: usize, root: &str) -> Option<&Held> {
        self.by_process[process].get(root)
    }

    pub fn get_mut(&mut self, process: usize, root: &str) -> Option<&mut Held> {
        self.by_process[process].get_mut(root)
    }

    /// The shared root value of a held instance.
    pub fn root(&self, process: usize, root: &str) -> Option<Root> {
        self.by_process[process]
            .get_key_value(root)
            .map(|(k, _)| k.clone())
    }

    /// The instance, held from now on if it was not (with `stages` empty
    /// stages).
    pub fn hold(&mut self, process: usize, root: &str, stages: usize) -> &mut Held {
        let map = &mut self.by_process[process];
        if !map.contains_key(root) {
            map.insert(Arc::from(root), Held::new(stages));
        }
        map.get_mut(root).expect("inserted above")
    }

    pub fn contains(&self, process: usize, root: &str) -> bool {
        self.by_process[process].contains_key(root)
    }

    pub fn remove(&mut self, process: usize, root: &str) {
        self.by_process[process].remove(root);
    }

    /// Every held instance, with its process index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Root, &Held)> {
        self.by_process
            .iter()
            .enumerate()
            .flat_map(|(p, map)| map.iter().map(move |(root, held)| (p, root, held)))
    }

    pub fn len(&self) -> usize {
        self.by_process.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breach_is_kept_per_sla_and_named_again_from_its_instance() {
        let mut all = Instances::new(2);
        let held = all.hold(1, "SO-1", 3);
        assert!(held.breach(0).is_none());
        let row = Breach {
            process_id: "p".into(),
            sla_id: "s2".into(),
            root_value: "SO-1".into(),
            from_ns: 1,
            due_ns: 2,
            to_ns: 0,
            late_ns: 5,
            state: BreachState::Open,
            updated_ns: 7,
            plant: "hamburg".into(),
        };
        held.set_breach(1, 2, WrittenBreach::of(&row));
        let held = all.get(1, "SO-1").unwrap();
        assert!(held.breach(0).is_none());
        assert_eq!(
            held.breach(1).unwrap().row("p", "s2", "SO-1", "hamburg"),
            row
        );
        assert!(all.get(0, "SO-1").is_none());
        assert_eq!(all.len(), 1);
        all.remove(1, "SO-1");
        assert_eq!(all.len(), 0);
    }
}

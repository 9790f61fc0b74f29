//! Evaluating instances into instance and breach records, comparing them
//! with what is stored, writing them, remembering the written ones, and
//! publishing the open breaches.

use std::collections::BTreeMap;

use domain::instance::{evaluate, Breach, BreachState, InstanceRecord, SlaState, StageTimes};
use store::StoreError;

use super::Correlator;

impl Correlator {
    /// Evaluates instances; returns the instance and breach rows that differ
    /// from what is stored, and schedules each instance's next deadline
    /// (its earliest running SLA's; one entry per instance, not one per SLA
    /// and evaluation, which held millions of stale entries at a plant's
    /// day).
    pub(super) fn evaluate(
        &mut self,
        which: Vec<(usize, String)>,
        now: u64,
    ) -> (Vec<InstanceRecord>, Vec<Breach>) {
        let mut instance_rows = Vec::new();
        let mut breach_rows = Vec::new();
        for (p, root) in which {
            let Some(held) = self.instances.get(&(p, root.clone())) else {
                continue;
            };
            let instance = &held.instance;
            let def = &self.processes.list[p];
            let e = evaluate(def, instance, now);
            let mut open = 0;
            // The earliest running SLA's deadline: when it passes, the
            // instance is evaluated again (and the next one scheduled).
            let due = e
                .slas
                .iter()
                .filter_map(|s| match s {
                    SlaState::Running { due_ns } => Some(due_ns.saturating_add(1)),
                    _ => None,
                })
                .min();
            for (s, state) in e.slas.iter().enumerate() {
                let sla = &def.slas[s];
                let row = |from_ns, due_ns, to_ns, late_ns, state| Breach {
                    process_id: def.id.clone(),
                    sla_id: sla.id.clone(),
                    root_value: root.clone(),
                    from_ns,
                    due_ns,
                    to_ns,
                    late_ns,
                    state,
                    updated_ns: now,
                };
                let wanted = match *state {
                    SlaState::Open { from_ns, due_ns } => {
                        open += 1;
                        Some(row(
                            from_ns,
                            due_ns,
                            0,
                            now.saturating_sub(due_ns),
                            BreachState::Open,
                        ))
                    }
                    SlaState::Closed {
                        from_ns,
                        due_ns,
                        to_ns,
                    } => Some(row(
                        from_ns,
                        due_ns,
                        to_ns,
                        to_ns - due_ns,
                        BreachState::Closed,
                    )),
                    SlaState::Running { .. } => None,
                    SlaState::Met | SlaState::NotStarted => None,
                };
                let key = (p, s, root.clone());
                let stored = self.written_breaches.get(&key);
                let next = match (wanted, stored) {
                    (Some(w), Some(old)) if w.same_as(old) => None,
                    (Some(w), _) => Some(w),
                    (None, Some(old)) if old.state != BreachState::Cleared => Some(Breach {
                        state: BreachState::Cleared,
                        updated_ns: now,
                        ..old.clone()
                    }),
                    (None, _) => None,
                };
                if let Some(row) = next {
                    breach_rows.push(row);
                }
            }
            let row = InstanceRecord {
                process_id: def.id.clone(),
                root_value: root.clone(),
                start_ns: e.start_ns,
                last_ns: e.last_ns,
                status: e.status,
                current_stage: e
                    .current_stage
                    .map(|i| def.stages[i].id.clone())
                    .unwrap_or_default(),
                stages: StageTimes::of(def, instance),
                failed: e.failed,
                open_breaches: open,
                updated_ns: now,
            };
            let key = (p, root.clone());
            let changed = self.written_instances.get(&key) != Some(&row.fingerprint());
            if changed {
                instance_rows.push(row);
            }
            let held = self.instances.get_mut(&key).expect("read above");
            if held.due != due {
                if let Some(old) = held.due {
                    self.deadlines.remove(&(old, p, root.clone()));
                }
                if let Some(next) = due {
                    self.deadlines.insert((next, p, root.clone()));
                }
                held.due = due;
            }
        }
        (instance_rows, breach_rows)
    }

    pub(super) async fn write_evaluations(
        &self,
        instances: &[InstanceRecord],
        breaches: &[Breach],
    ) -> Result<(), StoreError> {
        // Instances first: a reader who sees a breach then finds its
        // instance already in the state the breach puts it in.
        self.store.write_instances(instances).await?;
        self.store.write_breaches(breaches).await
    }

    /// What is stored now, once a write succeeded: later evaluations compare
    /// against it.
    pub(super) fn remember(&mut self, instances: Vec<InstanceRecord>, breaches: Vec<Breach>) {
        for row in instances {
            if let Some(p) = self.process_index(&row.process_id) {
                let fingerprint = row.fingerprint();
                self.written_instances
                    .insert((p, row.root_value), fingerprint);
            }
        }
        for row in breaches {
            let Some(p) = self.process_index(&row.process_id) else {
                continue;
            };
            let Some(s) = self.processes.list[p]
                .slas
                .iter()
                .position(|x| x.id == row.sla_id)
            else {
                continue;
            };
            self.written_breaches
                .insert((p, s, row.root_value.clone()), row);
        }
    }

    pub(super) fn publish_open_breaches(&self) {
        let mut open: BTreeMap<(String, String), u64> = BTreeMap::new();
        for def in &self.processes.list {
            for sla in &def.slas {
                open.insert((def.id.clone(), sla.id.clone()), 0);
            }
        }
        for row in self.written_breaches.values() {
            if row.state == BreachState::Open {
                *open
                    .entry((row.process_id.clone(), row.sla_id.clone()))
                    .or_default() += 1;
            }
        }
        *self.metrics.open_breaches.lock().expect("metrics lock") = open;
    }
}

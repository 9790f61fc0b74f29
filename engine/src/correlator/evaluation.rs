//! Evaluating instances into instance and breach records, comparing them
//! with what is stored, writing them (with their rows by minute for the
//! rollups, `rollups`), remembering the written ones, and publishing the
//! open breaches.

use std::collections::BTreeMap;

use domain::instance::{evaluate, Breach, BreachState, InstanceRecord, SlaState, StageTimes};
use store::process_rollups::{minute_of, MovedDue, MovedStart};
use store::StoreError;

use super::held::{Written, WrittenBreach};
use super::rollups::Moves;
use super::Correlator;

impl Correlator {
    /// Evaluates instances; returns the instance and breach rows that differ
    /// from what is stored and those whose start or due minute moved, and
    /// schedules each instance's next deadline (its earliest running SLA's;
    /// one entry per instance, not one per SLA and evaluation, which held
    /// millions of stale entries at a plant's day).
    pub(super) fn evaluate(
        &mut self,
        which: Vec<(usize, String)>,
        now: u64,
    ) -> (Vec<InstanceRecord>, Vec<Breach>, Moves) {
        let mut instance_rows = Vec::new();
        let mut breach_rows = Vec::new();
        let mut moves = Moves::default();
        for (p, root) in which {
            let Some(held) = self.instances.get(p, &root) else {
                continue;
            };
            let instance = &held.instance;
            let plant = self.instances.plant_name(held.plant);
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
                    plant: plant.to_string(),
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
                let stored = held
                    .breach(s)
                    .map(|b| b.row(&def.id, &sla.id, &root, plant));
                let next = match (wanted, stored.as_ref()) {
                    (Some(w), Some(old)) if w.same_as(old) => None,
                    (Some(w), Some(old)) => {
                        if minute_of(old.due_ns) != minute_of(w.due_ns) {
                            moves.dues.push(MovedDue {
                                process_id: def.id.clone(),
                                sla_id: sla.id.clone(),
                                root_value: root.clone(),
                                old_due_ns: old.due_ns,
                                plant: old.plant.clone(),
                            });
                        }
                        Some(w)
                    }
                    (Some(w), None) => Some(w),
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
                plant: plant.to_string(),
            };
            let written = held.written;
            if written.map(|w| w.fingerprint) != Some(row.fingerprint()) {
                if let Some(w) = written {
                    if minute_of(w.start_ns) != minute_of(row.start_ns) {
                        moves.starts.push(MovedStart {
                            process_id: def.id.clone(),
                            root_value: root.clone(),
                            old_start_ns: w.start_ns,
                            plant: plant.to_string(),
                        });
                    }
                }
                instance_rows.push(row);
            }
            if held.due != due {
                let shared = self.instances.root(p, &root).expect("held");
                if let Some(old) = held.due {
                    self.deadlines.remove(&(old, p, shared.clone()));
                }
                if let Some(next) = due {
                    self.deadlines.insert((next, p, shared));
                }
                self.instances.get_mut(p, &root).expect("held").due = due;
            }
        }
        (instance_rows, breach_rows, moves)
    }

    pub(super) async fn write_evaluations(
        &self,
        instances: &[InstanceRecord],
        breaches: &[Breach],
        moves: &Moves,
        now: u64,
    ) -> Result<(), StoreError> {
        // Instances first: a reader who sees a breach then finds its
        // instance already in the state the breach puts it in.
        self.store.write_instances(instances).await?;
        self.store
            .write_instances_by_start(instances, &moves.starts, now)
            .await?;
        self.store
            .write_breaches_by_due(breaches, &moves.dues, now)
            .await?;
        self.store.write_breaches(breaches).await
    }

    /// What is stored now, once a write succeeded: later evaluations compare
    /// against it.
    /// Remembers written (or stored) rows; another partition's are skipped
    /// (the start reads every stored instance of the horizon).
    pub(super) fn remember(&mut self, instances: Vec<InstanceRecord>, breaches: Vec<Breach>) {
        let part = self.settings.partition;
        let instances = instances.into_iter().filter(|r| part.owns(&r.root_value));
        let breaches = breaches.into_iter().filter(|r| part.owns(&r.root_value));
        // Rows of instances not held (evicted meanwhile, or stored without
        // steps) are not kept: an instance is diffed only while held, and
        // read back with its rows when a record brings it back.
        for row in instances {
            if let Some(p) = self.process_index(&row.process_id) {
                let plant = self.instances.plant_number(&row.plant);
                if let Some(held) = self.instances.get_mut(p, &row.root_value) {
                    // What was written names the plant: it stays.
                    if plant != 0 {
                        held.plant = plant;
                    }
                    held.written = Some(Written {
                        fingerprint: row.fingerprint(),
                        start_ns: row.start_ns,
                    });
                }
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
            let slas = self.processes.list[p].slas.len();
            if let Some(held) = self.instances.get_mut(p, &row.root_value) {
                held.set_breach(s, slas, WrittenBreach::of(&row));
            }
        }
    }

    /// Publishes this correlator's open breaches; with several
    /// partitions memory holds one share only, and partition 0 publishes
    /// the stored counts when it writes them (`rollups`).
    pub(super) fn publish_open_breaches(&self) {
        if !self.settings.partition.is_shared() {
            self.publish(&self.open_breach_counts());
        }
    }

    pub(super) fn publish(&self, counts: &[(String, String, u64)]) {
        let open: BTreeMap<(String, String), u64> = counts
            .iter()
            .map(|(p, s, n)| ((p.clone(), s.clone()), *n))
            .collect();
        *self.metrics.open_breaches.lock().expect("metrics lock") = open;
    }
}

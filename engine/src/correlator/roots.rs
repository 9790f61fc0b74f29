//! Matching records to stages and resolving each to its process's root key
//! through the key links (a walk of bounded depth, in bounded batches).

use super::*;

impl Correlator {
    /// The (process, stage) each record reaches.
    pub(super) fn candidates(&self, records: &[Arc<FeedRecord>]) -> Vec<Candidate> {
        let mut out = Vec::new();
        for r in records {
            let key = (r.kind, r.system.clone(), r.name.clone());
            for (process, stage) in self.matchers.get(&key).into_iter().flatten() {
                out.push(Candidate {
                    process: *process,
                    stage: *stage,
                    record: r.clone(),
                });
            }
        }
        out
    }

    /// Resolves candidates to root keys and makes their step rows.
    pub(super) async fn steps_for(
        &self,
        candidates: Vec<Candidate>,
        now: u64,
    ) -> Result<Vec<Step>, StoreError> {
        let queries: Vec<(Vec<BusinessKey>, &str)> = candidates
            .iter()
            .map(|c| {
                (
                    c.record.keys.clone(),
                    self.processes.list[c.process].key_type.as_str(),
                )
            })
            .collect();
        let resolved = self.resolve_roots(&queries).await?;
        let mut seen: HashSet<(usize, String, usize, String)> = HashSet::new();
        let mut steps = Vec::new();
        for (c, roots) in candidates.into_iter().zip(resolved) {
            let def = &self.processes.list[c.process];
            for (root, via) in roots {
                if !seen.insert((
                    c.process,
                    root.clone(),
                    c.stage,
                    c.record.record_ref.clone(),
                )) {
                    continue;
                }
                steps.push(Step {
                    process_id: def.id.clone(),
                    root_value: root,
                    stage_id: def.stages[c.stage].id.clone(),
                    record_ref: c.record.record_ref.clone(),
                    time_ns: c.record.time_ns,
                    failed: c.record.failed,
                    via,
                    written_ns: now,
                    plant: c.record.plant.clone(),
                });
            }
        }
        Ok(steps)
    }

    /// For each (record keys, root type): the root values the record counts
    /// for. A record that names a key of the root type counts for that key
    /// only. Otherwise links are followed steadily toward the root type's
    /// rank: first up from finer keys (a work order belongs to one order);
    /// only if that finds nothing, down from coarser ones (an order's work
    /// orders). Links are fetched level by level for all records at once.
    pub(super) async fn resolve_roots(
        &self,
        queries: &[(Vec<BusinessKey>, &str)],
    ) -> Result<Vec<Vec<(String, BusinessKey)>>, StoreError> {
        let rank = |k: &BusinessKey| self.keys.rank(&k.key_type).unwrap_or(u8::MAX);
        let mut results: Vec<BTreeMap<String, BusinessKey>> = vec![BTreeMap::new(); queries.len()];
        let mut neighbours: HashMap<BusinessKey, Vec<BusinessKey>> = HashMap::new();
        for upward in [true, false] {
            // (query, key, the record's key it was reached from)
            let mut frontier: Vec<(usize, BusinessKey, BusinessKey)> = Vec::new();
            let mut visited: Vec<HashSet<BusinessKey>> = vec![HashSet::new(); queries.len()];
            for (q, (keys, root_type)) in queries.iter().enumerate() {
                let direct: Vec<&BusinessKey> =
                    keys.iter().filter(|k| k.key_type == *root_type).collect();
                if upward {
                    for k in &direct {
                        results[q].insert(k.value.clone(), (*k).clone());
                    }
                }
                if !results[q].is_empty() {
                    continue;
                }
                // Start from the record's keys nearest the root type's rank
                // only: an event naming an order and its customer reaches the
                // order's work orders, not every work order of the customer.
                let target = self.keys.rank(root_type).unwrap_or(u8::MAX);
                let side: Vec<&BusinessKey> = keys
                    .iter()
                    .filter(|k| (upward && rank(k) > target) || (!upward && rank(k) < target))
                    .collect();
                let nearest = if upward {
                    side.iter().map(|k| rank(k)).min()
                } else {
                    side.iter().map(|k| rank(k)).max()
                };
                for k in side.into_iter().filter(|k| Some(rank(k)) == nearest) {
                    frontier.push((q, k.clone(), k.clone()));
                    visited[q].insert(k.clone());
                }
            }
            for _ in 0..MAX_DEPTH {
                if frontier.is_empty() {
                    break;
                }
                let unknown: Vec<&BusinessKey> = frontier
                    .iter()
                    .map(|(_, k, _)| k)
                    .filter(|k| !neighbours.contains_key(*k))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for chunk in unknown.chunks(1000) {
                    let mut found = self.store.direct_links(chunk).await?;
                    for k in chunk {
                        let list = found
                            .remove(*k)
                            .map(|s| s.into_iter().collect())
                            .unwrap_or_default();
                        neighbours.insert((*k).clone(), list);
                    }
                }
                let mut next = Vec::new();
                for (q, k, origin) in frontier {
                    let root_type = queries[q].1;
                    let target = self.keys.rank(root_type).unwrap_or(u8::MAX);
                    let from = rank(&k);
                    for n in neighbours.get(&k).into_iter().flatten() {
                        let r = rank(n);
                        let toward = if upward {
                            r < from && r >= target
                        } else {
                            r > from && r <= target
                        };
                        if !toward || results[q].len() >= MAX_ROOTS || !visited[q].insert(n.clone())
                        {
                            continue;
                        }
                        if n.key_type == root_type {
                            results[q]
                                .entry(n.value.clone())
                                .or_insert_with(|| origin.clone());
                        } else if r != target {
                            next.push((q, n.clone(), origin.clone()));
                        }
                    }
                }
                frontier = next;
            }
        }
        Ok(results
            .into_iter()
            .map(|m| m.into_iter().collect())
            .collect())
    }
}

//! A correlator's start: the matchers of the process definitions, the
//! watermark, the walks filled once on an installation older than them, and
//! the instances of the horizon.

use super::*;

/// Fills `correlator_walks` from the key index for the records of the
/// horizon, once, on an installation that stored records before the table
/// existed: per root type, the records that reach one of its processes'
/// stages without naming a key of that type.
async fn fill_walks(store: &Store, processes: &Processes, since: u64) -> Result<(), StoreError> {
    let mut by_root: BTreeMap<&str, Vec<(&str, &str, &str)>> = BTreeMap::new();
    for def in &processes.list {
        for stage in &def.stages {
            for (kind, name) in [
                (RecordKind::Event, &stage.event),
                (RecordKind::Span, &stage.span),
            ] {
                if let Some(name) = name {
                    by_root.entry(def.key_type.as_str()).or_default().push((
                        kind.as_str(),
                        stage.system.as_str(),
                        name.as_str(),
                    ));
                }
            }
        }
    }
    for (root_type, stages) in by_root {
        store.backfill_walks(since, root_type, &stages).await?;
    }
    Ok(())
}

impl Correlator {
    /// Loads the watermark and the instances of the horizon.
    pub async fn new(
        store: Store,
        processes: Arc<Processes>,
        keys: Arc<KeyTypes>,
        settings: CorrelatorSettings,
        metrics: Arc<CorrelatorMetrics>,
    ) -> Result<Self, StoreError> {
        let mut matchers: HashMap<(RecordKind, String, String), Vec<(usize, usize)>> =
            HashMap::new();
        for (p, def) in processes.list.iter().enumerate() {
            for (s, stage) in def.stages.iter().enumerate() {
                for (kind, name) in [
                    (RecordKind::Event, &stage.event),
                    (RecordKind::Span, &stage.span),
                ] {
                    if let Some(name) = name {
                        matchers
                            .entry((kind, stage.system.clone(), name.clone()))
                            .or_default()
                            .push((p, s));
                    }
                }
            }
        }
        let state_name = settings.partition.state_name(STATE_NAME);
        let watermark = store.load_watermark(&state_name).await?;
        let since = horizon_start(now_ns(), settings.horizon);
        if store.load_watermark(WALKS_FILLED).await?.is_none() {
            if watermark.is_some() {
                fill_walks(&store, &processes, since).await?;
            }
            store.save_watermark(WALKS_FILLED, now_ns()).await?;
        }
        let watermark = watermark.unwrap_or(0);
        let mut walking = WalkingKeys::new(settings.horizon.as_nanos() as u64);
        let mut after: Option<BusinessKey> = None;
        loop {
            let page = store
                .walk_keys_page(since, after.as_ref(), WALK_KEYS_PAGE)
                .await?;
            for (key, time_ns) in &page {
                walking.insert(key, *time_ns);
            }
            if page.len() < WALK_KEYS_PAGE {
                break;
            }
            after = page.last().map(|(k, _)| k.clone());
        }
        let mut me = Self {
            store,
            processes,
            keys,
            settings,
            metrics,
            watermark,
            recent: HashMap::new(),
            matchers,
            instances: HashMap::new(),
            written_instances: HashMap::new(),
            written_breaches: HashMap::new(),
            deadlines: BTreeSet::new(),
            walking,
            window_ns: 10_000_000_000,
            pruned_to: 0,
            dirt: rollups::Dirt::default(),
            state_name,
        };
        let firsts = me.store.stage_firsts(since, None).await?;
        me.apply_firsts(firsts);
        let (rows, breaches) = tokio::try_join!(
            me.store.instances_since(since),
            me.store.breaches_since(since),
        )?;
        me.remember(rows, breaches);
        // Evaluate everything once: deadlines come back, and anything that
        // changed while we were away is written.
        let all: Vec<(usize, String)> = me.instances.keys().cloned().collect();
        let now = now_ns();
        let (instances, breaches, moves) = me.evaluate(all.clone(), now);
        me.write_evaluations(&instances, &breaches, &moves, now)
            .await?;
        me.dirt.note(&instances, &breaches, &moves, now);
        me.remember(instances, breaches);
        me.evict_settled(&all, now);
        me.recover_rollups(now).await?;
        Ok(me)
    }
}

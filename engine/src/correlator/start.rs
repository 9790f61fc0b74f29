//! A correlator's start: the matchers of the process definitions, the
//! watermark, the walks filled once on an installation older than them, and
//! the instances of the horizon.

use super::*;
use store::correlation::RootShare;

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
        let process_count = processes.list.len();
        let mut me = Self {
            store,
            processes,
            keys,
            settings,
            metrics,
            watermark,
            recent: HashMap::new(),
            last_read_ns: None,
            matchers,
            instances: Instances::new(process_count),
            deadlines: BTreeSet::new(),
            walking,
            window_ns: 10_000_000_000,
            pruned_to: 0,
            dirt: rollups::Dirt::default(),
            state_name,
        };
        me.resume(since).await?;
        me.recover_rollups(now_ns()).await?;
        Ok(me)
    }

    /// The instances of the horizon, read back and evaluated once
    /// (deadlines come back, and anything that changed while the correlator
    /// was away is written), one share of the roots at a time: a share's
    /// stage firsts, rows and breaches are held only while it is evaluated,
    /// and what is settled is evicted before the next share is read. So a
    /// start after a plant's day holds about
    /// [`CorrelatorSettings::start_share_rows`] instances' rows at once, not a
    /// million.
    async fn resume(&mut self, since: u64) -> Result<(), StoreError> {
        let rows = self.store.instance_rows_since(since).await?;
        let count = rows.div_ceil(self.settings.start_share_rows.max(1)).max(1);
        for index in 0..count {
            let share = RootShare { index, count };
            let firsts = self.store.stage_firsts_of_share(since, share).await?;
            let mut these: BTreeSet<(usize, String)> = BTreeSet::new();
            for f in &firsts {
                if let Some(p) = self.process_index(&f.process_id) {
                    these.insert((p, f.root_value.clone()));
                }
            }
            self.apply_firsts(firsts);
            let (rows, breaches) = tokio::try_join!(
                self.store.instances_of_share(since, share),
                self.store.breaches_of_share(since, share),
            )?;
            self.remember(rows, breaches);
            let these: Vec<(usize, String)> = these.into_iter().collect();
            let now = now_ns();
            let (instances, breaches, moves) = self.evaluate(these.clone(), now);
            self.write_evaluations(&instances, &breaches, &moves, now)
                .await?;
            self.dirt.note(&instances, &breaches, &moves, now);
            self.remember(instances, breaches);
            self.evict_settled(&these, now);
        }
        Ok(())
    }
}

//! The pipeline between receivers and ClickHouse: receivers hand a batch to
//! the disk spool and answer once it is synced there; one writer task drains
//! the spool to ClickHouse in large merged batches (reading the next while
//! storing one) and acknowledges to the spool what ClickHouse confirmed.
//!
//! Failures are classified once, by storage: a retryable one (ClickHouse
//! away, a timeout, overload) makes the writer try the same batch again with
//! jittered exponential backoff, for as long as it takes, reporting the
//! problem on `/readyz` (in general terms) and `/admin` (in detail); a data error (ClickHouse refused rows) makes it split
//! the batch in halves until the refused records stand alone, store the rest,
//! and write those to the dead-letter file. Nothing is retried forever that
//! cannot pass, and a refused row never holds back the rows behind it.
//!
//! Before a batch is written, the spans and log records it stored recently
//! are taken out (`rollups`: the rollups' views would count a redelivery
//! twice), and an attempt after a failed one (or the first after a start)
//! leaves out the spans stored already (`Store::stored_spans`); once a batch is stored, its
//! spans are paired with their parents and the service map's calls are
//! added to the rollups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Metrics};
use crate::rollups::Rollups;
use crate::spool::dead_letter::DeadLetters;
use crate::spool::{Read, Spool, SpoolError, SpoolReader};
use domain::model::Batch;
use store::write::WriteReport;
use store::{Store, StoreError};

/// Why a batch was not accepted. All are the sender's cue to retry later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("the collector's spool is full ({limit} bytes wait for ClickHouse); retry after the Retry-After delay")]
    Full { limit: u64 },
    #[error("the collector could not write its spool: {0}; retry with backoff")]
    Spool(String),
    #[error("the collector is shutting down; retry against another instance or later")]
    Closed,
}

impl From<SpoolError> for SubmitError {
    fn from(e: SpoolError) -> Self {
        match e {
            SpoolError::Full { limit } => SubmitError::Full { limit },
            SpoolError::Io(e) => SubmitError::Spool(e),
            SpoolError::Closed => SubmitError::Closed,
        }
    }
}

/// How long one batch's inserts may take together before they count as
/// failed (retryable). Each insert is also bounded by the store's query
/// timeout; this bounds the batch. Far above what a batch takes (under a
/// few seconds).
const INSERT_TIMEOUT: Duration = Duration::from_secs(120);

/// How often inserts start at most while there is no backlog
/// ([`PipelineOptions::insert_interval`]).
pub const DEFAULT_INSERT_INTERVAL: Duration = Duration::from_secs(1);

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    /// Records merged into one insert at most.
    pub max_batch_records: usize,
    /// First retry delay after a retryable failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Inserts start at most once per this interval while the spool holds
    /// less than a full batch: what arrives meanwhile joins the next insert.
    /// Every insert makes a part in each table, and a point lookup reads
    /// every part; ClickHouse wants about one insert per second per table.
    /// A backlog is written back to back. Acknowledgements do not wait for
    /// it (they wait for the spool), only storage does.
    pub insert_interval: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            max_batch_records: 20_000,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            insert_interval: DEFAULT_INSERT_INTERVAL,
        }
    }
}

/// The receivers' handle: appends to the spool. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    spool: Spool,
}

impl Pipeline {
    /// Starts the writer task draining `reader`; once `shutdown` is
    /// cancelled it finishes the insert in flight (or gives it up at once
    /// when ClickHouse fails) and stops; the spool keeps the rest, records
    /// waiting for the insert interval included, for the next start.
    pub fn start(
        store: Store,
        spool: Spool,
        reader: SpoolReader,
        dead_letters: DeadLetters,
        options: PipelineOptions,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let writer = Writer {
            store,
            spool: spool.clone(),
            dead_letters,
            options,
            metrics,
            shutdown,
            rollups: Default::default(),
            first: std::sync::atomic::AtomicBool::new(true),
        };
        let task = tokio::spawn(writer.run(reader));
        (Self { spool }, task)
    }

    /// The receivers' handle alone, for a collector whose spool another
    /// task drains (the edge collector's forwarder).
    pub(crate) fn spool_only(spool: Spool) -> Self {
        Self { spool }
    }

    /// Makes `batch` durable in the spool; returns once it is synced.
    pub async fn submit(&self, batch: Batch) -> Result<(), SubmitError> {
        if batch.is_empty() {
            return Ok(());
        }
        Ok(self.spool.append(&batch).await?)
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }
}

/// Why a store attempt gave up.
enum Failure {
    /// ClickHouse refused the data; retrying cannot help.
    Data(StoreError),
    /// Shutting down while ClickHouse fails: leave it in the spool.
    Stopped,
}

struct Writer {
    store: Store,
    spool: Spool,
    dead_letters: DeadLetters,
    options: PipelineOptions,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    /// Only this task uses it; a lock never held across an `await`.
    rollups: std::sync::Mutex<Rollups>,
    /// No batch delivered yet: the first may have been stored, not
    /// acknowledged, before a crash.
    first: std::sync::atomic::AtomicBool,
}

/// A delay around `base`: between half and all of it, from the clock's
/// nanoseconds (good enough to keep many collectors from retrying in step).
pub(crate) fn jitter(base: Duration) -> Duration {
    let nanos = domain::now_ns();
    let spread = (nanos ^ (nanos >> 17)).wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1000;
    base / 2 + base / 2 * spread as u32 / 1000
}

/// Reads up to `max` records on a blocking thread (the spool is files).
fn read_blocking(
    mut reader: SpoolReader,
    max: usize,
) -> tokio::task::JoinHandle<(SpoolReader, std::io::Result<Read>)> {
    tokio::task::spawn_blocking(move || {
        let read = reader.read(max);
        (reader, read)
    })
}

/// A blocking read's outcome; `None` when the runtime shut down under it
/// (the spool keeps whatever was not acknowledged). A panic in it is
/// raised here.
fn joined<T>(done: Result<T, tokio::task::JoinError>) -> Option<T> {
    match done {
        Ok(done) => Some(done),
        Err(e) if e.is_cancelled() => None,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Writer {
    async fn run(self, reader: SpoolReader) {
        let mut committed = self.spool.committed();
        let max = self.options.max_batch_records;
        // The next batch is read and decoded while the current one is
        // stored; `borrow_and_update` before each read, so a commit after
        // it wakes `changed` below.
        let read_next = |reader: SpoolReader| read_blocking(reader, max);
        committed.borrow_and_update();
        let mut next = read_next(reader);
        let mut last_insert: Option<Instant> = None;
        loop {
            let Some((reader, read)) = joined(next.await) else {
                return;
            };
            let read = match read {
                Ok(read) => read,
                Err(e) => {
                    tracing::error!(error = %e, dir = %self.spool.dir().display(), "reading the spool failed; retrying");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    committed.borrow_and_update();
                    next = read_next(reader);
                    continue;
                }
            };
            if !read.moved {
                if self.shutdown.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = committed.changed() => {}
                    _ = self.shutdown.cancelled() => {}
                }
                committed.borrow_and_update();
                next = read_next(reader);
                continue;
            }
            // A backlog is not drained at shutdown: what is not stored yet
            // stays in the spool for the next start, so a stop takes at most
            // the batch in flight.
            if self.shutdown.is_cancelled() {
                return;
            }
            let Some((reader, read)) = self.gather(reader, read, last_insert).await else {
                return;
            };
            last_insert = Some(Instant::now());
            committed.borrow_and_update();
            next = read_next(reader);
            let (count, bytes, end) = (read.count(), read.bytes(), read.end);
            for (size, reason) in &read.undecodable {
                tracing::error!(%reason, "a spool record cannot be decoded by this build; it is noted in the dead-letter file and dropped");
                metrics::add(&self.metrics.dead_letters, 1);
                if let Err(e) = self.dead_letters.write_undecodable(*size, reason) {
                    tracing::error!(error = %e, "writing the dead-letter file failed");
                }
            }
            let mut merged = Batch::default();
            for record in read.records {
                merged.append(record.batch);
            }
            if !merged.is_empty() && self.deliver(merged).await.is_err() {
                return;
            }
            if let Err(e) = self.spool.ack(end, count, bytes) {
                tracing::error!(error = %e, "saving the spool position failed; the records may be written again after a restart (harmless)");
            }
        }
    }

    /// Less than a full batch read within `insert_interval` of the last
    /// insert's start: waits out the interval and reads what was committed
    /// meanwhile into the same batch. `None` when shutting down (what was
    /// read stays in the spool, unacknowledged).
    async fn gather(
        &self,
        reader: SpoolReader,
        mut read: Read,
        last_insert: Option<Instant>,
    ) -> Option<(SpoolReader, Read)> {
        let max = self.options.max_batch_records;
        let Some(deadline) = last_insert.map(|at| at + self.options.insert_interval) else {
            return Some((reader, read));
        };
        // Counted as the reader counts toward its maximum: records of the
        // batches (spans, logs, events), not requests.
        let held = read.held();
        if held >= max || Instant::now() >= deadline {
            return Some((reader, read));
        }
        if self.pause_until(deadline).await {
            return None;
        }
        let rest = max - held;
        let (reader, more) = joined(read_blocking(reader, rest).await)?;
        match more {
            Ok(more) if more.moved => {
                read.records.extend(more.records);
                read.undecodable.extend(more.undecodable);
                read.end = more.end;
            }
            Ok(_) => {}
            // The reader stands where the first read ended: store that, the
            // rest is read again next time.
            Err(e) => {
                tracing::error!(error = %e, dir = %self.spool.dir().display(), "reading the spool failed; storing what was read before")
            }
        }
        Some((reader, read))
    }

    /// Sleeps until `deadline` unless shutting down; true when shutting down.
    async fn pause_until(&self, deadline: Instant) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => false,
            _ = self.shutdown.cancelled() => true,
        }
    }

    /// Sleeps `delay` unless shutting down; true when shutting down.
    async fn pause(&self, delay: Duration) -> bool {
        self.pause_until(Instant::now() + delay).await
    }

    /// Stores `batch`, setting refused records aside; `Err` only when
    /// stopping with ClickHouse failing.
    async fn deliver(&self, batch: Batch) -> Result<(), ()> {
        let batch = self.without_redeliveries(batch);
        let mut todo = vec![batch];
        // After a failure, an attempt leaves out the spans stored already;
        // so does the first after a start (it may be the batch a crash
        // interrupted between storing and acknowledging).
        let mut failed = self.first.swap(false, std::sync::atomic::Ordering::Relaxed);
        while let Some(batch) = todo.pop() {
            if batch.is_empty() {
                continue;
            }
            match self.store_with_retry(&batch, failed).await {
                Ok(()) => self.add_edges(&batch).await,
                Err(Failure::Stopped) => return Err(()),
                Err(Failure::Data(e)) if batch.len() <= 1 => {
                    failed = true;
                    self.dead_letter(&batch, &e).await?
                }
                Err(Failure::Data(e)) => {
                    failed = true;
                    tracing::warn!(error = %e, records = batch.len(), "ClickHouse refused data in a batch; writing it in halves to isolate the refused records");
                    let (first, second) = halves(batch);
                    todo.push(second);
                    todo.push(first);
                }
            }
        }
        Ok(())
    }

    /// Writes a refused record to the dead-letter file. The spool keeps it
    /// until that write succeeds (a full disk is retried with backoff), so a
    /// record is always in ClickHouse, in the dead letters, or still spooled;
    /// `Err` only when stopping first.
    async fn dead_letter(&self, batch: &Batch, error: &StoreError) -> Result<(), ()> {
        let reason = error.to_string();
        let mut delay = self.options.min_backoff;
        loop {
            match self.dead_letters.write(batch, &reason) {
                Ok(n) => {
                    metrics::add(&self.metrics.dead_letters, n);
                    tracing::error!(%reason, file = %self.dead_letters.path().display(), "ClickHouse refused a record; it is in the dead-letter file");
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(%reason, error = %e, "ClickHouse refused a record and the dead-letter file cannot be written; the record stays in the spool and is tried again");
                    if self.pause(delay).await {
                        return Err(());
                    }
                    delay = (delay * 2).min(self.options.max_backoff);
                }
            }
        }
    }

    async fn store_with_retry(&self, batch: &Batch, failed_before: bool) -> Result<(), Failure> {
        let m = &self.metrics;
        let mut delay = self.options.min_backoff;
        let mut failed = failed_before;
        loop {
            let started = Instant::now();
            // A server that takes the connection and never answers must not
            // stop the writer: that is a timeout, retried like any other.
            let result = tokio::time::timeout(INSERT_TIMEOUT, self.attempt(batch, failed))
                .await
                .unwrap_or(Err(StoreError::Timeout(INSERT_TIMEOUT)));
            m.insert_latency.observe(started.elapsed());
            let error = match result {
                Ok(report) => {
                    metrics::add(&m.insert_batches, 1);
                    metrics::add(&m.insert_records, batch.len());
                    metrics::add(&m.spans.written, batch.spans.len());
                    metrics::add(&m.logs.written, batch.logs.len());
                    metrics::add(
                        &m.events.written,
                        batch.events.len() - report.duplicate_events,
                    );
                    metrics::add(&m.events_duplicates, report.duplicate_events);
                    metrics::add(&m.events_conflicts, report.conflicting_events);
                    if m.clickhouse_problem
                        .lock()
                        .expect("metrics lock")
                        .take()
                        .is_some()
                    {
                        tracing::info!("ClickHouse takes inserts again; draining the spool");
                    }
                    return Ok(());
                }
                Err(e) => e,
            };
            metrics::add(&m.insert_errors, 1);
            failed = true;
            if error.is_data_error() {
                return Err(Failure::Data(error));
            }
            // The detail, for the log and `/admin`; `/readyz` says only
            // that ClickHouse does not take inserts.
            let problem = format!(
                "ClickHouse at {} does not take inserts: {error}; requests are kept in the spool",
                domain::redact::url(&self.store.config().url)
            );
            let first = m
                .clickhouse_problem
                .lock()
                .expect("metrics lock")
                .replace(problem)
                .is_none();
            if first {
                tracing::warn!(error = %error, records = batch.len(), "insert failed; retrying with backoff");
            } else {
                tracing::debug!(error = %error, "insert failed again");
            }
            if self.shutdown.is_cancelled() || self.pause(jitter(delay)).await {
                return Err(Failure::Stopped);
            }
            metrics::add(&m.insert_retries, 1);
            delay = (delay * 2).min(self.options.max_backoff);
        }
    }
}

impl Writer {
    /// One attempt at storing `batch`. After a failed one, its spans that
    /// `spans_v2` holds already are left out of it (the rollups' views
    /// would count them twice; the raw rows would collapse anyway).
    async fn attempt(&self, batch: &Batch, failed_before: bool) -> Result<WriteReport, StoreError> {
        if !failed_before || batch.spans.is_empty() {
            return self.store.write_batch(batch).await;
        }
        let stored = self.store.stored_spans(&batch.spans).await?;
        self.store.write_batch_except(batch, &stored).await
    }

    /// `batch` without the spans and log records stored recently (see
    /// `rollups`).
    fn without_redeliveries(&self, batch: Batch) -> Batch {
        let (batch, dropped) = self.rollups.lock().expect("rollups lock").fresh(batch);
        if dropped > 0 {
            tracing::debug!(
                dropped,
                "spans or log records stored moments ago were delivered again; not inserted twice"
            );
        }
        batch
    }

    /// Remembers `batch` as stored and adds the service map's calls of its
    /// spans to the rollups, retrying like a batch. When stopping first,
    /// those calls are not counted (the batch is stored: writing it again
    /// after the restart would count its spans twice).
    async fn add_edges(&self, batch: &Batch) {
        let edges = self
            .rollups
            .lock()
            .expect("rollups lock")
            .stored(batch, domain::now_ns());
        let mut delay = self.options.min_backoff;
        while !edges.is_empty() {
            match self.store.write_edges(&edges).await {
                Ok(()) => break,
                Err(e) if e.is_data_error() => {
                    tracing::error!(error = %e, "ClickHouse refused the service map's calls of a batch; they are not counted");
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "writing the service map's calls failed; retrying");
                    if self.pause(jitter(delay)).await {
                        tracing::warn!(
                            "stopping: the service map's calls of the last batch are not counted"
                        );
                        return;
                    }
                    delay = (delay * 2).min(self.options.max_backoff);
                }
            }
        }
    }
}

/// Splits a batch of two or more records into two non-empty halves.
fn halves(mut batch: Batch) -> (Batch, Batch) {
    let half = batch.len() / 2;
    let mut second = Batch::default();
    let spans = batch.spans.len().min(half);
    let logs = batch.logs.len().min(half - spans);
    let events = batch.events.len().min(half - spans - logs);
    second.spans = batch.spans.split_off(spans);
    second.logs = batch.logs.split_off(logs);
    second.events = batch.events.split_off(events);
    (batch, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_split_across_kinds_and_keep_order() {
        let sample = crate::spool::tests::sample_batch();
        let mut batch = Batch::default();
        for _ in 0..3 {
            batch.append(sample.clone());
        }
        assert_eq!(batch.len(), 9);
        let (a, b) = halves(batch);
        assert_eq!((a.spans.len(), a.logs.len(), a.events.len()), (3, 1, 0));
        assert_eq!((b.spans.len(), b.logs.len(), b.events.len()), (0, 2, 3));
        let (c, d) = halves(a);
        assert_eq!((c.len(), d.len()), (2, 2));
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(800));
            assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(800));
        }
    }
}

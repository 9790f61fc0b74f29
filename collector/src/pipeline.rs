//! The pipeline between receivers and ClickHouse: a bounded queue and one
//! writer task that merges whatever requests are waiting into one insert per
//! table, then acknowledges each request.
//!
//! A request is acknowledged only after ClickHouse confirmed its rows, so a
//! sender that got OK never loses data to us; a full queue is answered at once
//! with "overloaded, retry", which is the backpressure senders act on. (A disk
//! spool between the two is the next step; see ARCHITECTURE.md.)

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::{self, Metrics};
use crate::model::Batch;
use crate::storage::Store;

/// Why a batch was not stored. Both are the sender's cue to retry later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("the collector is overloaded (its write queue is full); retry with backoff")]
    Overloaded,
    #[error("storing the data failed: {0}; retry with backoff")]
    Storage(String),
    #[error("the collector is shutting down; retry against another instance or later")]
    Closed,
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    /// Requests waiting for the writer before new ones are refused.
    pub queue_requests: usize,
    /// Records merged into one insert at most.
    pub max_batch_records: usize,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            queue_requests: 256,
            max_batch_records: 50_000,
        }
    }
}

struct Job {
    batch: Batch,
    done: oneshot::Sender<Result<(), SubmitError>>,
}

/// The receivers' handle on the writer. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
}

impl Pipeline {
    /// Starts the writer task; it ends once every handle is dropped and the
    /// queue is drained.
    pub fn start(
        store: Store,
        options: PipelineOptions,
        metrics: Arc<Metrics>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(options.queue_requests.max(1));
        let task = tokio::spawn(writer(store, rx, options, metrics));
        (Self { tx }, task)
    }

    /// Stores `batch`; returns once ClickHouse confirmed it.
    pub async fn submit(&self, batch: Batch) -> Result<(), SubmitError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.tx.try_send(Job { batch, done }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Closed,
        })?;
        wait.await.unwrap_or(Err(SubmitError::Closed))
    }
}

async fn write(store: &Store, batch: &Batch, m: &Metrics) -> Result<(), SubmitError> {
    let started = Instant::now();
    let result = store.write_batch(batch).await;
    m.insert_latency.observe(started.elapsed());
    match result {
        Ok(report) => {
            metrics::add(&m.spans.written, batch.spans.len());
            metrics::add(&m.logs.written, batch.logs.len());
            metrics::add(
                &m.events.written,
                batch.events.len() - report.duplicate_events,
            );
            metrics::add(&m.events_duplicates, report.duplicate_events);
            Ok(())
        }
        Err(e) => {
            metrics::add(&m.insert_errors, 1);
            tracing::warn!(error = %e, retryable = e.is_retryable(), records = batch.len(), "insert failed");
            Err(SubmitError::Storage(e.to_string()))
        }
    }
}

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    options: PipelineOptions,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut records = jobs[0].batch.len();
        while records < options.max_batch_records {
            match rx.try_recv() {
                Ok(job) => {
                    records += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // Move the batches into one, remembering where each began, so that a
        // failure can be split back without having copied anything.
        let mut merged = Batch::default();
        let mut waiters = Vec::with_capacity(jobs.len());
        for job in jobs {
            waiters.push((merged.mark(), job.done));
            merged.append(job.batch);
        }
        let result = write(&store, &merged, &metrics).await;
        if result.is_ok() || waiters.len() == 1 {
            for (_, done) in waiters {
                let _ = done.send(result.clone());
            }
            continue;
        }
        // One request's bad data must not fail the others merged with it:
        // write each alone and answer each with its own outcome.
        let mut parts = Vec::with_capacity(waiters.len());
        for (mark, done) in waiters.into_iter().rev() {
            parts.push((merged.split_off(mark), done));
        }
        for (part, done) in parts.into_iter().rev() {
            let result = write(&store, &part, &metrics).await;
            let _ = done.send(result);
        }
    }
}

//! The edge collector's forwarder: instead of writing to ClickHouse, it
//! sends what the spool holds to a central collector, as OTLP/HTTP protobuf
//! (spans, log records) and batched CloudEvents (events), gzip-compressed
//! with a bearer token (`forward_to`, `forward_token`).
//!
//! It is the pipeline's writer for a collector without ClickHouse, and
//! keeps the writer's rules:
//!
//! - A record leaves the spool (`Spool::ack`) only once central
//!   acknowledged it (a 2xx), or refused it as data and it was written to
//!   the dead-letter file. A link that is down is retried with jittered
//!   exponential backoff for as long as it is down; the spool keeps
//!   accepting (up to its limit) meanwhile. Under `spool_when_full =
//!   "drop_oldest"` a spool past its limit makes a failed attempt drop
//!   the batch in hand instead (acknowledged unsent, logged, counted).
//! - One batch is in flight at a time and the spool is read in order, so
//!   each connector's records reach central in the order they were
//!   acknowledged.
//! - A resend (a lost acknowledgement, a restart before `ack`) sends the
//!   same records again, encoded the same: central keeps spans once by
//!   trace id, span id and service, log records by their content id, and
//!   events by source and id, so nothing is stored twice.
//! - `plant` names this collector's plant: the receivers' encoders add
//!   `plant.id` to each resource and a `plant` extension to each event
//!   that carries none.
//!
//! The encoding is the receivers' (`receivers::otlp::encode`,
//! `receivers::cloudevents::encode`): this module knows HTTP, not a wire
//! format. A part larger than `max_request_bytes` is sent in halves; a
//! part central refuses (a 4xx, or a 2xx whose OTLP partial success counts
//! rejected records without naming them) is halved until the refused
//! records stand alone. A 403 for records all of this plant is the token's
//! (bound to another plant or to other systems): retried, like a 401.

pub mod heartbeat;
mod part;
pub mod upstream;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Metrics};
use crate::pipeline::jitter;
use crate::spool::dead_letter::DeadLetters;
use crate::spool::{Spool, SpoolReader};
use domain::model::Batch;
use part::Part;
use upstream::{Answer, Upstream};

/// Where and how an edge collector forwards.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// The central collector's OTLP/HTTP address: `https://central:4318`.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// PEM certificates to trust for central's TLS besides the public
    /// roots (a private CA, or central's self-signed certificate).
    pub ca_pem: Option<Vec<u8>>,
    /// This collector's plant (`plant.id`, the `plant` extension).
    pub plant: Option<String>,
    /// Records read from the spool and sent together at most.
    pub max_batch_records: usize,
    /// Largest request body before compression; a larger part is halved.
    pub max_request_bytes: usize,
    /// Each request's deadline.
    pub timeout: Duration,
    /// What the edge's spool does when full (`spool_when_full`).
    pub when_full: crate::spool::WhenFull,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Time between reports of the backlog to central (`forward_heartbeat`;
    /// only with a `plant`): see [`heartbeat`].
    pub heartbeat: Duration,
}

impl ForwardSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            ca_pem: None,
            plant: None,
            max_batch_records: 2_000,
            max_request_bytes: 4 << 20,
            timeout: Duration::from_secs(30),
            when_full: crate::spool::WhenFull::Refuse,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
        }
    }
}

/// Why forwarding a batch ended before central acknowledged it.
enum Halt {
    /// Shutting down: the batch stays spooled.
    Stopped,
    /// The spool is past its limit under `drop_oldest` and central cannot
    /// be reached: these many records of the part in hand are dropped.
    Dropped(usize),
}

pub struct Forwarder {
    upstream: Upstream,
    settings: ForwardSettings,
    spool: Spool,
    dead_letters: DeadLetters,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Forwarder {
    /// Starts the task draining `reader` to central; it stops once
    /// `shutdown` is cancelled (what is not acknowledged stays spooled).
    pub fn start(
        settings: ForwardSettings,
        spool: Spool,
        reader: SpoolReader,
        dead_letters: DeadLetters,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, String> {
        let upstream = Upstream::new(
            &settings.url,
            settings.token.clone(),
            settings.ca_pem.as_deref(),
            settings.timeout,
        )?;
        metrics.forward.enabled.store(true, Ordering::Relaxed);
        if let Some(plant) = settings.plant.clone() {
            tokio::spawn(heartbeat::run(
                upstream.clone(),
                plant,
                settings.heartbeat,
                metrics.clone(),
                shutdown.clone(),
            ));
        }
        let forwarder = Forwarder {
            upstream,
            settings,
            spool,
            dead_letters,
            metrics,
            shutdown,
        };
        Ok(tokio::spawn(forwarder.run(reader)))
    }

    async fn run(self, mut reader: SpoolReader) {
        let mut committed = self.spool.committed();
        let max = self.settings.max_batch_records;
        loop {
            committed.borrow_and_update();
            let read = tokio::task::spawn_blocking(move || {
                let read = reader.read(max);
                (reader, read)
            })
            .await;
            let read = match read {
                Ok((r, read)) => {
                    reader = r;
                    read
                }
                Err(e) if e.is_cancelled() => return,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            let read = match read {
                Ok(read) => read,
                Err(e) => {
                    tracing::error!(error = %e, dir = %self.spool.dir().display(), "reading the spool failed; retrying");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if !read.moved {
                if self.shutdown.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = committed.changed() => {}
                    _ = self.shutdown.cancelled() => return,
                }
                continue;
            }
            if self.shutdown.is_cancelled() {
                return;
            }
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
            let mut parts = Part::split(merged).into_iter();
            while let Some(part) = parts.next() {
                match self.send(part).await {
                    Ok(()) => {}
                    Err(Halt::Stopped) => return,
                    Err(Halt::Dropped(n)) => {
                        let n = n + parts.by_ref().map(|p| p.len()).sum::<usize>();
                        metrics::add(&self.metrics.forward.dropped, n);
                        tracing::error!(
                            dropped = n,
                            spool_bytes = self.metrics.spool.bytes.load(Ordering::Relaxed),
                            "the spool is past spool_max_bytes and the central collector cannot be reached: dropped the oldest records (spool_when_full = \"drop_oldest\"); they are lost"
                        );
                    }
                }
            }
            if let Err(e) = self.spool.ack(end, count, bytes) {
                tracing::error!(error = %e, "saving the spool position failed; the records may be forwarded again after a restart (central keeps them once)");
            }
        }
    }

    /// Sleeps `delay` unless shutting down; true when shutting down.
    async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            _ = self.shutdown.cancelled() => true,
        }
    }

    /// Sends `part` until central acknowledged it or refused its records
    /// one by one; `Err` only when stopping first.
    ///
    /// A part central refuses (a 4xx, or an OTLP partial success with
    /// rejected records, which names none of them) is halved and the halves
    /// sent again until the refused records stand alone, and those are
    /// dead-lettered with central's reason. Records of the part central
    /// stored already are sent again then; it keeps them once.
    async fn send(&self, part: Part) -> Result<(), Halt> {
        let plant = self.settings.plant.as_deref();
        let mut todo = vec![part];
        while let Some(part) = todo.pop() {
            let request = part.encode(plant);
            if request.body.len() > self.settings.max_request_bytes && part.len() > 1 {
                let (a, b) = part.halves();
                todo.push(b);
                todo.push(a);
                continue;
            }
            // A 403 for records that are all this plant's is the token's:
            // a setup mistake, retried like a 401 until it is fixed.
            let own = part.all_of_plant(plant);
            let answer = match self.post_with_retry(&request, own).await {
                Ok(answer) => answer,
                Err(Halt::Dropped(_)) => {
                    let rest = part.len() + todo.iter().map(Part::len).sum::<usize>();
                    return Err(Halt::Dropped(rest));
                }
                Err(halt) => return Err(halt),
            };
            match answer {
                Answer::Accepted(answer) => {
                    let refused = part.refused_in(&answer);
                    if refused.named.is_empty() && refused.count > 0 && part.len() > 1 {
                        tracing::debug!(records = part.len(), refused = refused.count, reason = %refused.message, "the central collector refused some records of a forwarded part; sending it in halves to find them");
                        let (a, b) = part.halves();
                        todo.push(b);
                        todo.push(a);
                    } else {
                        self.accepted(part, refused, request.path).await?
                    }
                }
                Answer::TooLarge | Answer::Refused(_) | Answer::Forbidden(_) if part.len() > 1 => {
                    let (a, b) = part.halves();
                    todo.push(b);
                    todo.push(a);
                }
                Answer::TooLarge => {
                    let reason = format!(
                        "{} refused the record as too large (413); raise its max_request_bytes",
                        self.upstream.url(request.path)
                    );
                    self.dead_letter(part, &reason).await?
                }
                Answer::Refused(reason) | Answer::Forbidden(reason) => {
                    self.dead_letter(part, &reason).await?
                }
                Answer::Retry(_) => unreachable!("post_with_retry retries these"),
            }
        }
        Ok(())
    }

    /// Counts what central acknowledged, and dead-letters what its answer
    /// refused: the events it names, or the part's one record that an OTLP
    /// partial success counts (a larger part was halved first).
    async fn accepted(&self, part: Part, refused: part::Refusals, path: &str) -> Result<(), Halt> {
        let f = &self.metrics.forward;
        let count = refused.count.min(part.len());
        metrics::add(&f.forwarded[part.signal()], part.len() - count);
        if refused.named.is_empty() && count > 0 {
            let reason = format!(
                "{} refused the record in its partial success: {}",
                self.upstream.url(path),
                refused.message
            );
            return self.dead_letter(part, &reason).await;
        }
        for (event, reason) in refused.named {
            self.dead_letter(Part::Events(vec![event]), &reason).await?;
        }
        Ok(())
    }

    /// POSTs `request` until it is answered with anything but "retry".
    /// Gives up with `Dropped` when the spool must drop its oldest records.
    /// `own`: the records are all this plant's, so a 403 is the token's
    /// (bound to another plant or other systems) and retried.
    async fn post_with_retry(&self, request: &part::Request, own: bool) -> Result<Answer, Halt> {
        let f = &self.metrics.forward;
        let mut delay = self.settings.min_backoff;
        loop {
            let answer = self
                .upstream
                .post(request.path, request.content_type, &request.body)
                .await;
            let setup = own && matches!(answer, Answer::Forbidden(_));
            let answer = match answer {
                Answer::Forbidden(said) if own => Answer::Retry(format!(
                    "{said}; check forward_token: it must be a token of the central collector's [[tokens]] whose `plant` is this collector's `plant` ({}) and whose systems are this plant's",
                    self.settings.plant.as_deref().unwrap_or("none set")
                )),
                answer => answer,
            };
            let Answer::Retry(problem) = answer else {
                f.upstream_up.store(1, Ordering::Relaxed);
                if f.problem.lock().expect("metrics lock").take().is_some() {
                    tracing::info!(url = %self.upstream.url(request.path), "the central collector takes records again; forwarding the backlog");
                }
                return Ok(answer);
            };
            f.upstream_up.store(0, Ordering::Relaxed);
            let first = f
                .problem
                .lock()
                .expect("metrics lock")
                .replace(problem.clone())
                .is_none();
            if first && setup {
                tracing::error!(%problem, "the central collector refuses this collector's token for its plant's records (403), a setup mistake; records stay in the spool and are sent again with backoff until the token is fixed");
            } else if first {
                tracing::warn!(%problem, "forwarding failed; records stay in the spool and are sent again with backoff");
            } else {
                tracing::debug!(%problem, "forwarding failed again");
            }
            if self.spool.must_drop_oldest() {
                return Err(Halt::Dropped(0));
            }
            if self.pause(jitter(delay)).await {
                return Err(Halt::Stopped);
            }
            metrics::add(&f.retries, 1);
            delay = (delay * 2).min(self.settings.max_backoff);
        }
    }

    /// Writes records central refused to the dead-letter file, loudly; the
    /// spool keeps them until that write succeeds.
    async fn dead_letter(&self, part: Part, reason: &str) -> Result<(), Halt> {
        let signal = part.signal();
        let batch = part.into_batch();
        let mut delay = self.settings.min_backoff;
        loop {
            match self.dead_letters.write(&batch, reason) {
                Ok(n) => {
                    metrics::add(&self.metrics.dead_letters, n);
                    metrics::add(&self.metrics.forward.refused[signal], n);
                    tracing::error!(%reason, records = n, file = %self.dead_letters.path().display(), "the central collector refused forwarded records; they are in the dead-letter file");
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(%reason, error = %e, "the central collector refused records and the dead-letter file cannot be written; they stay in the spool and are tried again");
                    if self.pause(delay).await {
                        return Err(Halt::Stopped);
                    }
                    delay = (delay * 2).min(self.settings.max_backoff);
                }
            }
        }
    }
}

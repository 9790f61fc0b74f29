//! The disk spool between the receivers and the ClickHouse writer: what makes
//! "acknowledged" mean "durable here", whatever ClickHouse or this process do
//! next.
//!
//! Design (after Vector's `disk_v2`, much smaller):
//!
//! - Files: one directory (`<data_dir>/spool` by default) of append-only
//!   segments `segment-<id>.spool`, ids rising. Each record is one request's
//!   normalized [`Batch`] framed as `[len u32][crc32 u32][payload]`
//!   (`segment`), the payload in the spool's own binary encoding (`codec`).
//!   A lock file keeps a second collector out of the same directory.
//! - Appending: [`Spool::append`] encodes the batch in the caller's task and
//!   hands it to one committer thread. The committer takes every append that
//!   is waiting, writes them in one `write`, then one `fdatasync`, and only
//!   then answers all of them: group commit, so many concurrent requests share
//!   one fsync. A segment is closed (already synced) and a new one started
//!   once it passes `segment_bytes`.
//! - Size: appended but not yet acknowledged-by-ClickHouse bytes count
//!   against `max_bytes`; an append beyond it is [`SpoolError::Full`] at once
//!   (the receivers answer 429 / `RESOURCE_EXHAUSTED`). Nothing else buffers
//!   records, so memory does not grow with the backlog. An edge collector
//!   may choose [`WhenFull::DropOldest`] instead: appends are taken past the
//!   limit and its forwarder drops (acknowledges unsent, counted and
//!   logged) the oldest records while it cannot deliver them, so the spool
//!   exceeds `max_bytes` by at most what arrives during one attempt.
//! - Draining: exactly one [`SpoolReader`] (`reader`) reads committed
//!   records in order (never past what the committer has synced). Once the
//!   writer has stored (or dead-lettered) them it calls [`Spool::ack`] with
//!   the position after them; the position is saved in the file `ack`
//!   (write + rename) and segments wholly before it are deleted. Who
//!   deletes: only `ack`.
//! - Start: segments before the saved position are deleted, the rest are
//!   checked record by record; a torn or damaged record (a power cut
//!   mid-append: it was never acknowledged) is logged and cut off, the records
//!   before it are kept and replayed. New appends always go to a new segment.
//! - Replays may repeat records ClickHouse already has (a crash between an
//!   insert and its `ack`); storage writes are idempotent, so that is safe.

pub mod codec;
pub mod dead_letter;
mod reader;
pub mod segment;

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;
use domain::model::Batch;

pub use reader::{Read, Record, SpoolReader};

/// Default size limit of the spool: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// What a full spool does with a new request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse it (429 / `RESOURCE_EXHAUSTED`): nothing acknowledged is
    /// ever dropped; senders keep their data and retry.
    #[default]
    Refuse,
    /// Take it, and let the drain drop the oldest records while it cannot
    /// deliver them (an edge collector's `spool_when_full = "drop_oldest"`;
    /// see [`Spool::must_drop_oldest`]).
    DropOldest,
}

/// Where the spool lives and how large it may grow.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    pub dir: PathBuf,
    /// Bytes appended and not yet stored in ClickHouse, at most.
    pub max_bytes: u64,
    /// A segment is closed and a new one begun past this size.
    pub segment_bytes: u64,
    /// Past `max_bytes`: refuse, or drop the oldest.
    pub when_full: WhenFull,
}

impl SpoolOptions {
    /// A spool in `dir` holding at most `max_bytes`, with segments of an
    /// eighth of that (at most 64 MiB), so that acknowledged data is freed in
    /// steps small against the limit.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(64 * 1024, 64 << 20),
            when_full: WhenFull::Refuse,
        }
    }
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({limit} bytes wait for ClickHouse)")]
    Full { limit: u64 },
    #[error("writing the spool failed: {0}")]
    Io(String),
    #[error("the spool is closed")]
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("spool directory {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("spool directory {0} is in use by another collector; give each collector its own data_dir or spool_dir")]
    Locked(String),
}

struct Pending {
    framed: Vec<u8>,
    done: oneshot::Sender<Result<(), SpoolError>>,
}

struct Shared {
    dir: PathBuf,
    max_bytes: u64,
    when_full: WhenFull,
    metrics: Arc<Metrics>,
    committed: watch::Sender<Position>,
    acked: watch::Sender<Position>,
    /// The size of the last append refused as full.
    refused_bytes: AtomicU64,
}

/// The receivers' and the writer's handle on the spool. Cheap to clone; the
/// committer thread stops when the last handle is gone.
#[derive(Clone)]
pub struct Spool {
    tx: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
    /// The `flock` on `lock`, held by the handles and the reader (not by the
    /// committer thread, so it is free as soon as they are dropped).
    _lock: Arc<File>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_ack(dir: &Path) -> Option<Position> {
    let bytes = std::fs::read(dir.join("ack")).ok()?;
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    Some(Position {
        segment: u64::from_le_bytes(bytes[..8].try_into().ok()?),
        offset: u64::from_le_bytes(bytes[8..].try_into().ok()?),
    })
}

fn write_ack(dir: &Path, at: Position) -> std::io::Result<()> {
    let mut bytes = at.segment.to_le_bytes().to_vec();
    bytes.extend_from_slice(&at.offset.to_le_bytes());
    let tmp = dir.join("ack.tmp");
    std::fs::write(&tmp, bytes)?;
    // No fsync: a lost `ack` only means replaying records ClickHouse has,
    // which storage absorbs.
    std::fs::rename(tmp, dir.join("ack"))
}

fn lock(dir: &Path) -> Result<File, OpenError> {
    let file = File::create(dir.join("lock")).map_err(|source| OpenError::Io {
        dir: dir.display().to_string(),
        source,
    })?;
    // SAFETY: flock(2) on a descriptor we own.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(OpenError::Locked(dir.display().to_string()));
    }
    Ok(file)
}

fn create_segment(dir: &Path, id: u64) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment::path(dir, id))?;
    sync_dir(dir)?;
    Ok(file)
}

impl Spool {
    /// Opens (or creates) the spool in `options.dir`, checks what an earlier
    /// run left, and starts the committer. Blocking: call it off the runtime's
    /// worker threads for a large spool. Returns the reader that drains it.
    pub fn open(
        options: &SpoolOptions,
        metrics: Arc<Metrics>,
    ) -> Result<(Spool, SpoolReader), OpenError> {
        let dir = options.dir.clone();
        let io = |source| OpenError::Io {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let lock = lock(&dir)?;
        let acked = read_ack(&dir).unwrap_or_default();
        let mut ids = segment::list(&dir).map_err(io)?;
        for id in ids.iter().filter(|id| **id < acked.segment) {
            std::fs::remove_file(segment::path(&dir, *id)).map_err(io)?;
        }
        ids.retain(|id| *id >= acked.segment);
        let (mut records, mut bytes) = (0u64, 0u64);
        for id in &ids {
            let from = if *id == acked.segment {
                acked.offset
            } else {
                0
            };
            let checked = segment::check(&dir, *id, from).map_err(io)?;
            if let Some(reason) = &checked.broken {
                tracing::warn!(
                    segment = %segment::path(&dir, *id).display(),
                    kept = checked.records,
                    cut_at = checked.valid_len,
                    "spool segment ends in a torn or damaged record ({reason}); it was never acknowledged, the records before it are kept"
                );
            }
            records += checked.records;
            bytes += checked.bytes;
        }
        if records > 0 {
            tracing::info!(
                records,
                bytes,
                "spool holds records of an earlier run; replaying them"
            );
        }
        // Never reuse an id: not the acknowledged segment's either, whose
        // saved offset would otherwise apply to new records.
        let active = ids.last().map_or(0, |id| id + 1).max(acked.segment + 1);
        let file = create_segment(&dir, active).map_err(io)?;
        let start = match ids.first() {
            Some(id) if *id == acked.segment => acked,
            Some(id) => Position {
                segment: *id,
                offset: 0,
            },
            None => Position {
                segment: active,
                offset: 0,
            },
        };
        metrics.spool.bytes.store(bytes, Ordering::Relaxed);
        metrics.spool.records.store(records, Ordering::Relaxed);
        let committed = Position {
            segment: active,
            offset: 0,
        };
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            max_bytes: options.max_bytes,
            when_full: options.when_full,
            metrics,
            committed: watch::Sender::new(committed),
            acked: watch::Sender::new(start),
            refused_bytes: AtomicU64::new(0),
        });
        let lock = Arc::new(lock);
        let (tx, rx) = mpsc::channel(256);
        let committer = Committer {
            shared: shared.clone(),
            segment: active,
            file,
            len: 0,
            segment_bytes: options.segment_bytes,
            must_roll: false,
        };
        std::thread::Builder::new()
            .name("spool-committer".into())
            .spawn(move || committer.run(rx))
            .map_err(io)?;
        let reader = SpoolReader {
            shared: shared.clone(),
            reader: None,
            at: start,
            _lock: lock.clone(),
        };
        Ok((
            Spool {
                tx,
                shared,
                _lock: lock,
            },
            reader,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Makes `batch` durable in the spool; returns once it is synced to disk.
    pub async fn append(&self, batch: &Batch) -> Result<(), SpoolError> {
        let mut framed = vec![0u8; segment::HEADER];
        codec::encode(domain::now_ns(), batch, &mut framed);
        let payload_len = framed.len() - segment::HEADER;
        let crc = crc32fast::hash(&framed[segment::HEADER..]);
        framed[..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        framed[4..8].copy_from_slice(&crc.to_le_bytes());
        let size = framed.len() as u64;
        let gauge = &self.shared.metrics.spool.bytes;
        let before = gauge.fetch_add(size, Ordering::Relaxed);
        // An empty spool takes any one record, so a request larger than the
        // limit cannot be refused forever.
        let refuse = self.shared.when_full == WhenFull::Refuse;
        if refuse && before > 0 && before + size > self.shared.max_bytes {
            gauge.fetch_sub(size, Ordering::Relaxed);
            self.shared.refused_bytes.store(size, Ordering::Relaxed);
            return Err(SpoolError::Full {
                limit: self.shared.max_bytes,
            });
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send(Pending { framed, done }).await.is_err() {
            gauge.fetch_sub(size, Ordering::Relaxed);
            return Err(SpoolError::Closed);
        }
        wait.await.unwrap_or(Err(SpoolError::Closed))
    }

    /// Whether an append as large as the last one refused would be refused
    /// now (false until one was refused).
    pub fn is_full(&self) -> bool {
        let bytes = self.shared.metrics.spool.bytes.load(Ordering::Relaxed);
        let refused = self.shared.refused_bytes.load(Ordering::Relaxed);
        refused > 0 && bytes + refused > self.shared.max_bytes
    }

    /// Whether the drain should drop the records it cannot deliver: the
    /// spool is past its limit under [`WhenFull::DropOldest`].
    pub fn must_drop_oldest(&self) -> bool {
        self.shared.when_full == WhenFull::DropOldest
            && self.shared.metrics.spool.bytes.load(Ordering::Relaxed) > self.shared.max_bytes
    }

    /// Changes whenever more records are committed.
    pub fn committed(&self) -> watch::Receiver<Position> {
        self.shared.committed.subscribe()
    }

    /// Records up to `end` are stored (or dead-lettered): forget them.
    /// `records` and `bytes` are what the reader returned for them.
    pub fn ack(&self, end: Position, records: u64, bytes: u64) -> std::io::Result<()> {
        let m = &self.shared.metrics.spool;
        m.records.fetch_sub(records, Ordering::Relaxed);
        m.bytes.fetch_sub(bytes, Ordering::Relaxed);
        let previous = *self.shared.acked.borrow();
        write_ack(&self.shared.dir, end)?;
        for id in previous.segment..end.segment {
            match std::fs::remove_file(segment::path(&self.shared.dir, id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if end >= *self.shared.committed.borrow() {
            m.oldest_unsent_ns.store(0, Ordering::Relaxed);
        }
        self.shared.acked.send_replace(end);
        Ok(())
    }

    /// Waits until everything committed when called has been acknowledged.
    pub async fn drained(&self) {
        let target = *self.shared.committed.borrow();
        let mut acked = self.shared.acked.subscribe();
        let _ = acked.wait_for(|at| *at >= target).await;
    }
}

struct Committer {
    shared: Arc<Shared>,
    segment: u64,
    file: File,
    len: u64,
    segment_bytes: u64,
    /// A failed write could not be cleaned up: roll before writing again.
    must_roll: bool,
}

/// Bytes the committer gathers into one write at most.
const GROUP_BYTES: usize = 32 << 20;

impl Committer {
    fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            let mut size = group[0].framed.len();
            while size < GROUP_BYTES {
                match rx.try_recv() {
                    Ok(p) => {
                        size += p.framed.len();
                        group.push(p);
                    }
                    Err(_) => break,
                }
            }
            let result = self.commit(&group, size);
            let m = &self.shared.metrics.spool;
            match &result {
                Ok(()) => {
                    m.records.fetch_add(group.len() as u64, Ordering::Relaxed);
                    m.commits.fetch_add(1, Ordering::Relaxed);
                    self.shared.committed.send_replace(Position {
                        segment: self.segment,
                        offset: self.len,
                    });
                }
                Err(e) => {
                    m.bytes.fetch_sub(size as u64, Ordering::Relaxed);
                    tracing::error!(error = %e, dir = %self.shared.dir.display(), "writing the spool failed; the requests are refused");
                }
            }
            let answer = result.map_err(|e| SpoolError::Io(e.to_string()));
            for p in group {
                let _ = p.done.send(answer.clone());
            }
        }
    }

    fn commit(&mut self, group: &[Pending], size: usize) -> std::io::Result<()> {
        if self.must_roll || (self.len > 0 && self.len + size as u64 > self.segment_bytes) {
            self.roll()?;
            self.must_roll = false;
        }
        let mut buf = Vec::with_capacity(size);
        for p in group {
            buf.extend_from_slice(&p.framed);
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Cut whatever part of the group reached the file, so no record
            // the clients were refused lies before later committed ones,
            // then continue in a fresh segment. Should either step fail,
            // the next commit rolls first and writes nothing until it can.
            let cut = self.file.set_len(self.len);
            if cut.is_err() || self.roll().is_err() {
                self.must_roll = true;
            }
            return Err(e);
        }
        self.len += size as u64;
        Ok(())
    }

    fn roll(&mut self) -> std::io::Result<()> {
        let next = self.segment + 1;
        self.file = create_segment(&self.shared.dir, next)?;
        self.segment = next;
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;

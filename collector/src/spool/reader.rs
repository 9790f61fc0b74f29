//! Reading the spool back: `SpoolReader`, the writer's one reader of
//! committed records in order, and the `Read` and `Record`s it returns.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use domain::model::Batch;

use super::{codec, segment, Position, Shared};

/// One record read back: when it was appended, and its batch.
#[derive(Debug)]
pub struct Record {
    pub append_ns: u64,
    pub batch: Batch,
    /// Its framed size, as counted against the limit.
    pub bytes: u64,
}

/// What one [`SpoolReader::read`] returned.
#[derive(Debug, Default)]
pub struct Read {
    pub records: Vec<Record>,
    /// Records whose checksum held but that could not be decoded (written by
    /// another build): their framed size and why. They count as read.
    pub undecodable: Vec<(u64, String)>,
    /// Where the reader stands now; acknowledge up to here once stored.
    pub end: Position,
    /// Whether `end` moved (also when only empty segments were passed).
    pub moved: bool,
}

impl Read {
    pub fn bytes(&self) -> u64 {
        self.records.iter().map(|r| r.bytes).sum::<u64>()
            + self.undecodable.iter().map(|u| u.0).sum::<u64>()
    }

    pub fn count(&self) -> u64 {
        (self.records.len() + self.undecodable.len()) as u64
    }

    /// What counts toward [`SpoolReader::read`]'s maximum: the records in
    /// the batches read (at least one a batch), and each undecodable one.
    pub fn held(&self) -> usize {
        self.records
            .iter()
            .map(|r| r.batch.len().max(1))
            .sum::<usize>()
            + self.undecodable.len()
    }
}

/// The writer's reader: committed records in order, from the last
/// acknowledged position. There is one per spool.
pub struct SpoolReader {
    pub(super) shared: Arc<Shared>,
    pub(super) reader: Option<segment::Reader>,
    pub(super) at: Position,
    pub(super) _lock: Arc<File>,
}

impl SpoolReader {
    /// Where the next record is read from.
    pub fn position(&self) -> Position {
        self.at
    }

    /// Reads committed records until their batches hold `max_records`
    /// records (at least one spool record when any is there). Blocking.
    pub fn read(&mut self, max_records: usize) -> std::io::Result<Read> {
        let start = self.at;
        let result = self.read_from_position(max_records);
        if result.is_err() {
            // The records gathered so far are dropped with the error: read
            // them again next time, never skip them.
            self.at = start;
            self.reader = None;
        }
        result
    }

    fn read_from_position(&mut self, max_records: usize) -> std::io::Result<Read> {
        let committed = *self.shared.committed.borrow();
        let start = self.at;
        let mut out = Read::default();
        let mut held = 0usize;
        while held < max_records && self.at < committed {
            let reader = match &mut self.reader {
                Some(r) if r.id() == self.at.segment => r,
                slot => {
                    match segment::Reader::open(&self.shared.dir, self.at.segment, self.at.offset) {
                        Ok(r) => slot.insert(r),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            // A segment that never got a file (a failed roll).
                            self.next_segment(committed)?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let limit = if self.at.segment == committed.segment {
                committed.offset
            } else {
                u64::MAX
            };
            match reader.next(limit)? {
                segment::Next::Record(payload) => {
                    let bytes = (segment::HEADER + payload.len()) as u64;
                    self.at.offset = reader.offset();
                    match codec::decode(&payload) {
                        Ok((append_ns, batch)) => {
                            held += batch.len().max(1);
                            out.records.push(Record {
                                append_ns,
                                batch,
                                bytes,
                            });
                        }
                        Err(e) => {
                            held += 1;
                            out.undecodable.push((bytes, e.to_string()));
                        }
                    }
                }
                segment::Next::End if self.at.segment < committed.segment => {
                    self.next_segment(committed)?;
                }
                segment::Next::End => break,
                segment::Next::Broken(reason) => {
                    // Committed data is whole unless the disk damaged it;
                    // after a failed write, the rest of that segment.
                    tracing::error!(
                        segment = %segment::path(&self.shared.dir, self.at.segment).display(),
                        offset = self.at.offset,
                        "spool record cannot be read ({reason}); skipping to the next segment"
                    );
                    if self.at.segment < committed.segment {
                        self.next_segment(committed)?;
                    } else {
                        self.at = committed;
                        self.reader = None;
                    }
                }
            }
        }
        if let Some(first) = out.records.first() {
            self.shared
                .metrics
                .spool
                .oldest_unsent_ns
                .store(first.append_ns, Ordering::Relaxed);
        }
        out.end = self.at;
        out.moved = self.at != start;
        Ok(out)
    }

    /// Moves to the next segment file. A listing that fails is an error,
    /// never "no segment in between" (that would skip segments).
    fn next_segment(&mut self, committed: Position) -> std::io::Result<()> {
        let next = segment::list(&self.shared.dir)?
            .into_iter()
            .find(|id| *id > self.at.segment)
            .unwrap_or(committed.segment)
            .min(committed.segment);
        self.at = Position {
            segment: next,
            offset: 0,
        };
        self.reader = None;
        Ok(())
    }
}

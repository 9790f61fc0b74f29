//! Dead letters: records ClickHouse refused as data. Each is appended to
//! `dead-letters.jsonl` in the spool directory, one JSON object per line with
//! the time, the table's record kind, its identity, the reason and the record
//! itself, so an operator can see what was refused and why, fix and resend
//! it. They are never retried: a row that is wrong stays wrong.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use domain::model::Batch;

/// The file's name in the spool directory.
pub const FILE_NAME: &str = "dead-letters.jsonl";

/// An open dead-letter file.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Mutex<File>,
}

impl DeadLetters {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes a spool record that could not be decoded (its bytes stay
    /// unreadable to this build; only the reason is kept).
    pub fn write_undecodable(&self, bytes: u64, reason: &str) -> std::io::Result<()> {
        let line = serde_json::json!({
            "time_ns": domain::now_ns(),
            "kind": "spool_record",
            "id": format!("{bytes} bytes"),
            "reason": reason,
            "record": "",
        });
        let mut file = self.file.lock().expect("dead-letter lock");
        writeln!(file, "{line}")?;
        file.sync_data()
    }

    /// Writes every record of `batch` with `reason`; how many it wrote.
    pub fn write(&self, batch: &Batch, reason: &str) -> std::io::Result<usize> {
        let time_ns = domain::now_ns();
        let mut lines = String::new();
        let mut line = |kind: &str, id: String, record: String| {
            lines.push_str(
                &serde_json::json!({
                    "time_ns": time_ns,
                    "kind": kind,
                    "id": id,
                    "reason": reason,
                    "record": record,
                })
                .to_string(),
            );
            lines.push('\n');
        };
        for s in &batch.spans {
            line(
                "span",
                format!("{}/{}", s.trace_id, s.span_id),
                format!("{s:?}"),
            );
        }
        for l in &batch.logs {
            line(
                "log",
                format!("{}/{}", l.service, l.record_id),
                format!("{l:?}"),
            );
        }
        for e in &batch.events {
            line("event", format!("{}/{}", e.source, e.id), format!("{e:?}"));
        }
        let mut file = self.file.lock().expect("dead-letter lock");
        file.write_all(lines.as_bytes())?;
        file.sync_data()?;
        Ok(batch.len())
    }
}

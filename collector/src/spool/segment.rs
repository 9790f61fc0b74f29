//! One spool segment: an append-only file of records framed as
//! `[len u32 LE][crc32 u32 LE][payload]`, the CRC taken over the payload.
//!
//! A record is whole only if its header is whole, its payload is `len` bytes
//! and the CRC matches. Anything else at the end of a file is a torn write (a
//! power cut mid-append, never acknowledged); anything else in the middle is
//! damage. Either way the records before it are good and reading stops there.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes of framing in front of each payload.
pub const HEADER: usize = 8;

/// A length beyond this is damage, not a record (requests are limited to far
/// less; this only stops a garbage length from asking for gigabytes).
pub const MAX_RECORD: usize = 1 << 30;

/// Appends one framed record to `out`.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// `segment-0000000000000042.spool`: ids sort as text and as numbers alike.
pub fn file_name(id: u64) -> String {
    format!("segment-{id:016}.spool")
}

pub fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(file_name(id))
}

/// The id of a segment file's name, `None` for other files.
pub fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("segment-")?
        .strip_suffix(".spool")?
        .parse()
        .ok()
}

/// The ids of the segments in `dir`, ascending.
pub fn list(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// What reading the next record found.
#[derive(Debug)]
pub enum Next {
    /// A whole record; the reader now stands at its end.
    Record(Vec<u8>),
    /// Nothing more up to the limit (or the end of the file).
    End,
    /// A record that is not whole, at the reader's offset (which stays there).
    Broken(String),
}

/// Reads one segment's records in order from a given offset.
pub struct Reader {
    file: BufReader<File>,
    id: u64,
    offset: u64,
}

impl Reader {
    pub fn open(dir: &Path, id: u64, offset: u64) -> std::io::Result<Self> {
        let mut file = File::open(path(dir, id))?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            file: BufReader::with_capacity(1 << 20, file),
            id,
            offset,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where the next record begins.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, reading no byte at or beyond `limit`.
    pub fn next(&mut self, limit: u64) -> std::io::Result<Next> {
        if self.offset >= limit {
            return Ok(Next::End);
        }
        let mut header = [0u8; HEADER];
        let got = read_full(&mut self.file, &mut header)?;
        if got == 0 {
            return Ok(Next::End);
        }
        let at = self.offset;
        if got < HEADER {
            self.seek_back()?;
            return Ok(Next::Broken(format!(
                "a record header at offset {at} has {got} of {HEADER} bytes"
            )));
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        // A record never claims more than the file holds (a damaged length
        // must not allocate a gigabyte), and never zero bytes: a zeroed tail
        // (a power cut on some file systems) reads as len 0 with crc 0,
        // which is the checksum of nothing.
        let holds = limit.min(self.file.get_ref().metadata()?.len());
        if len == 0 || len > MAX_RECORD || at + (HEADER + len) as u64 > holds {
            self.seek_back()?;
            return Ok(Next::Broken(format!(
                "the record at offset {at} claims {len} bytes, more than the segment holds"
            )));
        }
        let mut payload = vec![0u8; len];
        let got = read_full(&mut self.file, &mut payload)?;
        if got < len {
            self.seek_back()?;
            return Ok(Next::Broken(format!(
                "the record at offset {at} has {got} of its {len} bytes"
            )));
        }
        if crc32fast::hash(&payload) != crc {
            self.seek_back()?;
            return Ok(Next::Broken(format!(
                "the record at offset {at} ({len} bytes) fails its checksum"
            )));
        }
        self.offset = at + (HEADER + len) as u64;
        Ok(Next::Record(payload))
    }

    fn seek_back(&mut self) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(self.offset))?;
        Ok(())
    }
}

/// Reads until `buf` is full or the file ends; how many bytes it got.
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// What [`check`] found in a segment written by an earlier run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Whole records from the start offset on, and their framed bytes.
    pub records: u64,
    pub bytes: u64,
    /// Where the whole records end.
    pub valid_len: u64,
    /// What was wrong after them, if anything.
    pub broken: Option<String>,
}

/// Reads a segment from `offset` to its end, counting whole records; cuts the
/// file after the last whole record when something broken follows it, so that
/// nothing ever reads the broken part again.
pub fn check(dir: &Path, id: u64, offset: u64) -> std::io::Result<Checked> {
    let mut reader = Reader::open(dir, id, offset)?;
    let mut checked = Checked::default();
    loop {
        match reader.next(u64::MAX)? {
            Next::Record(payload) => {
                checked.records += 1;
                checked.bytes += (HEADER + payload.len()) as u64;
            }
            Next::End => break,
            Next::Broken(reason) => {
                checked.broken = Some(reason);
                break;
            }
        }
    }
    checked.valid_len = reader.offset();
    if checked.broken.is_some() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path(dir, id))?;
        file.set_len(checked.valid_len)?;
        file.sync_all()?;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_segment(dir: &Path, id: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for p in payloads {
            frame(p, &mut bytes);
        }
        std::fs::write(path(dir, id), &bytes).unwrap();
        bytes
    }

    fn read_all(dir: &Path, id: u64) -> Vec<Vec<u8>> {
        let mut reader = Reader::open(dir, id, 0).unwrap();
        let mut out = Vec::new();
        while let Next::Record(p) = reader.next(u64::MAX).unwrap() {
            out.push(p);
        }
        out
    }

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert_eq!(parse_name("ack"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn a_torn_last_record_is_cut_and_the_records_before_it_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_segment(dir.path(), 1, &[b"one", b"two", b"three"]);
        // Every cut inside the last record: header or payload.
        let last_start = (HEADER + 3) * 2;
        for cut in last_start + 1..bytes.len() {
            std::fs::write(path(dir.path(), 1), &bytes[..cut]).unwrap();
            let checked = check(dir.path(), 1, 0).unwrap();
            assert_eq!(checked.records, 2, "cut at {cut}");
            assert_eq!(checked.valid_len, last_start as u64);
            assert!(checked.broken.is_some());
            assert_eq!(
                read_all(dir.path(), 1),
                vec![b"one".to_vec(), b"two".to_vec()]
            );
        }
    }

    #[test]
    fn a_damaged_record_stops_reading_at_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write_segment(dir.path(), 1, &[b"one", b"two", b"three"]);
        bytes[HEADER + 3 + HEADER] ^= 0xff; // first payload byte of "two"
        std::fs::write(path(dir.path(), 1), &bytes).unwrap();
        let checked = check(dir.path(), 1, 0).unwrap();
        assert_eq!(checked.records, 1);
        assert!(checked.broken.unwrap().contains("checksum"));
        assert_eq!(read_all(dir.path(), 1), vec![b"one".to_vec()]);
    }

    #[test]
    fn a_zeroed_tail_is_torn_not_empty_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write_segment(dir.path(), 1, &[b"one"]);
        bytes.extend_from_slice(&[0u8; 64]);
        std::fs::write(path(dir.path(), 1), &bytes).unwrap();
        let checked = check(dir.path(), 1, 0).unwrap();
        assert_eq!(checked.records, 1);
        assert_eq!(checked.valid_len, (HEADER + 3) as u64);
        assert_eq!(read_all(dir.path(), 1), vec![b"one".to_vec()]);
    }

    #[test]
    fn a_damaged_length_claims_no_more_than_the_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write_segment(dir.path(), 1, &[b"one", b"two"]);
        // The second record's length now says 500 MB.
        let at = HEADER + 3;
        bytes[at..at + 4].copy_from_slice(&500_000_000u32.to_le_bytes());
        std::fs::write(path(dir.path(), 1), &bytes).unwrap();
        let mut reader = Reader::open(dir.path(), 1, 0).unwrap();
        assert!(matches!(reader.next(u64::MAX).unwrap(), Next::Record(_)));
        match reader.next(u64::MAX).unwrap() {
            Next::Broken(reason) => {
                assert!(reason.contains("more than the segment holds"), "{reason}")
            }
            _ => panic!("a damaged length is a broken record"),
        }
    }

    #[test]
    fn reading_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 3, &[b"a", b"b"]);
        let mut reader = Reader::open(dir.path(), 3, 0).unwrap();
        let first_end = (HEADER + 1) as u64;
        assert!(matches!(reader.next(first_end).unwrap(), Next::Record(_)));
        assert!(matches!(reader.next(first_end).unwrap(), Next::End));
        assert!(matches!(reader.next(u64::MAX).unwrap(), Next::Record(_)));
        assert!(matches!(reader.next(u64::MAX).unwrap(), Next::End));
    }
}

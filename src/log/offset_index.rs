//! The sparse offset index of one segment (`{base_offset:020}.index`).
//!
//! File layout: a sequence of 8-byte entries, each
//!
//! ```text
//! offset  size  field
//!      0     4  relative_offset   batch base offset − segment base offset (u32, big-endian)
//!      4     4  position          byte position of that batch in the .log file (u32)
//! ```
//!
//! One entry is written every `log.index.interval.bytes` of log data, so a lookup
//! lands at most that many bytes before the batch it seeks. Entries are strictly
//! increasing in both fields; the whole index is also kept in memory for lookups.

use std::io;
use std::path::Path;

use super::index_file::IndexFile;

const ENTRY_SIZE: usize = 8;

#[derive(Debug)]
pub struct OffsetIndex {
    file: IndexFile<ENTRY_SIZE>,
    base_offset: i64,
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Open (or create) the index at `path`. Entries that are not strictly increasing
    /// or point past `log_size` mean the file is corrupt: `Ok(None)`, rebuild it.
    pub fn open(path: &Path, base_offset: i64, log_size: u64) -> io::Result<Option<OffsetIndex>> {
        let Some((file, raw)) = IndexFile::open(path)? else {
            return Ok(None);
        };
        let entries: Vec<(u32, u32)> = raw
            .iter()
            .map(|e| {
                (
                    u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                    u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
                )
            })
            .collect();
        let ordered = entries.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let in_bounds = entries.last().is_none_or(|e| (e.1 as u64) < log_size);
        if !ordered || !in_bounds {
            return Ok(None);
        }
        Ok(Some(OffsetIndex {
            file,
            base_offset,
            entries,
        }))
    }

    /// Start an empty index at `path`, replacing whatever was there.
    pub fn create(path: &Path, base_offset: i64) -> io::Result<OffsetIndex> {
        let file = IndexFile::create(path)?;
        Ok(OffsetIndex {
            file,
            base_offset,
            entries: Vec::new(),
        })
    }

    /// Record that the batch starting at `offset` sits at `position`.
    pub fn append(&mut self, offset: i64, position: u32) {
        let rel = (offset - self.base_offset) as u32;
        if self.entries.last().is_some_and(|e| e.0 >= rel || e.1 >= position) {
            return;
        }
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.file.append(&e);
        self.entries.push((rel, position));
    }

    /// The greatest indexed (offset, position) at or below `offset`, or the segment
    /// start when no entry is that low.
    pub fn lookup(&self, offset: i64) -> (i64, u32) {
        let rel = offset - self.base_offset;
        let i = self.entries.partition_point(|e| (e.0 as i64) <= rel);
        if i == 0 {
            (self.base_offset, 0)
        } else {
            let (r, p) = self.entries[i - 1];
            (self.base_offset + r as i64, p)
        }
    }

    /// The greatest indexed position at or below `position`, or 0: always where a
    /// batch starts.
    pub fn floor_position(&self, position: u64) -> u64 {
        let i = self.entries.partition_point(|e| e.1 as u64 <= position);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].1 as u64
        }
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().map(|&(r, p)| (self.base_offset + r as i64, p))
    }

    /// The file, for fsyncs.
    pub fn file(&self) -> &IndexFile<ENTRY_SIZE> {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::create(&path, 100).unwrap();
        assert_eq!(idx.lookup(150), (100, 0));
        idx.append(110, 4096);
        idx.append(130, 8200);
        assert_eq!(idx.lookup(105), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4096));
        assert_eq!(idx.lookup(129), (110, 4096));
        assert_eq!(idx.lookup(1000), (130, 8200));

        let reopened = OffsetIndex::open(&path, 100, 9000).unwrap().unwrap();
        assert_eq!(reopened.lookup(129), (110, 4096));
        assert_eq!(reopened.last(), Some((130, 8200)));
    }

    #[test]
    fn corrupt_index_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::create(&path, 0).unwrap();
        idx.append(10, 5000);
        drop(idx);
        // Points past the end of a shorter log.
        assert!(OffsetIndex::open(&path, 0, 4000).unwrap().is_none());
        // A torn entry.
        std::fs::write(&path, [0u8; 5]).unwrap();
        assert!(OffsetIndex::open(&path, 0, 4000).unwrap().is_none());
        // Out of order entries.
        std::fs::write(&path, [0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0, 10]).unwrap();
        assert!(OffsetIndex::open(&path, 0, 4000).unwrap().is_none());
    }
}

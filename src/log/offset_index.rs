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

use super::index_file::{IndexEntry, IndexFile};
use crate::record::reader::ByteReader;

/// (relative offset, position): the layout above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    relative_offset: u32,
    position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = ByteReader::new(bytes);
        Some(OffsetEntry {
            relative_offset: r.u32()?,
            position: r.u32()?,
        })
    }
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
}

#[derive(Debug)]
pub struct OffsetIndex {
    file: IndexFile<OffsetEntry>,
    base_offset: i64,
}

impl OffsetIndex {
    /// The index at `path`, unless it must be rebuilt: missing, torn, out of
    /// order, or pointing past the end of a log of `log_size` bytes.
    pub fn open(path: &Path, base_offset: i64, log_size: u64) -> io::Result<Option<OffsetIndex>> {
        let in_order =
            |a: &OffsetEntry, b: &OffsetEntry| a.relative_offset < b.relative_offset && a.position < b.position;
        let Some(file) = IndexFile::open(path, in_order)? else {
            return Ok(None);
        };
        if file.last().is_some_and(|e| e.position as u64 >= log_size) {
            return Ok(None);
        }
        Ok(Some(OffsetIndex { file, base_offset }))
    }

    pub fn create(path: &Path, base_offset: i64) -> io::Result<OffsetIndex> {
        Ok(OffsetIndex {
            file: IndexFile::create(path)?,
            base_offset,
        })
    }

    /// Index the batch at `position` starting at `offset`, if both grew.
    pub fn append(&mut self, offset: i64, position: u32) {
        let relative_offset = (offset - self.base_offset) as u32;
        if self
            .file
            .last()
            .is_some_and(|e| e.relative_offset >= relative_offset || e.position >= position)
        {
            return;
        }
        self.file.append(OffsetEntry {
            relative_offset,
            position,
        });
    }

    /// The greatest indexed (offset, position) at or below `offset`: where a scan
    /// for it may start.
    pub fn lookup(&self, offset: i64) -> (i64, u32) {
        let rel = offset - self.base_offset;
        let entries = self.file.entries();
        let i = entries.partition_point(|e| (e.relative_offset as i64) <= rel);
        match i.checked_sub(1).map(|i| entries[i]) {
            None => (self.base_offset, 0),
            Some(e) => (self.base_offset + e.relative_offset as i64, e.position),
        }
    }

    /// The greatest indexed batch position at or below `position`.
    pub fn floor_position(&self, position: u64) -> u64 {
        let entries = self.file.entries();
        let i = entries.partition_point(|e| e.position as u64 <= position);
        i.checked_sub(1).map_or(0, |i| entries[i].position as u64)
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.file
            .last()
            .map(|e| (self.base_offset + e.relative_offset as i64, e.position))
    }

    pub fn file(&self) -> &IndexFile<OffsetEntry> {
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

//! The sparse time index of one segment (`{base_offset:020}.timeindex`).
//!
//! File layout: a sequence of 12-byte entries, each
//!
//! ```text
//! offset  size  field
//!      0     8  timestamp         greatest batch max_timestamp seen so far (i64, big-endian)
//!      8     4  relative_offset   base offset of the batch that first reached it,
//!                                 minus the segment base offset (u32)
//! ```
//!
//! Entries are written alongside offset-index entries, and only when the timestamp
//! grew, so both columns increase. Because an entry names the first batch to reach
//! its timestamp, every batch before that offset has a smaller max timestamp: a
//! search for "the first record at or after T" may start at the floor entry of T.
//! When a segment is sealed (or the broker shuts down cleanly) a last entry with the
//! segment's maximum is written, so the segment's max timestamp survives restarts.

use std::io;
use std::path::Path;

use super::index_file::{IndexEntry, IndexFile};
use crate::record::reader::ByteReader;

/// (timestamp, relative offset): the layout above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    timestamp: i64,
    relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = ByteReader::new(bytes);
        Some(TimeEntry {
            timestamp: r.i64()?,
            relative_offset: r.u32()?,
        })
    }
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
}

#[derive(Debug)]
pub struct TimeIndex {
    file: IndexFile<TimeEntry>,
    base_offset: i64,
}

impl TimeIndex {
    /// The index at `path`, unless it must be rebuilt (missing, torn, out of order).
    pub fn open(path: &Path, base_offset: i64) -> io::Result<Option<TimeIndex>> {
        let in_order =
            |a: &TimeEntry, b: &TimeEntry| a.timestamp < b.timestamp && a.relative_offset <= b.relative_offset;
        Ok(IndexFile::open(path, in_order)?.map(|file| TimeIndex { file, base_offset }))
    }

    pub fn create(path: &Path, base_offset: i64) -> io::Result<TimeIndex> {
        Ok(TimeIndex {
            file: IndexFile::create(path)?,
            base_offset,
        })
    }

    /// Index `timestamp` as first reached by the batch at `offset`, if it grew.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self.file.last().is_some_and(|e| e.timestamp >= timestamp) {
            return;
        }
        self.file.append(TimeEntry {
            timestamp,
            relative_offset: (offset - self.base_offset) as u32,
        });
    }

    /// The offset of the first batch that may hold a record at or after `timestamp`.
    pub fn lookup(&self, timestamp: i64) -> i64 {
        let entries = self.file.entries();
        let i = entries.partition_point(|e| e.timestamp <= timestamp);
        self.base_offset + i.checked_sub(1).map_or(0, |i| entries[i].relative_offset as i64)
    }

    pub fn last(&self) -> Option<(i64, i64)> {
        self.file
            .last()
            .map(|e| (e.timestamp, self.base_offset + e.relative_offset as i64))
    }

    /// The file, for fsyncs.
    pub fn file(&self) -> &IndexFile<TimeEntry> {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growing_timestamps_are_kept_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut idx = TimeIndex::create(&path, 50).unwrap();
        idx.maybe_append(1000, 50);
        idx.maybe_append(900, 55); // older: ignored
        idx.maybe_append(2000, 60);
        assert_eq!(idx.lookup(500), 50);
        assert_eq!(idx.lookup(1500), 50);
        assert_eq!(idx.lookup(2000), 60);
        let reopened = TimeIndex::open(&path, 50).unwrap().unwrap();
        assert_eq!(reopened.last(), Some((2000, 60)));
        std::fs::write(&path, [1u8; 13]).unwrap();
        assert!(TimeIndex::open(&path, 50).unwrap().is_none());
    }
}

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

use super::index_file::IndexFile;

const ENTRY_SIZE: usize = 12;

#[derive(Debug)]
pub struct TimeIndex {
    file: IndexFile<ENTRY_SIZE>,
    base_offset: i64,
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Open (or create) the index; `Ok(None)` if it is torn or out of order.
    pub fn open(path: &Path, base_offset: i64) -> io::Result<Option<TimeIndex>> {
        let Some((file, raw)) = IndexFile::open(path)? else {
            return Ok(None);
        };
        let entries: Vec<(i64, u32)> = raw
            .iter()
            .map(|e| {
                (
                    i64::from_be_bytes(e[..8].try_into().expect("8 bytes")),
                    u32::from_be_bytes(e[8..].try_into().expect("4 bytes")),
                )
            })
            .collect();
        if !entries.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1) {
            return Ok(None);
        }
        Ok(Some(TimeIndex {
            file,
            base_offset,
            entries,
        }))
    }

    pub fn create(path: &Path, base_offset: i64) -> io::Result<TimeIndex> {
        let file = IndexFile::create(path)?;
        Ok(TimeIndex {
            file,
            base_offset,
            entries: Vec::new(),
        })
    }

    /// Append (timestamp, offset) if the timestamp is greater than the last entry's.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self.entries.last().is_some_and(|e| e.0 >= timestamp) {
            return;
        }
        let rel = (offset - self.base_offset) as u32;
        let mut e = [0u8; 12];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.append(&e);
        self.entries.push((timestamp, rel));
    }

    /// The offset to start searching from for the first record with a timestamp at
    /// or after `timestamp`.
    pub fn lookup(&self, timestamp: i64) -> i64 {
        let i = self.entries.partition_point(|e| e.0 <= timestamp);
        if i == 0 {
            self.base_offset
        } else {
            self.base_offset + self.entries[i - 1].1 as i64
        }
    }

    /// The last entry: (max timestamp, offset of the batch that reached it).
    pub fn last(&self) -> Option<(i64, i64)> {
        self.entries.last().map(|&(t, r)| (t, self.base_offset + r as i64))
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

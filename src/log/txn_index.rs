//! The aborted-transaction index of one segment (`{base_offset:020}.txnindex`,
//! Kafka's TransactionIndex): one entry per aborted transaction whose ABORT marker
//! is in the segment, so that a read_committed fetch finds the aborted ranges it
//! covers without reading the log. Made when the segment's first abort comes.
//!
//! File layout: 34-byte entries (Kafka's AbortedTxn, version 0), big-endian:
//!
//! ```text
//! offset  size  field
//!      0     2  version             0
//!      2     8  producer_id
//!     10     8  first_offset        the transaction's first batch
//!     18     8  last_offset         its ABORT marker
//!     26     8  last_stable_offset  the partition's LSO once the marker was written
//! ```

use std::io;
use std::path::{Path, PathBuf};

use super::index_file::{IndexEntry, IndexFile};
use crate::record::reader::ByteReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl IndexEntry for AbortedTxn {
    const SIZE: usize = 34;
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = ByteReader::new(bytes);
        if r.i16()? != 0 {
            return None;
        }
        Some(AbortedTxn {
            producer_id: r.i64()?,
            first_offset: r.i64()?,
            last_offset: r.i64()?,
            last_stable_offset: r.i64()?,
        })
    }
    fn encode(&self, out: &mut [u8]) {
        out[..2].copy_from_slice(&0i16.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
    }
}

#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    /// None until the segment's first aborted transaction.
    file: Option<IndexFile<AbortedTxn>>,
}

impl TxnIndex {
    /// The index at `path`, empty when there is none (or it does not read: the
    /// entries are then lost, and read_committed consumers would see those
    /// aborted records, so it is said loudly).
    pub fn open(path: &Path) -> io::Result<TxnIndex> {
        let in_order = |a: &AbortedTxn, b: &AbortedTxn| a.last_offset < b.last_offset;
        let file = IndexFile::open(path, in_order)?;
        if file.is_none() && path.exists() {
            tracing::error!(index = %path.display(), "aborted-transaction index unreadable; starting it anew");
        }
        Ok(TxnIndex {
            path: path.to_path_buf(),
            file,
        })
    }

    /// An empty index for a new segment (no file until the first entry).
    pub fn empty(path: &Path) -> TxnIndex {
        TxnIndex {
            path: path.to_path_buf(),
            file: None,
        }
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        self.file.as_ref().map_or(&[], |f| f.entries())
    }

    pub fn append(&mut self, entry: AbortedTxn) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(IndexFile::create(&self.path)?);
        }
        if let Some(f) = &mut self.file {
            f.append(entry);
        }
        Ok(())
    }

    /// Start again empty (recovery rebuilds the entries from the markers).
    pub fn clear(&mut self) -> io::Result<()> {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.as_ref().map_or(Ok(()), |f| f.sync())
    }

    /// A handle for fsyncs elsewhere; None while there is no file.
    pub fn try_clone_file(&self) -> io::Result<Option<std::fs::File>> {
        self.file.as_ref().map_or(Ok(None), |f| f.try_clone_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_made_lazily_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.txnindex");
        let mut t = TxnIndex::open(&path).unwrap();
        assert!(t.entries().is_empty() && !path.exists());
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 3,
            last_offset: 9,
            last_stable_offset: 10,
        };
        t.append(a).unwrap();
        t.append(AbortedTxn { last_offset: 12, ..a }).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 68);
        let back = TxnIndex::open(&path).unwrap();
        assert_eq!(back.entries(), &[a, AbortedTxn { last_offset: 12, ..a }]);
        t.clear().unwrap();
        assert!(!path.exists() && t.entries().is_empty());
    }
}

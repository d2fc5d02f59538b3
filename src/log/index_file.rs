//! The file under both indexes: fixed-size entries appended in order, kept in
//! memory too (an index is small: one entry per `index.interval.bytes` of log).
//!
//! An index is a cache of what the `.log` file says, so losing it never loses data:
//! when a write to it fails (a full disk), the file is removed and the index lives
//! on in memory; the next open finds no file and rebuilds it from the log.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One entry of an index, as it is laid out in its file.
pub trait IndexEntry: Copy + std::fmt::Debug {
    /// Bytes per entry in the file.
    const SIZE: usize;
    /// The entry at the start of `bytes` (which holds at least `SIZE`).
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// Write the entry into `out` (exactly `SIZE` bytes).
    fn encode(&self, out: &mut [u8]);
}

/// Most bytes an entry may take ([`IndexEntry::SIZE`]).
const MAX_ENTRY: usize = 34;

#[derive(Debug)]
pub struct IndexFile<E> {
    path: PathBuf,
    /// None once a write failed and the file was given up (see the module comment).
    file: Option<File>,
    entries: Vec<E>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Open the file and read its entries; `Ok(None)` when there is no file (it
    /// must be rebuilt), its size is not a whole number of entries (a torn write),
    /// or its entries are not `in_order` (damage).
    pub fn open(path: &Path, in_order: impl Fn(&E, &E) -> bool) -> io::Result<Option<IndexFile<E>>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len % E::SIZE as u64 != 0 {
            return Ok(None);
        }
        let mut raw = vec![0u8; len as usize];
        file.read_exact_at(&mut raw, 0)?;
        let entries: Option<Vec<E>> = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        let Some(entries) = entries.filter(|e| e.windows(2).all(|w| in_order(&w[0], &w[1]))) else {
            return Ok(None);
        };
        Ok(Some(IndexFile {
            path: path.to_path_buf(),
            file: Some(file),
            entries,
        }))
    }

    /// Start an empty file at `path`, replacing whatever was there.
    pub fn create(path: &Path) -> io::Result<IndexFile<E>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            file: Some(file),
            entries: Vec::new(),
        })
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    /// Append an entry. A failed write gives the file up (it is removed, to be
    /// rebuilt at the next open) rather than failing the append of the batch it
    /// indexes: the entry is kept in memory either way.
    pub fn append(&mut self, entry: E) {
        let at = self.entries.len() as u64 * E::SIZE as u64;
        self.entries.push(entry);
        let Some(file) = &self.file else { return };
        let mut raw = [0u8; MAX_ENTRY];
        entry.encode(&mut raw[..E::SIZE]);
        if let Err(e) = file.write_all_at(&raw[..E::SIZE], at) {
            tracing::warn!(
                index = %self.path.display(),
                error = %e,
                "index write failed; the index is kept in memory and rebuilt at the next start"
            );
            self.file = None;
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::error!(index = %self.path.display(), error = %e, "could not remove a damaged index file");
            }
        }
    }

    pub fn sync(&self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// A handle for fsyncs elsewhere; None when the file was given up.
    pub fn try_clone_file(&self) -> io::Result<Option<File>> {
        self.file.as_ref().map(File::try_clone).transpose()
    }
}

//! The file under both indexes: fixed-size entries appended in order.
//!
//! An index is a cache of what the `.log` file says, so losing it never loses data:
//! when a write to it fails (a full disk), the file is removed and the index lives
//! on in memory; the next open finds no file and rebuilds it from the log.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct IndexFile<const N: usize> {
    path: PathBuf,
    /// None once a write failed and the file was given up (see the module comment).
    file: Option<File>,
    entries: u64,
}

impl<const N: usize> IndexFile<N> {
    /// Open the file and read its entries; `Ok(None)` when there is no file (it
    /// must be rebuilt) or its size is not a whole number of entries (a torn write).
    pub fn open(path: &Path) -> io::Result<Option<(IndexFile<N>, Vec<[u8; N]>)>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len % N as u64 != 0 {
            return Ok(None);
        }
        let mut raw = vec![0u8; len as usize];
        file.read_exact_at(&mut raw, 0)?;
        let entries: Vec<[u8; N]> = raw.chunks_exact(N).filter_map(|c| c.try_into().ok()).collect();
        let count = entries.len() as u64;
        let index = IndexFile {
            path: path.to_path_buf(),
            file: Some(file),
            entries: count,
        };
        Ok(Some((index, entries)))
    }

    /// Start an empty file at `path`, replacing whatever was there.
    pub fn create(path: &Path) -> io::Result<IndexFile<N>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            file: Some(file),
            entries: 0,
        })
    }

    /// Append an entry to the file. A failed write gives the file up (it is removed,
    /// to be rebuilt at the next open) rather than failing the append of the batch
    /// it indexes: the caller keeps the entry in memory either way.
    pub fn append(&mut self, entry: &[u8; N]) {
        let Some(file) = &self.file else { return };
        if let Err(e) = file.write_all_at(entry, self.entries * N as u64) {
            tracing::warn!(
                index = %self.path.display(),
                error = %e,
                "index write failed; the index is kept in memory and rebuilt at the next start"
            );
            self.file = None;
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::error!(index = %self.path.display(), error = %e, "could not remove a damaged index file");
            }
            return;
        }
        self.entries += 1;
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

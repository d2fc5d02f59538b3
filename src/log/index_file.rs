//! The file under both indexes: fixed-size entries appended in order.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

#[derive(Debug)]
pub struct IndexFile<const N: usize> {
    file: File,
    entries: u64,
}

impl<const N: usize> IndexFile<N> {
    /// Open (or create) the file and read its entries; `Ok(None)` when its size is
    /// not a whole number of entries (a torn write).
    pub fn open(path: &Path) -> io::Result<Option<(IndexFile<N>, Vec<[u8; N]>)>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        if len % N as u64 != 0 {
            return Ok(None);
        }
        let mut raw = vec![0u8; len as usize];
        file.read_exact_at(&mut raw, 0)?;
        let entries: Vec<[u8; N]> = raw
            .chunks_exact(N)
            .map(|c| c.try_into().expect("chunk of N bytes"))
            .collect();
        let count = entries.len() as u64;
        Ok(Some((IndexFile { file, entries: count }, entries)))
    }

    /// Start an empty file at `path`, replacing whatever was there.
    pub fn create(path: &Path) -> io::Result<IndexFile<N>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(IndexFile { file, entries: 0 })
    }

    pub fn append(&mut self, entry: &[u8; N]) -> io::Result<()> {
        self.file.write_all_at(entry, self.entries * N as u64)?;
        self.entries += 1;
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }
}

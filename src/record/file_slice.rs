//! A range of a file holding whole record batches. The log hands these out for
//! fetches; the wire layer sends them from the page cache to the socket
//! (`sendfile`) without the bytes passing through the broker's memory. Both sides
//! share this type, and neither depends on the other for it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// `len` bytes of `file` from `position` on: whole record batches.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

impl FileSlice {
    /// The bytes of the range, read into memory.
    pub fn read(&self) -> io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.len);
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf.freeze())
    }

    /// The byte range of the file this slice covers.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.position..self.position + self.len as u64
    }
}

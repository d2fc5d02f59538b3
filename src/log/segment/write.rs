//! The one write of an append: a batch at the end of the active segment's file,
//! its broker-edited header and the client's records in one `pwritev(2)`.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::record::batch::BATCH_HEADER_LEN;

/// One batch's place at the end of the active segment's file.
#[derive(Debug)]
pub struct SegmentWrite {
    pub(super) file: Arc<File>,
    pub(super) position: u64,
    pub(super) path: PathBuf,
}

impl SegmentWrite {
    /// Write one batch whose base offset has already been assigned, given as its
    /// header (where the broker's edits are) and the records after it, so that the
    /// client's records are written from where they arrived, never copied.
    ///
    /// A failed write leaves the file as it was: whatever part of the batch reached
    /// it is cut off again (shrinking a file needs no free space), so a retry cannot
    /// add a second copy. The error, and whether the cut-off worked.
    pub fn write(&self, head: &[u8; BATCH_HEADER_LEN], rest: &[u8]) -> Result<(), (io::Error, bool)> {
        let written = write_all_at2(&self.file, head, rest, self.position);
        let Err(e) = written else {
            return Ok(());
        };
        let truncated = self.file.set_len(self.position);
        let (segment, position) = (self.path.display(), self.position);
        tracing::error!(%segment, position, error = %e, "append failed; its partial write was cut off");
        if let Err(t) = &truncated {
            tracing::error!(%segment, error = %t, "could not truncate a failed append; retrying at the next one");
        }
        Err((e, truncated.is_ok()))
    }
}

/// Write `head` then `rest` at `position` with `pwritev(2)`: one system call for a
/// batch whose header the broker edited apart from its records.
fn write_all_at2(file: &File, mut head: &[u8], mut rest: &[u8], mut position: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !(head.is_empty() && rest.is_empty()) {
        let iov = [
            libc::iovec {
                iov_base: head.as_ptr() as *mut libc::c_void,
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: rest.as_ptr() as *mut libc::c_void,
                iov_len: rest.len(),
            },
        ];
        let offset = libc::off_t::try_from(position).map_err(io::Error::other)?;
        // SAFETY: both iovecs describe live slices that outlive the call, and the
        // descriptor is open (the file is borrowed).
        let n = unsafe { libc::pwritev(file.as_raw_fd(), iov.as_ptr(), 2, offset) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let n = n as usize;
        position += n as u64;
        let from_head = n.min(head.len());
        head = &head[from_head..];
        rest = &rest[n - from_head..];
    }
    Ok(())
}

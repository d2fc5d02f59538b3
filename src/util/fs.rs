//! File-system helpers shared by the log store and broker metadata.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replace `path` with `data` so that a crash leaves either the old or the new
/// content: write a temporary file, fsync it, rename it over, fsync the directory.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with_mode(path, data, 0o644)
}

/// [`write_atomically`] for secrets (credentials): readable by the owner only,
/// from the first byte written.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with_mode(path, data, 0o600)
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let created = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp);
    let written = created.and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, path)) {
        // A full disk must not leave a half-written temporary file behind.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Run file work that may take long (creating thousands of partitions) on
/// tokio's blocking pool, so the async workers keep serving other connections.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> crate::error::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// Lock `dir` for this process alone, as Kafka does with its `.lock` file: two
/// brokers on one data directory would both recover and append to the same
/// segments and damage them. The lock lasts as long as the returned file is open
/// (and ends with the process, however it ends).
pub fn lock_dir(dir: &Path) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let path = dir.join(".lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "{} is in use by another process (it holds {})",
                    dir.display(),
                    path.display()
                ),
            ));
        }
        return Err(e);
    }
    Ok(file)
}

/// fsync a directory, making file creations, renames and deletions in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reserve disk blocks for the first `bytes` of `file` without changing its
/// length (fallocate with KEEP_SIZE): appends then never wait for the file
/// system to find space, and the file stays contiguous. Never at the cost of the
/// disk: nothing is reserved unless a tenth of the file system stays free after
/// it, and a reservation that fails half way is given back.
pub fn reserve(file: &File, dir: &Path, bytes: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if let Some((total, usable)) = disk_space(dir) {
        if usable.saturating_sub(len) < total / 10 {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "less than a tenth of the disk would stay free",
            ));
        }
    }
    // SAFETY: a valid open descriptor; fallocate only changes the file's blocks.
    if unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) } != 0 {
        let e = io::Error::last_os_error();
        let _ = release_past_end(file, file.metadata()?.len());
        return Err(e);
    }
    Ok(())
}

/// Give back blocks reserved past `len`, the file's length (see [`reserve`]), if
/// there are any: truncating a file to its own length frees what lies past it
/// (a hole punched past the end would not, on ext4).
pub fn release_past_end(file: &File, len: u64) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    // Within a block or two of the end: nothing was reserved.
    if m.len() != len || m.blocks() * 512 <= len + (64 << 10) {
        return Ok(());
    }
    file.set_len(len)
}

/// Raise this process's soft limit of open files to its hard limit; the limit now.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// (total, usable) bytes of the file system holding `path`.
pub fn disk_space(path: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let block = s.f_frsize as i64;
    Some((s.f_blocks as i64 * block, s.f_bavail as i64 * block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_locked_for_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_dir(dir.path()).unwrap();
        let second = lock_dir(dir.path()).unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::ResourceBusy);
        drop(held);
        lock_dir(dir.path()).unwrap();
    }

    #[test]
    fn reserved_space_keeps_the_length_and_is_given_back() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("seg"))
            .unwrap();
        f.write_all(b"data").unwrap();
        if reserve(&f, dir.path(), 4 << 20).is_err() {
            return; // a file system without fallocate: nothing to check
        }
        let m = f.metadata().unwrap();
        assert_eq!(m.len(), 4);
        assert!(m.blocks() * 512 >= 4 << 20, "reserved");
        release_past_end(&f, 4).unwrap();
        assert!(f.metadata().unwrap().blocks() * 512 < 1 << 20, "given back");
        assert_eq!(fs::read(dir.path().join("seg")).unwrap(), b"data");
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!dir.path().join("f.tmp").exists());
    }
}

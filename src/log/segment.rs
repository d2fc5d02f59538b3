//! A log segment: one `.log` file of record batches plus its two indexes.
//!
//! `{base_offset:020}.log` holds batches back to back, exactly as clients sent them
//! (with the broker-assigned base offset). A partition has many sealed segments and
//! one active segment; only the active one is appended to, and sealing consumes it,
//! so the type system keeps writes off sealed files.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::offset_index::OffsetIndex;
use super::time_index::TimeIndex;
use super::txn_index::{AbortedTxn, TxnIndex};
use crate::record::batch::{self, BatchHeader, BATCH_HEADER_LEN};

/// How much log data one read of a scan pulls in.
const SCAN_CHUNK: usize = 1 << 20;

/// What a deleted segment's files are renamed with until they go.
pub const DELETED_SUFFIX: &str = ".deleted";

pub fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// The offsets naming the `{offset:020}.{ext}` files of a partition
/// directory (segments, producer snapshots), ascending.
pub fn offset_files(dir: &Path, ext: &str) -> io::Result<Vec<i64>> {
    let suffix = format!(".{ext}");
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(o) = name.strip_suffix(suffix.as_str()).and_then(|o| o.parse::<i64>().ok()) {
            offsets.push(o);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// What both kinds of segment share: the files and what is known about their content.
#[derive(Debug)]
pub struct LogSegment {
    pub base_offset: i64,
    dir: PathBuf,
    log: Arc<File>,
    size: u64,
    index: OffsetIndex,
    time_index: TimeIndex,
    /// Aborted transactions whose marker is in this segment.
    txn_index: TxnIndex,
    /// One past the last offset in the segment (base_offset when empty).
    next_offset: i64,
    /// Greatest batch max_timestamp, −1 when empty.
    max_timestamp: i64,
    /// Base offset of the first batch that reached `max_timestamp`.
    offset_of_max_timestamp: i64,
    bytes_since_index_entry: u64,
    /// Wall-clock time of the first append, for age-based rolling.
    first_append_ms: Option<u64>,
    /// The file holds the partial write of a failed append past `size`, still to
    /// be cut off; readers never look past `size`.
    log_longer_than_size: bool,
    /// Bytes of the file known to hold intact batches (see [`Verified`]).
    verified: Arc<Verified>,
    /// Where loading found damage, if it did.
    damaged_at: Option<u64>,
}

/// How [`LogSegment::open`] treats what does not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// After an unclean shutdown: cut the file after the last good batch.
    Recover,
    /// Otherwise: keep the file, record the damage.
    Load,
}

/// The segment being appended to.
#[derive(Debug)]
pub struct ActiveSegment(LogSegment);

/// A segment that will never be written again.
#[derive(Debug)]
pub struct SealedSegment(LogSegment);

impl Deref for ActiveSegment {
    type Target = LogSegment;
    fn deref(&self) -> &LogSegment {
        &self.0
    }
}

impl Deref for SealedSegment {
    type Target = LogSegment;
    fn deref(&self) -> &LogSegment {
        &self.0
    }
}

/// Summary of one batch found while scanning a segment file.
#[derive(Debug, Clone, Copy)]
pub struct ScannedBatch {
    pub position: u64,
    pub header: BatchHeader,
    /// The transaction marker of a control batch (read by scans, which have the
    /// batch in hand; `None` from [`find_batch`], which reads headers only).
    pub marker: Option<crate::record::control::Marker>,
}

impl LogSegment {
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// Entries in the offset index and in the time index.
    pub fn index_entries(&self) -> (usize, usize) {
        (
            self.index.file().entries().len(),
            self.time_index.file().entries().len(),
        )
    }
    /// The max timestamp of the segment's first batch (−1 if it has none or
    /// cannot be read): when its oldest data arrived, for max.compaction.lag.ms.
    pub fn first_batch_timestamp(&self) -> i64 {
        let mut head = [0u8; crate::record::batch::BATCH_HEADER_LEN];
        match self.log.read_exact_at(&mut head, 0) {
            Ok(()) => BatchHeader::parse(&head).map_or(-1, |h| h.max_timestamp),
            Err(_) => -1,
        }
    }
    /// The newest timestamp for time retention: the greatest record timestamp,
    /// or, when no record has one (messages of format v0), when the file was last
    /// written — Kafka's `largestTimestamp`.
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| d.as_millis() as i64)
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn file(&self) -> Arc<File> {
        self.log.clone()
    }
    pub fn first_append_ms(&self) -> Option<u64> {
        self.first_append_ms
    }
    pub fn verified(&self) -> Arc<Verified> {
        self.verified.clone()
    }
    /// Whether every batch of the file has been checked since it was opened.
    pub fn fully_verified(&self) -> bool {
        self.verified.covers(&(0..self.size))
    }

    /// Byte position from which to scan for `offset`.
    pub fn locate(&self, offset: i64) -> u64 {
        self.index.lookup(offset).1 as u64
    }

    /// A position at or below `position` where a batch starts, from the index.
    pub fn boundary_at_or_below(&self, position: u64) -> u64 {
        self.index.floor_position(position)
    }

    /// Offset from which to scan for the first record at or after `timestamp`.
    pub fn locate_time(&self, timestamp: i64) -> i64 {
        self.time_index.lookup(timestamp)
    }

    /// Open an existing segment. With [`Open::Recover`] every batch is checked
    /// (framing, CRC, offsets), the file is truncated after the last good one, the
    /// indexes rebuilt, and each surviving batch reported to `on_batch`. With
    /// [`Open::Load`] the indexes are trusted when sane (rebuilt when not), and
    /// damage found on the way is recorded ([`LogSegment::damaged_at`]) but the
    /// file is left as it is: after a clean shutdown nothing was being written, so
    /// what does not check out is damage to report, not a torn write to cut off.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        mode: Open,
        index_interval: u64,
        mut on_batch: impl FnMut(&ScannedBatch),
    ) -> io::Result<LogSegment> {
        let recover = mode == Open::Recover;
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(segment_path(dir, base_offset, "log"))?;
        let size = log.metadata()?.len();
        // Disk reserved for it (`preallocate`) before a crash or restart: given
        // back, as a sealed segment would have.
        if let Err(e) = crate::util::fs::release_past_end(&log, size) {
            tracing::warn!(segment = %segment_path(dir, base_offset, "log").display(), error = %e, "cannot release preallocated space");
        }
        let index_path = segment_path(dir, base_offset, "index");
        let time_path = segment_path(dir, base_offset, "timeindex");
        let trusted = if recover {
            None
        } else {
            match (
                OffsetIndex::open(&index_path, base_offset, size)?,
                TimeIndex::open(&time_path, base_offset)?,
            ) {
                (Some(i), Some(t)) if index_matches_log(&log, &i, size)? => Some((i, t)),
                _ => {
                    tracing::warn!(
                        segment = %segment_path(dir, base_offset, "log").display(),
                        "index files missing or inconsistent with the log; rebuilding them"
                    );
                    None
                }
            }
        };
        let rebuild = trusted.is_none();
        let (index, time_index) = match trusted {
            Some(pair) => pair,
            None => (
                OffsetIndex::create(&index_path, base_offset)?,
                TimeIndex::create(&time_path, base_offset)?,
            ),
        };
        let mut seg = LogSegment {
            base_offset,
            dir: dir.to_path_buf(),
            log: Arc::new(log),
            size,
            index,
            time_index,
            txn_index: TxnIndex::open(&segment_path(dir, base_offset, "txnindex"))?,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_index_entry: 0,
            first_append_ms: None,
            log_longer_than_size: false,
            verified: Arc::default(),
            damaged_at: None,
        };
        let log = seg.log.clone();
        if !rebuild {
            // Trusted indexes: only the batches after the last index entry are
            // scanned, to learn where the segment ends.
            let from = seg.index.last().map(|(_, p)| p as u64).unwrap_or(0);
            if let Some((ts, off)) = seg.time_index.last() {
                seg.max_timestamp = ts;
                seg.offset_of_max_timestamp = off;
            }
            let first_offset = seg.index.last().map_or(base_offset, |(o, _)| o);
            let check = Check::segment(base_offset, first_offset);
            let end = scan(&log, from, size, check, |b| {
                seg.next_offset = b.header.last_offset() + 1;
                seg.note_timestamp(&b.header);
            })?;
            seg.bytes_since_index_entry = end - from;
            if end < size {
                seg.damaged(end);
            }
            return Ok(seg);
        }
        let check = Check::segment(base_offset, base_offset);
        let end = scan(&log, 0, size, check, |b| {
            seg.index_batch(b.position as u32, &b.header, index_interval);
            seg.next_offset = b.header.last_offset() + 1;
            on_batch(b);
        })?;
        seg.verified.add(0..end);
        if end < size && !recover {
            seg.damaged(end);
        } else if end < size {
            tracing::error!(
                segment = %segment_path(dir, base_offset, "log").display(),
                valid_bytes = end,
                file_bytes = size,
                "truncating torn or corrupt tail"
            );
            seg.log.set_len(end)?;
            seg.log.sync_all()?;
            seg.size = end;
        }
        Ok(seg)
    }

    fn damaged(&mut self, position: u64) {
        tracing::error!(
            segment = %segment_path(&self.dir, self.base_offset, "log").display(),
            position,
            "damaged batch: the segment is kept as it is, and fetches of what follows are refused; see `strom log check`"
        );
        self.damaged_at = Some(position);
    }

    /// Where damage was found when the segment was loaded (see [`Open::Load`]).
    pub fn damaged_at(&self) -> Option<u64> {
        self.damaged_at
    }

    /// The batches after a damaged spot cannot be read, so the segment's end
    /// offset comes from elsewhere: the next segment's base offset, or the log end
    /// offset recorded at the last clean shutdown.
    pub fn assume_next_offset(&mut self, next_offset: i64) {
        self.next_offset = self.next_offset.max(next_offset);
    }

    /// Offsets at or past `end` belong elsewhere (the next segment, or past the
    /// log end recorded at a clean shutdown): a batch that claims them is damage.
    pub fn limit_next_offset(&mut self, end: i64) {
        if self.next_offset > end {
            tracing::error!(
                segment = %segment_path(&self.dir, self.base_offset, "log").display(),
                claimed = self.next_offset,
                end,
                "damaged batch offsets: the segment claims offsets past its end; fetches of them are refused"
            );
            self.next_offset = end;
            self.damaged_at.get_or_insert(0);
        }
    }

    fn note_timestamp(&mut self, h: &BatchHeader) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset;
        }
    }

    /// Update in-memory state and the indexes for a batch now at `position`.
    /// Index writes never fail an append: see `index_file`.
    fn index_batch(&mut self, position: u32, h: &BatchHeader, interval: u64) {
        self.note_timestamp(h);
        let size = h.total_size() as u64;
        if self.bytes_since_index_entry >= interval || position == 0 {
            if position > 0 {
                self.index.append(h.base_offset, position);
            }
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += size;
    }

    /// Files whose data must reach the disk for this segment to be durable.
    pub fn sync_handles(&self) -> io::Result<Vec<File>> {
        let mut files = vec![self.log.try_clone()?];
        files.extend(self.index.file().try_clone_file()?);
        files.extend(self.time_index.file().try_clone_file()?);
        files.extend(self.txn_index.try_clone_file()?);
        Ok(files)
    }

    /// Write the final time-index entry so the segment's max timestamp is on disk.
    fn finish(&mut self) {
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
    }

    /// Aborted transactions whose marker is in this segment, by marker offset.
    pub fn aborted_txns(&self) -> &[AbortedTxn] {
        self.txn_index.entries()
    }

    /// Record an aborted transaction whose marker this segment holds.
    pub fn add_aborted_txn(&mut self, entry: AbortedTxn) -> io::Result<()> {
        self.txn_index.append(entry)
    }

    /// Forget the aborted transactions (recovery adds them again from the markers).
    pub fn clear_aborted_txns(&mut self) -> io::Result<()> {
        self.txn_index.clear()
    }

    pub fn sync_all(&self) -> io::Result<()> {
        self.txn_index.sync()?;
        self.log.sync_data()?;
        self.index.file().sync()?;
        self.time_index.file().sync()
    }

    /// Rename the segment's files to `*.deleted` (after it is no longer referenced
    /// by the log), for deletion after `file.delete.delay.ms`; their new paths.
    pub fn retire_files(&self) -> io::Result<Vec<PathBuf>> {
        let mut retired = Vec::new();
        for ext in ["log", "index", "timeindex", "txnindex"] {
            let path = segment_path(&self.dir, self.base_offset, ext);
            let mut name = path.clone().into_os_string();
            name.push(DELETED_SUFFIX);
            match std::fs::rename(&path, &name) {
                Ok(()) => retired.push(PathBuf::from(name)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(retired)
    }

    /// Remove the segment's files (after it is no longer referenced by the log).
    pub fn delete_files(&self) -> io::Result<()> {
        for ext in ["log", "index", "timeindex", "txnindex"] {
            match std::fs::remove_file(segment_path(&self.dir, self.base_offset, ext)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

impl ActiveSegment {
    /// Create a new, empty segment starting at `base_offset`.
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<ActiveSegment> {
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(segment_path(dir, base_offset, "log"))?;
        Ok(ActiveSegment(LogSegment {
            base_offset,
            dir: dir.to_path_buf(),
            log: Arc::new(log),
            size: 0,
            index: OffsetIndex::create(&segment_path(dir, base_offset, "index"), base_offset)?,
            time_index: TimeIndex::create(&segment_path(dir, base_offset, "timeindex"), base_offset)?,
            txn_index: {
                // A file left by a deleted segment of the same base is not this one's.
                let mut t = TxnIndex::empty(&segment_path(dir, base_offset, "txnindex"));
                t.clear()?;
                t
            },
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_index_entry: 0,
            first_append_ms: None,
            log_longer_than_size: false,
            verified: Arc::default(),
            damaged_at: None,
        }))
    }

    pub fn from_opened(seg: LogSegment) -> ActiveSegment {
        ActiveSegment(seg)
    }

    pub fn into_inner(self) -> LogSegment {
        self.0
    }

    /// Where the next batch goes, to be written by [`SegmentWrite::write`] without
    /// holding the partition's lock (so fetches are not stalled by a slow write),
    /// then accounted for by [`Self::appended`] or [`Self::write_failed`]. A partial
    /// write an earlier failed append could not cut off is cut off first.
    pub fn next_write(&mut self) -> io::Result<SegmentWrite> {
        let position = self.0.size;
        if self.0.log_longer_than_size {
            self.0.log.set_len(position)?;
            self.0.log_longer_than_size = false;
        }
        Ok(SegmentWrite {
            file: self.0.log.clone(),
            position,
            path: segment_path(&self.0.dir, self.0.base_offset, "log"),
        })
    }

    /// [`Self::next_write`], [`SegmentWrite::write`] and [`Self::appended`] in one
    /// call, for a caller that holds the segment alone.
    pub fn append(
        &mut self,
        head: &[u8; BATCH_HEADER_LEN],
        rest: &[u8],
        header: &BatchHeader,
        index_interval: u64,
        now_ms: u64,
    ) -> io::Result<()> {
        let write = self.next_write()?;
        if let Err((e, cut_off)) = write.write(head, rest) {
            self.write_failed(cut_off);
            return Err(e);
        }
        self.appended(&write, head.len() + rest.len(), header, index_interval, now_ms);
        Ok(())
    }

    /// A [`SegmentWrite`] failed; `cut_off`: its partial write was removed again.
    /// If not, the next [`Self::next_write`] removes it.
    pub fn write_failed(&mut self, cut_off: bool) {
        self.0.log_longer_than_size = !cut_off;
    }

    /// Account for the batch `write` put in the file: readers see it from now on.
    pub fn appended(
        &mut self,
        write: &SegmentWrite,
        len: usize,
        header: &BatchHeader,
        index_interval: u64,
        now_ms: u64,
    ) {
        debug_assert_eq!(write.position, self.0.size, "one write at a time, at the end");
        self.0.size = write.position + len as u64;
        self.0.verified.add(write.position..self.0.size);
        self.0.next_offset = header.last_offset() + 1;
        self.0.first_append_ms.get_or_insert(now_ms);
        self.0.index_batch(write.position as u32, header, index_interval);
    }

    /// Reserve `bytes` of disk for the file (`preallocate`), without changing its
    /// length: readers, recovery and sizes see only what was written. Best effort.
    pub fn preallocate(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        if let Err(e) = crate::util::fs::reserve(&self.0.log, &self.0.dir, bytes) {
            tracing::warn!(segment = %segment_path(&self.0.dir, self.0.base_offset, "log").display(), error = %e, "cannot preallocate the segment");
        }
    }

    /// Record an aborted transaction whose marker this segment holds.
    pub fn add_aborted_txn(&mut self, entry: AbortedTxn) -> io::Result<()> {
        self.0.add_aborted_txn(entry)
    }

    /// Close the segment for writing; disk reserved past its end is given back.
    pub fn seal(mut self) -> SealedSegment {
        self.0.finish();
        if let Err(e) = crate::util::fs::release_past_end(&self.0.log, self.0.size) {
            tracing::warn!(segment = %segment_path(&self.0.dir, self.0.base_offset, "log").display(), error = %e, "cannot release preallocated space");
        }
        SealedSegment(self.0)
    }

    /// Clean shutdown: final index entry, and everything on disk.
    pub fn close(&mut self) -> io::Result<()> {
        self.0.finish();
        self.0.sync_all()
    }
}

impl SealedSegment {
    pub fn from_opened(seg: LogSegment) -> SealedSegment {
        SealedSegment(seg)
    }

    /// See [`LogSegment::assume_next_offset`].
    pub fn assume_next_offset(&mut self, next_offset: i64) {
        self.0.assume_next_offset(next_offset)
    }

    /// See [`LogSegment::limit_next_offset`].
    pub fn limit_next_offset(&mut self, end: i64) {
        self.0.limit_next_offset(end)
    }
}

/// Whether a trusted-looking offset index agrees with its log: its last entry must
/// point at a batch with the entry's offset. Catches an index left from other data
/// (a segment file replaced or truncated by hand) before lookups go astray.
pub(crate) fn index_matches_log(log: &File, index: &OffsetIndex, size: u64) -> io::Result<bool> {
    let Some((offset, position)) = index.last() else {
        return Ok(true);
    };
    let mut head = [0u8; BATCH_HEADER_LEN];
    if position as u64 + BATCH_HEADER_LEN as u64 > size {
        return Ok(false);
    }
    log.read_exact_at(&mut head, position as u64)?;
    Ok(BatchHeader::parse(&head).is_some_and(|h| h.base_offset == offset && h.magic == batch::MAGIC_V2))
}

mod scan;
mod verified;
mod write;
pub use scan::{batch_extent, check_slice, find_batch, scan, scan_why, Check, Damaged};
pub use verified::Verified;
pub use write::SegmentWrite;

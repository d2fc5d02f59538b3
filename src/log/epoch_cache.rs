//! The leader epoch cache (Kafka's `LeaderEpochFileCache`): for each leader epoch
//! of a partition, the offset its leader's first batch got. Every batch carries
//! its leader's epoch (`partition_leader_epoch`), so the cache can be rebuilt from
//! the log; it is kept in `leader-epoch-checkpoint` so it need not be.
//!
//! Replication rests on it. A follower asks the leader where the last epoch it
//! holds ended (`end_offset_for`); anything it has past that point was written
//! by a leader whose writes did not survive, and it truncates to it before
//! fetching again. That is how every replica ends up with the same log below
//! the high watermark whatever leaders came and went (KIP-101, KIP-279).
//!
//! Entries are strictly increasing in both epoch and start offset.

use std::path::{Path, PathBuf};

use super::checkpoint::{self, CheckpointEntry};
use crate::error::Result;

pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// No epoch (Kafka's `UNDEFINED_EPOCH`) and no offset (`UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

/// A leader epoch and the offset where it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

impl CheckpointEntry for EpochEntry {
    fn to_line(&self) -> String {
        format!("{} {}", self.epoch, self.start_offset)
    }
    fn from_fields(fields: &[&str]) -> Option<EpochEntry> {
        match fields {
            [epoch, start] => Some(EpochEntry {
                epoch: epoch.parse().ok().filter(|e| *e >= 0)?,
                start_offset: start.parse().ok().filter(|o| *o >= 0)?,
            }),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
    /// The entries came from a checkpoint file that was there and sound.
    trusted: bool,
}

impl LeaderEpochCache {
    /// The cache of the partition in `dir`, from its checkpoint file; empty when
    /// there is none. A damaged file, or one whose entries are not increasing,
    /// is not trusted: the cache starts empty and is rebuilt from the batches.
    pub fn open(dir: &Path) -> Result<LeaderEpochCache> {
        let path = dir.join(CHECKPOINT_FILE);
        // Whatever is wrong with the file (damaged, not text, not a file at all),
        // the batches can say the same: it is never a reason not to start.
        let (entries, trusted) = match checkpoint::read::<EpochEntry>(&path) {
            Ok(Some(entries)) => (entries, true),
            Ok(None) => (Vec::new(), false),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring the leader epoch checkpoint; rebuilding it");
                (Vec::new(), false)
            }
        };
        let increasing = entries
            .windows(2)
            .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
        if !increasing {
            tracing::warn!(file = %path.display(), "leader epoch checkpoint is not increasing; ignoring it");
            return Ok(LeaderEpochCache {
                path,
                entries: Vec::new(),
                trusted: false,
            });
        }
        Ok(LeaderEpochCache { path, entries, trusted })
    }

    /// Whether the entries came from a sound checkpoint file; if not, the log
    /// has to say where its epochs began.
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    pub fn earliest(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Record that `epoch` began at `start_offset`; whether that changed the
    /// cache (and its file). A later offset for the latest epoch changes
    /// nothing; entries that would break the order (an epoch at least as high,
    /// or a start at least as far) are dropped first, as a leader's new epoch
    /// supersedes what an old one wrote past its start.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> std::io::Result<bool> {
        if epoch < 0 || start_offset < 0 {
            return Ok(false);
        }
        let needed = match self.entries.last() {
            Some(last) => epoch != last.epoch || start_offset < last.start_offset,
            None => true,
        };
        if !needed {
            return Ok(false);
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        self.flush()?;
        Ok(true)
    }

    /// The epoch a follower asked about and where it ended, as the leader (whose
    /// log ends at `log_end_offset`) sees it: the latest epoch ends at the log
    /// end; an older one where the next began; one older than any known gets
    /// the first known start; one newer than any known, or −1, is undefined.
    /// When the requested epoch is not in the cache, the answer names the
    /// largest epoch below it, so the follower can find where the two logs part.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    /// The epoch of the leader that wrote `offset` (the last epoch starting at or
    /// before it), if any.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= offset)
            .map(|e| e.epoch)
    }

    /// The log was truncated to end at `end_offset`: epochs starting there or
    /// later are gone.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> std::io::Result<()> {
        if end_offset < 0 || self.entries.last().is_none_or(|e| e.start_offset < end_offset) {
            return Ok(());
        }
        self.entries.retain(|e| e.start_offset < end_offset);
        self.flush()
    }

    /// The log now starts at `start_offset` (retention, DeleteRecords): the epoch
    /// holding it now starts there, and the ones wholly before it are gone.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> std::io::Result<()> {
        if start_offset < 0 || self.entries.first().is_none_or(|e| e.start_offset >= start_offset) {
            return Ok(());
        }
        let floor = self
            .entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= start_offset)
            .copied();
        self.entries.retain(|e| e.start_offset > start_offset);
        if let Some(floor) = floor {
            self.entries.insert(
                0,
                EpochEntry {
                    epoch: floor.epoch,
                    start_offset,
                },
            );
        }
        self.flush()
    }

    /// Forget every epoch (a follower that starts over from the leader's log start).
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.entries.clear();
        self.flush()
    }

    fn flush(&self) -> std::io::Result<()> {
        checkpoint::write(&self.path, &self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry { epoch, start_offset }
    }

    fn cache(dir: &Path, entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::open(dir).unwrap();
        for &(e, o) in entries {
            c.assign(e, o).unwrap();
        }
        c
    }

    #[test]
    fn assign_keeps_entries_increasing() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cache(dir.path(), &[(0, 0), (2, 10)]);
        assert_eq!(c.entries(), &[entry(0, 0), entry(2, 10)]);
        // The latest epoch again, later: no change.
        assert!(!c.assign(2, 15).unwrap());
        // The latest epoch at an earlier start: it moves back.
        assert!(c.assign(2, 8).unwrap());
        assert_eq!(c.entries(), &[entry(0, 0), entry(2, 8)]);
        // An older epoch past the start of newer ones supersedes them (a leader
        // at epoch 1 appended after truncation): entries with epoch ≥ 1 or start
        // ≥ 12 go.
        assert!(c.assign(1, 12).unwrap());
        assert_eq!(c.entries(), &[entry(0, 0), entry(1, 12)]);
        // A new epoch at an offset not past the last start drops that entry.
        assert!(c.assign(5, 12).unwrap());
        assert_eq!(c.entries(), &[entry(0, 0), entry(5, 12)]);
        // Negative epochs (batches of old formats) are not recorded.
        assert!(!c.assign(-1, 20).unwrap());
        assert_eq!(c.latest_epoch(), Some(5));
    }

    #[test]
    fn end_offsets_for_every_case() {
        let dir = tempfile::tempdir().unwrap();
        let empty = cache(dir.path(), &[]);
        assert_eq!(empty.end_offset_for(0, 7), (-1, -1), "nothing known");
        let c = cache(dir.path(), &[(1, 0), (3, 10), (6, 25)]);
        assert_eq!(c.end_offset_for(-1, 40), (-1, -1), "undefined epoch");
        assert_eq!(c.end_offset_for(6, 40), (6, 40), "the latest ends at the log end");
        assert_eq!(c.end_offset_for(3, 40), (3, 25), "an older one where the next begins");
        assert_eq!(c.end_offset_for(4, 40), (3, 25), "unknown in between: the floor epoch");
        assert_eq!(c.end_offset_for(0, 40), (0, 0), "older than any: the first start");
        assert_eq!(c.end_offset_for(7, 40), (-1, -1), "newer than any");
        assert_eq!(c.epoch_for_offset(0), Some(1));
        assert_eq!(c.epoch_for_offset(24), Some(3));
        assert_eq!(c.epoch_for_offset(25), Some(6));
        assert_eq!(empty.epoch_for_offset(3), None);
    }

    #[test]
    fn truncation_from_either_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cache(dir.path(), &[(1, 0), (3, 10), (6, 25)]);
        c.truncate_from_end(30).unwrap();
        assert_eq!(c.entries().len(), 3, "30 is inside the last epoch");
        c.truncate_from_end(25).unwrap();
        assert_eq!(c.entries(), &[entry(1, 0), entry(3, 10)]);
        c.truncate_from_start(12).unwrap();
        assert_eq!(c.entries(), &[entry(3, 12)], "the epoch holding 12 starts there");
        c.truncate_from_start(5).unwrap();
        assert_eq!(c.entries(), &[entry(3, 12)], "nothing before the start");
        let mut c = cache(dir.path(), &[(1, 0), (3, 10)]);
        c.truncate_from_start(10).unwrap();
        assert_eq!(c.entries(), &[entry(3, 10)]);
        c.clear().unwrap();
        assert_eq!(c.entries(), &[]);
    }

    #[test]
    fn the_file_survives_a_reopen_and_a_bad_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!LeaderEpochCache::open(dir.path()).unwrap().trusted(), "no file");
        let c = cache(dir.path(), &[(0, 0), (4, 100)]);
        let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n4 100\n");
        let again = LeaderEpochCache::open(dir.path()).unwrap();
        assert_eq!(again.entries(), c.entries());
        assert!(again.trusted());
        std::fs::write(dir.path().join(CHECKPOINT_FILE), "0\n2\n4 100\n0 0\n").unwrap();
        let unordered = LeaderEpochCache::open(dir.path()).unwrap();
        assert_eq!((unordered.entries(), unordered.trusted()), (&[][..], false));
        std::fs::write(dir.path().join(CHECKPOINT_FILE), "0\n1\n-3 0\n").unwrap();
        let damaged = LeaderEpochCache::open(dir.path()).unwrap();
        assert_eq!(
            (damaged.entries(), damaged.trusted()),
            (&[][..], false),
            "not an entry at all"
        );
    }
}

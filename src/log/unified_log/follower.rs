//! Appending as a follower: batches copied from the leader's log, kept byte for
//! byte (offsets, leader epoch, timestamps and CRC as the leader wrote them), so
//! every replica holds the same log. Nothing a leader checks for a producer is
//! checked again (sequences, transactions, timestamps); the batches must only be
//! intact and continue this log.

use super::*;

/// What a follower's append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerAppendInfo {
    /// The base offset of the first batch appended (−1: nothing was).
    pub first_offset: i64,
    /// The log end offset after the append.
    pub log_end_offset: i64,
    pub batches: usize,
}

impl UnifiedLog {
    /// Append the whole batches at the start of `records` (a leader's fetch
    /// response; a partial batch at the end is left for the next fetch). All are
    /// checked before any is written: magic v2, CRC, offsets increasing and not
    /// below this log's end (a gap is allowed: the leader may have compacted).
    pub fn append_as_follower(&self, records: &[u8], now_ms: i64) -> Result<FollowerAppendInfo> {
        let mut batches = Vec::new();
        let mut previous_last: Option<i64> = None;
        for (pos, h) in batch::Batches::new(records) {
            let bytes = &records[pos..pos + h.total_size()];
            batch::verify_stored_batch(bytes, &h).map_err(Error::CorruptMessage)?;
            if previous_last.is_some_and(|last| h.base_offset <= last) {
                return Err(Error::CorruptMessage("replicated batches out of offset order"));
            }
            previous_last = Some(h.last_offset());
            batches.push((bytes, h));
        }
        let config = self.config();
        let _appending = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let leo = self.log_end_offset();
        if batches.first().is_some_and(|(_, h)| h.base_offset < leo) {
            return Err(Error::InvalidRecord("replicated batch below the log end offset"));
        }
        let first_offset = batches.first().map_or(-1, |(_, h)| h.base_offset);
        for (bytes, h) in &batches {
            self.write_replicated(&config, bytes, h, now_ms)?;
        }
        Ok(FollowerAppendInfo {
            first_offset,
            log_end_offset: self.log_end_offset(),
            batches: batches.len(),
        })
    }

    /// Write one replicated batch as it is (the caller holds `append_lock`).
    fn write_replicated(&self, config: &LogConfig, bytes: &[u8], h: &BatchHeader, now_ms: i64) -> Result<()> {
        let Some((head, rest)) = bytes.split_first_chunk::<{ batch::BATCH_HEADER_LEN }>() else {
            return Err(Error::CorruptMessage("record batch is truncated"));
        };
        let mut log = self.lock();
        if self.should_roll(config, &log.active, bytes.len(), h, h.base_offset, now_ms) {
            log.roll(&self.dir, roll::preallocation(config))?;
        }
        let write = log.active.next_write()?;
        drop(log);
        let written = write.write(head, rest);
        let mut log = self.lock();
        if let Err((e, cut_off)) = written {
            log.active.write_failed(cut_off);
            return Err(e.into());
        }
        log.active.appended(
            &write,
            bytes.len(),
            h,
            config.index_interval_bytes,
            now_ms.max(0) as u64,
        );
        let marker = control::read_marker(bytes, h);
        if let Some(txn) = log.producers.update(h, marker) {
            if let Some(entry) = aborted_entry(&log.producers, txn) {
                log.active.add_aborted_txn(entry)?;
            }
        }
        log.unflushed_messages += h.records_count.max(0) as u64;
        assign_epoch(&mut log.epochs, h);
        Ok(())
    }
}

//! When the active segment is rolled (Kafka's `LogSegment.shouldRoll`), and what
//! a new one starts with.
//!
//! A non-empty active segment is rolled before an append when the batch would
//! take it past `segment.bytes`; when it is older than `segment.ms` minus its
//! jitter (a per-segment share of `segment.jitter.ms`, so that partitions created
//! together do not all roll at once) — on compacted topics `max.compaction.lag.ms`
//! if that is sooner, so records are compactable within it; when its offset or
//! time index holds `segment.index.bytes`; or when the batch's offsets would not
//! fit the index's 32-bit relative offsets.

use std::hash::{Hash, Hasher};

use super::*;

/// Bytes per entry of the offset index and of the time index.
const OFFSET_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

impl UnifiedLog {
    pub(super) fn should_roll(
        &self,
        config: &LogConfig,
        active: &LogSegment,
        batch_len: usize,
        header: &BatchHeader,
        base_offset: i64,
        now_ms: i64,
    ) -> bool {
        if active.is_empty() {
            return false;
        }
        let too_big = active.size() + batch_len as u64 > config.segment_bytes;
        let max_age = max_segment_ms(config).saturating_sub(self.roll_jitter_ms(config, active.base_offset));
        let too_old = active
            .first_append_ms()
            .is_some_and(|t| now_ms.saturating_sub(t as i64).max(0) as u64 >= max_age);
        let (offsets, times) = active.index_entries();
        let index_bytes = config.segment_index_bytes.max(0) as usize;
        let index_full = offsets >= index_bytes / OFFSET_ENTRY || times >= index_bytes / TIME_ENTRY;
        let offsets_overflow = base_offset + header.last_offset_delta as i64 - active.base_offset > i32::MAX as i64;
        too_big || too_old || index_full || offsets_overflow
    }

    /// This segment's share of `segment.jitter.ms`, below `segment.ms` (so a huge
    /// jitter never rolls every batch): fixed for the segment (a hash of the
    /// partition and its base offset, where Kafka draws it at random).
    fn roll_jitter_ms(&self, config: &LogConfig, base_offset: i64) -> u64 {
        let bound = (config.segment_jitter_ms.max(0) as u64).min(config.roll_ms);
        if bound == 0 {
            return 0;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&self.topic, self.index, base_offset).hash(&mut h);
        h.finish() % bound
    }
}

/// `segment.ms`, or on a compacted topic `max.compaction.lag.ms` if sooner (as
/// Kafka's LogConfig.maxSegmentMs).
fn max_segment_ms(config: &LogConfig) -> u64 {
    if config.cleanup_compact && config.max_compaction_lag_ms > 0 {
        config.roll_ms.min(config.max_compaction_lag_ms as u64)
    } else {
        config.roll_ms
    }
}

/// Bytes to preallocate for a new segment (`preallocate`): the whole
/// `segment.bytes`, or nothing.
pub(super) fn preallocation(config: &LogConfig) -> u64 {
    if config.preallocate {
        config.segment_bytes
    } else {
        0
    }
}

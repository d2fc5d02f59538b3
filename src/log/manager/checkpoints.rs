//! `replication-offset-checkpoint`: the high watermarks of a cluster broker's
//! replicated partitions, one file per data directory in Kafka's checkpoint
//! format, so a restart resumes from them rather than from zero.

use std::collections::HashMap;

use super::LogManager;
use crate::log::checkpoint::{self, CheckpointEntry};

/// The high watermarks of replicated partitions, one file per data directory.
pub const REPLICATION_CHECKPOINT: &str = "replication-offset-checkpoint";

/// One line of `replication-offset-checkpoint`: `topic partition high_watermark`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HighWatermarkEntry {
    topic: String,
    partition: i32,
    high_watermark: i64,
}

impl CheckpointEntry for HighWatermarkEntry {
    fn to_line(&self) -> String {
        format!("{} {} {}", self.topic, self.partition, self.high_watermark)
    }
    fn from_fields(fields: &[&str]) -> Option<HighWatermarkEntry> {
        match fields {
            [topic, partition, hw] => Some(HighWatermarkEntry {
                topic: topic.to_string(),
                partition: partition.parse().ok().filter(|p| *p >= 0)?,
                high_watermark: hw.parse().ok().filter(|h| *h >= 0)?,
            }),
            _ => None,
        }
    }
}
impl LogManager {
    /// Write `replication-offset-checkpoint` (Kafka's file, one per data
    /// directory: `topic partition high_watermark` per line) with the high
    /// watermark of every replicated partition, so a restart resumes from them
    /// rather than from zero. Nothing is written on a single broker.
    pub fn checkpoint_high_watermarks(&self) -> std::io::Result<()> {
        let entries: Vec<HighWatermarkEntry> = self
            .read_topics()
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| {
                Some(HighWatermarkEntry {
                    topic: p.topic.clone(),
                    partition: p.index,
                    high_watermark: p.replicated_high_watermark()?,
                })
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        checkpoint::write(&self.dir.join(REPLICATION_CHECKPOINT), &entries)
    }

    /// The high watermarks `replication-offset-checkpoint` records, by
    /// partition (empty without the file; a damaged file is reported and
    /// ignored: followers learn the high watermark from their leader again).
    pub fn checkpointed_high_watermarks(&self) -> HashMap<(String, i32), i64> {
        let path = self.dir.join(REPLICATION_CHECKPOINT);
        match checkpoint::read::<HighWatermarkEntry>(&path) {
            Ok(entries) => entries
                .unwrap_or_default()
                .into_iter()
                .map(|e| ((e.topic, e.partition), e.high_watermark))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the replication offset checkpoint");
                HashMap::new()
            }
        }
    }
}

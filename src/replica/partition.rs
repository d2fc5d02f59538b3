//! Leadership as requests see it: whether this broker leads a partition, and the
//! check of the leader epoch a request names (KIP-320). A client that acted on
//! metadata from before a leader change is told so (FENCED_LEADER_EPOCH) and
//! refreshes; one that is ahead of this broker (UNKNOWN_LEADER_EPOCH) retries.

use crate::cluster::metadata_cache::PartitionMetadata;
use crate::error::{Error, Result};

/// The leader epoch a request names when it has none to check (Kafka's
/// `RecordBatch.NO_PARTITION_LEADER_EPOCH`): kafkajs, Fetch before v9, Produce.
pub const NO_LEADER_EPOCH: i32 = -1;

/// Check that `node` leads the partition described by `state`, at the epoch a
/// request names: −1 skips the epoch check, an older one is fenced, a newer one
/// unknown here.
pub fn check_leader(state: &PartitionMetadata, node: i32, topic: &str, requested_epoch: i32) -> Result<()> {
    let partition = state.index;
    if state.leader != node {
        return Err(Error::NotLeaderOrFollower {
            topic: topic.to_string(),
            partition,
        });
    }
    let current = state.leader_epoch;
    match requested_epoch {
        NO_LEADER_EPOCH => Ok(()),
        requested if requested < current => Err(Error::FencedLeaderEpoch {
            topic: topic.to_string(),
            partition,
            requested,
            current,
        }),
        requested if requested > current => Err(Error::UnknownLeaderEpoch {
            topic: topic.to_string(),
            partition,
            requested,
            current,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(state: &PartitionMetadata, node: i32, requested: i32) -> i16 {
        check_leader(state, node, "t", requested).map_or_else(|e| e.wire_code(), |_| 0)
    }

    #[test]
    fn the_leader_epoch_matrix() {
        // A single broker's partition: led by node 1 at epoch 0.
        let sole = PartitionMetadata::sole(0, 1);
        assert_eq!(code(&sole, 1, -1), 0, "no epoch to check");
        assert_eq!(code(&sole, 1, 0), 0, "the current epoch");
        assert_eq!(code(&sole, 1, 1), 75, "newer than known: UNKNOWN_LEADER_EPOCH");
        assert_eq!(code(&sole, 1, -2), 74, "older: FENCED_LEADER_EPOCH");
        // After leader changes, epoch 5.
        let moved = PartitionMetadata {
            leader_epoch: 5,
            ..sole.clone()
        };
        assert_eq!(code(&moved, 1, 4), 74);
        assert_eq!(code(&moved, 1, 5), 0);
        assert_eq!(code(&moved, 1, 6), 75);
        // Another broker leads (or none does): NOT_LEADER_OR_FOLLOWER first.
        assert_eq!(code(&moved, 2, 5), 6);
        let offline = PartitionMetadata { leader: -1, ..sole };
        assert_eq!(code(&offline, 1, -1), 6);
    }
}

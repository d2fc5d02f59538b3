//! Transactions (KIP-98, KIP-360, KIP-447): the transaction coordinator's state
//! and its durable form. Built up in steps; see docs/notes/kafka-transactions.md.
//!
//! - [`coordinator`]: the decisions: InitProducerId, AddPartitionsToTxn, EndTxn,
//!   timeouts, markers through one interface.
//! - [`state`]: a transactional id's metadata and Kafka's legal transitions.
//! - [`record_serde`]: the `__transaction_state` records they are kept in.
//! - [`state_manager`]: that topic as the durable store of every id.
//! - [`partition_for`]: which `__transaction_state` partition (so which
//!   coordinator) owns a transactional id.

pub mod coordinator;
pub mod record_serde;
pub mod state;
pub mod state_manager;

/// The `__transaction_state` partition of `transactional_id` among `partitions`:
/// Kafka's `abs(String.hashCode) % partitions`, the hash over UTF-16 code units
/// with Java's wrapping arithmetic, and `abs(i32::MIN)` taken as 0 (Kafka's
/// `Utils.abs`), so clients and tools agree with Kafka on where an id lives.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    let hash = transactional_id
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_kafkas_partitions() {
        // Computed with Java's String.hashCode (docs/notes/kafka-transactions.md).
        assert_eq!(partition_for("txn-1", 50), 10);
        assert_eq!(partition_for("my-transactional-id", 50), 46);
        assert_eq!(partition_for("é", 50), 33);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }
}

//! Kafka's placement of a coordinator key on its internal topic's partitions.

/// The partition of `key` among `partitions`, as Kafka places a group id on
/// `__consumer_offsets` and a transactional id on `__transaction_state`:
/// `abs(String.hashCode) % partitions`, the hash over UTF-16 code units with
/// Java's wrapping arithmetic, and `abs(i32::MIN)` taken as 0 (Kafka's
/// `Utils.abs`). Clients and tools agree with Kafka on where a key lives, so a
/// cluster's coordinators are where a Kafka user expects them.
pub fn coordinator_partition(key: &str, partitions: i32) -> i32 {
    let hash = key
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_kafkas_partitions() {
        // Computed with Java's String.hashCode (docs/notes/kafka-transactions.md,
        // docs/design/cluster-on-etcd.md).
        assert_eq!(coordinator_partition("txn-1", 50), 10);
        assert_eq!(coordinator_partition("my-transactional-id", 50), 46);
        assert_eq!(coordinator_partition("é", 50), 33);
        assert_eq!(coordinator_partition("polygenelubricants", 50), 0);
        assert_eq!(coordinator_partition("my-group", 50), 12);
        assert_eq!(coordinator_partition("console-consumer-1", 50), 24);
        assert_eq!(coordinator_partition("shop-orders", 50), 44);
        // One partition (a single broker's __consumer_offsets): always 0.
        assert_eq!(coordinator_partition("my-group", 1), 0);
        assert_eq!(coordinator_partition("anything", 0), 0);
    }
}

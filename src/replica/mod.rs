//! Kafka's ReplicaManager: the one place between the request handlers and the
//! log where "append to a partition and wait for the acks asked for" and "read
//! from a partition, waiting for enough bytes" happen. On one broker an
//! acknowledgement waits for at most an fsync; with replication it will wait for
//! the in-sync followers here too, and fetches will also be woken when the high
//! watermark moves.

mod apply;
pub mod delayed_fetch;
mod fetch;
pub mod fetcher;
mod leader;
pub mod partition;
pub mod replica_manager;
pub mod selector;

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

/// The `__transaction_state` partition of `transactional_id` among `partitions`
/// (Kafka's hash, shared with group ids: [`crate::util::hash::coordinator_partition`]).
pub use crate::util::hash::coordinator_partition as partition_for;

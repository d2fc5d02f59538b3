//! Consumer groups: Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), the consumer protocol of KIP-848 ([`consumer`]), and committed
//! offsets, kept durably in `__consumer_offsets`.

pub mod assignment;
pub mod consumer;
pub mod coordinator;
pub mod member;
pub mod record_serde;
pub mod router;
pub mod shard_log;
pub mod state;

#[cfg(test)]
mod tests;

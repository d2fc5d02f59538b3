//! Consumer groups: Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) and committed offsets, kept durably in `__consumer_offsets`.

pub mod assignment;
pub mod coordinator;
pub mod member;
pub mod record_serde;
pub mod state;

#[cfg(test)]
mod tests;

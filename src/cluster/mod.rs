//! Broker identity: node id, cluster id, and producer-id allocation.

pub mod metadata;
pub mod producer_ids;

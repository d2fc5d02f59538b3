//! Broker identity: node id, cluster id, and producer-id allocation.

pub mod meta_properties;
pub mod metadata_cache;
pub mod producer_ids;

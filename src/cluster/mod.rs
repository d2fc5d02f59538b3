//! Broker identity: node id, cluster id, producer-id allocation, and the broker
//! configs changed at run time.

pub mod dynamic_config;
pub mod meta_properties;
pub mod metadata_cache;
pub mod producer_ids;

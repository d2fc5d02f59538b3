//! Broker identity: node id, cluster id, producer-id allocation, the broker
//! configs changed at run time, and (with `metadata.store`) the cluster's
//! metadata in etcd: broker registrations and the view every broker keeps of
//! them (docs/design/cluster-on-etcd.md).

pub mod controller;
pub mod documents;
pub mod dynamic_config;
#[cfg(feature = "cluster")]
pub mod etcd;
pub mod image;
pub mod meta_properties;
pub mod metadata_cache;
pub mod producer_ids;
pub mod registration;

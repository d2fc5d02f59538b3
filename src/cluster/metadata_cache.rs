//! What this broker knows about the cluster and tells clients in Metadata:
//! its listeners and the addresses advertised for them. (Kafka's MetadataCache.)

use std::net::SocketAddr;

/// A bound listener and the address clients connecting through it are told to use.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub bound: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: i32,
}

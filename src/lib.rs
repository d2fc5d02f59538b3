//! strom: a Kafka-compatible message broker.
//!
//! The layers, top down (each uses only those below it; `tests/layers.rs` checks):
//! - [`server`]: listeners, one task per connection, responses in request order,
//!   starting and stopping a broker.
//! - [`handlers`]: THE table of APIs, and one file per Kafka API: decode → call → respond.
//! - [`protocol`]: frames, request headers, the codec, zero-copy response frames.
//! - [`broker`]: the state handlers reach, and its background tasks.
//! - [`security`]: TLS, principals, SASL mechanisms and SCRAM credentials, ACLs.
//! - [`quota`]: client quotas (byte rates, request time, connection rates).
//! - [`replica`]: Kafka's ReplicaManager: append with acks, fetch with waits.
//! - [`group`]: the group coordinator (classic protocol) and `__consumer_offsets`.
//! - [`cluster`]: broker identity, producer ids, the metadata cache.
//! - [`log`]: the log store (LogManager, UnifiedLog, LogSegment, indexes).
//! - [`record`]: the record-batch format, a leaf. [`util`]: files, clock, UUIDs.
//!
//! docs/ARCHITECTURE.md walks a produce and a fetch through these files.

pub mod broker;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod group;
pub mod handlers;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod quota;
pub mod record;
pub mod replica;
pub mod security;
pub mod server;
pub mod trace;
pub mod txn;
pub mod util;

pub use config::Config;
pub use server::{start, RunningBroker};

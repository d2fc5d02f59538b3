//! strom: a Kafka-compatible message broker.
//!
//! The data path, layer by layer (each talks only to the one below it):
//! - [`protocol`]: TCP bytes → frames → request headers; record batches as opaque bytes.
//! - [`server`]: one task per connection; responses in request order; shutdown.
//! - [`handlers`]: one file per Kafka API; decode → validate → call the domain → respond.
//! - [`log`]: the record-batch log store (LogManager, UnifiedLog, LogSegment, indexes).
//! - [`group`]: the group coordinator (classic protocol) and committed offsets.
//! - [`cluster`]: broker identity and producer ids.

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
pub mod protocol;
pub mod record;
pub mod replica;
pub mod server;
pub mod util;

pub use config::Config;
pub use server::{start, RunningBroker};

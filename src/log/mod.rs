//! The record-batch log store, in Kafka's vocabulary: a [`manager::LogManager`]
//! owns topics; each partition is a [`unified_log::UnifiedLog`] made of
//! [`segment`]s, each with an [`offset_index`] and a [`time_index`].

pub mod browse;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod epoch_cache;
pub(crate) mod index_file;
pub mod log_validator;
pub mod manager;
pub mod offset_index;
pub mod producer_state;
pub mod segment;
pub mod time_index;
pub mod txn_index;
pub mod unified_log;

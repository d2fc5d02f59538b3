//! Small helpers with no Kafka knowledge: files, the clock, UUID text, and
//! Java-style properties files.

pub mod clock;
pub mod fs;
pub mod fsync_timing;
pub mod hash;
pub mod properties;
pub mod uuid;

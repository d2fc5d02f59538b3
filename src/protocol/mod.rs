//! The wire: frames, request headers, and record-batch views. Raw bytes never leave
//! this layer except as opaque record batches.

pub mod batch_records;
pub mod compression;
pub mod frame;
pub mod header;
pub mod records;

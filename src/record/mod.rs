//! Kafka's record-batch format (magic v2): what producers send, what the log
//! stores byte for byte, and what fetchers get back. A leaf: the wire, the log,
//! the coordinators and the CLI all use it, and it uses none of them.
//!
//! - [`batch`]: the 61-byte batch header (named field offsets), framing, the CRC,
//!   and the few in-place edits a broker makes (offsets, log-append time).
//! - [`records`]: the records inside a batch, walked in place with one bounded
//!   walker; rebuilding a batch from some of its records (the cleaner).
//! - [`compression`]: bounded decompression per codec.
//! - [`control`]: transaction markers (control batches).
//! - [`fields`]: the string fields of the coordinators' records.
//! - [`legacy`]: message sets v0/v1, converted to v2 on produce and back on fetch
//!   for the clients that still use them.
//! - [`reader`]: the one big-endian and varint reader everything here parses with.
//! - [`file_slice`]: a range of a file holding whole batches, sent by `sendfile`.

pub mod batch;
pub mod compression;
pub mod control;
pub mod fields;
pub mod file_slice;
pub mod legacy;
pub mod reader;
pub mod records;
#[doc(hidden)]
pub mod testing;

//! The wire: frames, request headers, and response frames. Record batches pass
//! through as opaque bytes (their format is [`crate::record`]'s).

pub mod codec;
pub mod frame;
pub mod header;
pub mod legacy;
pub mod response;

//! Writing the plain (non-flexible) fields of Kafka's coordinator records
//! (`__consumer_offsets`, `__transaction_state`): strings with an i16 length.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};

/// A string longer than its i16 length prefix can say. Writing it anyway would
/// let its bytes be read back as other fields (a forged commit, say), so the
/// record is refused instead.
pub fn too_long(what: &str) -> Error {
    Error::InvalidRequest(format!("{what} longer than {} bytes", i16::MAX))
}

pub fn put_string(b: &mut BytesMut, s: &str) -> Result<()> {
    let len = i16::try_from(s.len()).map_err(|_| too_long("a group, member, topic, protocol or transactional id"))?;
    b.put_i16(len);
    b.put_slice(s.as_bytes());
    Ok(())
}

pub fn put_nullable_string(b: &mut BytesMut, s: Option<&str>) -> Result<()> {
    match s {
        Some(s) => put_string(b, s),
        None => {
            b.put_i16(-1);
            Ok(())
        }
    }
}

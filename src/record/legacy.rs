//! Message sets v0 and v1 (magic 0 and 1), the record format before v2 batches
//! (KIP-98): what Produce v0–2 may carry and Fetch v0–3 must answer with.
//!
//! ```text
//! offset: int64        absolute (the wrapper's, in a compressed set: its last)
//! message_size: int32
//! crc: uint32          CRC-32 (IEEE) of everything after it
//! magic: int8          0 or 1
//! attributes: int8     bits 0–2 codec; bit 3 (v1) LogAppendTime
//! timestamp: int64     v1 only
//! key: bytes           int32 length, −1 for null
//! value: bytes         a compressed message's value is a message set itself
//! ```
//!
//! As Kafka did, the broker stores only v2: a produced message set is converted to
//! one v2 batch (with the codec it was compressed with) before the append, and v2
//! batches are converted to messages of the fetcher's magic when it reads them.

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{self, CODEC_MASK};
use super::compression;
use super::reader::ByteReader;
use super::records::{self, build_compressed_batch, NewRecord, Walk};
use crate::error::{Error, Result};

/// Where a message's magic byte is: after offset, size and CRC.
const MAGIC_AT: usize = 16;
/// The timestamp-type bit of a v1 message's attributes (set: LogAppendTime).
const LOG_APPEND_TIME: i8 = 0x08;

/// Whether `records` is a v0/v1 message set (rather than v2 batches).
pub fn is_message_set(records: &[u8]) -> bool {
    matches!(records.get(MAGIC_AT), Some(0 | 1))
}

/// One message of a set, pointing into it.
struct Message<'a> {
    magic: i8,
    attributes: i8,
    /// −1 ("none") for v0.
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn truncated() -> Error {
    Error::CorruptMessage("message set is truncated")
}

/// Every message of `set`, CRC checked, in order.
fn messages<'a>(set: &'a [u8], mut f: impl FnMut(Message<'a>) -> Result<()>) -> Result<()> {
    let mut r = ByteReader::new(set);
    while !r.is_empty() {
        r.i64().ok_or_else(truncated)?; // offset: the broker assigns its own
        let size = usize::try_from(r.i32().ok_or_else(truncated)?).map_err(|_| truncated())?;
        let mut m = ByteReader::new(r.take(size).ok_or_else(truncated)?);
        let crc = m.u32().ok_or_else(truncated)?;
        if crc32(m.rest()) != crc {
            return Err(Error::CorruptMessage("message CRC mismatch"));
        }
        let magic = m.i8().ok_or_else(truncated)?;
        if !(0..=1).contains(&magic) {
            return Err(Error::CorruptMessage("unknown message magic"));
        }
        let attributes = m.i8().ok_or_else(truncated)?;
        let timestamp = if magic == 1 { m.i64().ok_or_else(truncated)? } else { -1 };
        let key = bytes_field(&mut m)?;
        let value = bytes_field(&mut m)?;
        if !m.is_empty() {
            return Err(Error::CorruptMessage("message longer than its fields"));
        }
        f(Message {
            magic,
            attributes,
            timestamp,
            key,
            value,
        })?;
    }
    Ok(())
}

fn bytes_field<'a>(r: &mut ByteReader<'a>) -> Result<Option<&'a [u8]>> {
    match r.i32().ok_or_else(truncated)? {
        -1 => Ok(None),
        n => Ok(Some(
            r.take(usize::try_from(n).map_err(|_| truncated())?)
                .ok_or_else(truncated)?,
        )),
    }
}

fn crc32(b: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(b);
    crc.sum()
}

/// A produced v0/v1 message set as one v2 batch, compressed as the set was (its
/// compressed messages' codec), holding at most `max_uncompressed` bytes of
/// decompressed messages. v0 messages have no timestamp (−1); the messages of a
/// compressed v1 message keep their own.
pub fn up_convert(set: &[u8], max_uncompressed: u64) -> Result<Vec<u8>> {
    let mut records = Vec::new();
    let mut codec = compression::NONE;
    let mut budget = max_uncompressed;
    let record = |m: &Message<'_>, timestamp: i64| NewRecord {
        key: m.key.map(Bytes::copy_from_slice),
        value: m.value.map(Bytes::copy_from_slice),
        timestamp,
    };
    messages(set, |wrapper| {
        let wrapper_codec = i16::from(wrapper.attributes) & CODEC_MASK;
        if wrapper_codec == compression::NONE {
            records.push(record(&wrapper, wrapper.timestamp));
            return Ok(());
        }
        codec = wrapper_codec;
        let compressed = wrapper
            .value
            .ok_or(Error::CorruptMessage("compressed message without a value"))?;
        let mut plain = Vec::new();
        compression::reader(wrapper_codec, compressed, budget)?
            .read_to_end(&mut plain)
            .map_err(compression::read_error)?;
        budget = budget.saturating_sub(plain.len() as u64);
        let wrapper_log_append_time = wrapper.magic == 1 && wrapper.attributes & LOG_APPEND_TIME != 0;
        messages(&plain, |inner| {
            if i16::from(inner.attributes) & CODEC_MASK != compression::NONE {
                return Err(Error::InvalidRecord("a compressed message holds a compressed message"));
            }
            let timestamp = if wrapper_log_append_time {
                wrapper.timestamp
            } else {
                inner.timestamp
            };
            records.push(record(&inner, timestamp));
            Ok(())
        })
    })?;
    if records.is_empty() {
        return Err(Error::InvalidRecord("message set holds no messages"));
    }
    build_compressed_batch(&records, None, codec)
}

/// The records at or after `from_offset` of the v2 batches in `data`, as an
/// uncompressed message set of `magic` (0 or 1) for an old fetcher. Transaction
/// markers are left out and headers dropped (the old formats have neither), as in
/// Kafka's down-conversion.
pub fn down_convert(data: &[u8], magic: i8, from_offset: i64) -> Result<Bytes> {
    let mut out = BytesMut::new();
    for (at, header) in batch::Batches::new(data) {
        if header.is_control() {
            continue;
        }
        let batch = &data[at..at + header.total_size()];
        let log_append_time = header.is_log_append_time();
        records::walk(batch, &header, records::max_uncompressed(batch.len()), |r| {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < from_offset {
                return Ok(Walk::Continue);
            }
            let timestamp = if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp.saturating_add(r.timestamp_delta)
            };
            put_message(&mut out, offset, magic, log_append_time, timestamp, r.key, r.value);
            Ok(Walk::Continue)
        })?;
    }
    Ok(out.freeze())
}

/// Append one uncompressed message of `magic` to `out`.
fn put_message(
    out: &mut BytesMut,
    offset: i64,
    magic: i8,
    log_append_time: bool,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    out.put_i64(offset);
    let size_at = out.len();
    out.put_i32(0);
    out.put_u32(0); // the CRC, once the rest is written
    let body_at = out.len();
    out.put_i8(magic);
    out.put_i8(if magic == 1 && log_append_time {
        LOG_APPEND_TIME
    } else {
        0
    });
    if magic == 1 {
        out.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            Some(b) => {
                out.put_i32(b.len() as i32);
                out.put_slice(b);
            }
            None => out.put_i32(-1),
        }
    }
    let size = (out.len() - size_at - 4) as i32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    let crc = crc32(&out[body_at..]);
    out[body_at - 4..body_at].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::batch::next_batch;
    use crate::record::records::records;

    fn message_set(magic: i8, messages: &[(Option<&str>, &str, i64)], first_offset: i64) -> BytesMut {
        let mut out = BytesMut::new();
        for (i, (k, v, ts)) in messages.iter().enumerate() {
            let key = k.map(str::as_bytes);
            put_message(
                &mut out,
                first_offset + i as i64,
                magic,
                false,
                *ts,
                key,
                Some(v.as_bytes()),
            );
        }
        out
    }

    /// One compressed message holding `inner`, as old clients wrap a batch.
    fn wrapped(magic: i8, codec: i16, inner: &[u8]) -> BytesMut {
        let compressed = match codec {
            compression::GZIP => {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(inner).unwrap();
                e.finish().unwrap()
            }
            compression::SNAPPY => snap::raw::Encoder::new().compress_vec(inner).unwrap(),
            _ => unreachable!(),
        };
        let mut out = BytesMut::new();
        put_message(&mut out, 0, magic, false, 1_700_000_000_000, None, Some(&compressed));
        let attributes_at = 8 + 4 + 4 + 1;
        out[attributes_at] = codec as u8;
        let crc = crc32(&out[16..]);
        out[12..16].copy_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn plain_and_compressed_message_sets_become_one_v2_batch() {
        let msgs = [(Some("a"), "1", 1_700_000_000_001), (None, "2", 1_700_000_000_002)];
        for magic in [0, 1] {
            let plain = message_set(magic, &msgs, 0);
            assert!(is_message_set(&plain));
            for (set, codec) in [
                (plain.clone(), compression::NONE),
                (wrapped(magic, compression::GZIP, &plain), compression::GZIP),
                (wrapped(magic, compression::SNAPPY, &plain), compression::SNAPPY),
            ] {
                let batch = Bytes::from(up_convert(&set, 1 << 20).unwrap());
                let h = next_batch(&batch).unwrap().unwrap();
                assert_eq!(h.attributes & CODEC_MASK, codec, "magic {magic}");
                let rs = records(&batch, &h).unwrap();
                assert_eq!(rs.len(), 2);
                assert_eq!(rs[0].key.as_deref(), Some(&b"a"[..]));
                assert!(rs[1].key.is_none());
                assert_eq!(rs[1].value.as_deref(), Some(&b"2"[..]));
                let ts = h.base_timestamp + rs[1].timestamp_delta;
                assert_eq!(ts, if magic == 0 { -1 } else { 1_700_000_000_002 });
            }
        }
    }

    #[test]
    fn v2_batches_read_back_as_message_sets_from_the_fetch_offset() {
        let msgs = [(Some("a"), "1", 1_700_000_000_001), (Some("b"), "2", 1_700_000_000_002)];
        let mut batch = up_convert(&message_set(1, &msgs, 0), 1 << 20).unwrap();
        batch::assign_offsets(&mut batch, 40, 0);
        for magic in [0, 1] {
            let set = down_convert(&batch, magic, 41).unwrap();
            // Only offset 41, and converting it back gives the same record.
            assert_eq!(&set[..8], &41i64.to_be_bytes());
            assert_eq!(set[MAGIC_AT], magic as u8);
            let again = Bytes::from(up_convert(&set, 1 << 20).unwrap());
            let h = next_batch(&again).unwrap().unwrap();
            let rs = records(&again, &h).unwrap();
            assert_eq!(rs.len(), 1);
            assert_eq!(rs[0].key.as_deref(), Some(&b"b"[..]));
        }
    }

    #[test]
    fn corrupt_sets_are_refused() {
        let mut set = message_set(1, &[(Some("a"), "1", 1)], 0);
        assert!(up_convert(&set[..set.len() - 1], 1 << 20).is_err(), "truncated");
        let last = set.len() - 1;
        set[last] ^= 1;
        assert!(
            matches!(up_convert(&set, 1 << 20), Err(Error::CorruptMessage(_))),
            "CRC"
        );
        let nested = wrapped(
            1,
            compression::GZIP,
            &wrapped(1, compression::GZIP, &message_set(1, &[(None, "x", 1)], 0)),
        );
        assert!(matches!(up_convert(&nested, 1 << 20), Err(Error::InvalidRecord(_))));
        assert!(up_convert(&[], 1 << 20).is_err());
    }
}

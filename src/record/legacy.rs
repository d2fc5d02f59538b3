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

use super::batch::{self, BatchHeader, CODEC_MASK};
use super::compression;
use super::reader::ByteReader;
use super::records::{self, Walk};
use crate::error::{Error, RejectedRecords, Result};

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
/// compressed v1 message keep their own. Records are written straight into the
/// batch's records section, one pass, no per-record allocation.
pub fn up_convert(set: &[u8], max_uncompressed: u64) -> Result<Vec<u8>> {
    let mut section = RecordsSection::default();
    let mut codec = compression::NONE;
    let mut budget = max_uncompressed;
    messages(set, |wrapper| {
        let wrapper_codec = i16::from(wrapper.attributes) & CODEC_MASK;
        if wrapper_codec == compression::NONE {
            return section.push(&wrapper, wrapper.timestamp);
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
            section.push(&inner, timestamp)
        })
    })?;
    section.finish(codec)
}

/// The records section of the v2 batch a message set becomes, being written.
#[derive(Default)]
struct RecordsSection {
    plain: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// Messages with a negative timestamp other than −1 ("none"), which Kafka
    /// refuses (INVALID_TIMESTAMP).
    bad_timestamps: RejectedRecords,
}

impl RecordsSection {
    fn push(&mut self, m: &Message<'_>, timestamp: i64) -> Result<()> {
        if timestamp < -1 {
            self.bad_timestamps
                .push(self.count, || format!("Invalid negative timestamp {timestamp}"));
            self.bad_timestamps.any_timestamp = true;
        }
        if self.count == 0 {
            (self.base_timestamp, self.max_timestamp) = (timestamp, timestamp);
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let delta = timestamp.wrapping_sub(self.base_timestamp);
        records::put_record(&mut self.plain, delta, self.count, m.key, m.value);
        self.count = self
            .count
            .checked_add(1)
            .ok_or(Error::InvalidRecord("message set holds too many messages"))?;
        Ok(())
    }

    fn finish(self, codec: i16) -> Result<Vec<u8>> {
        if !self.bad_timestamps.is_empty() {
            return Err(Error::RejectedRecords(self.bad_timestamps));
        }
        if self.count == 0 {
            return Err(Error::InvalidRecord("message set holds no messages"));
        }
        let header = BatchHeader::of_records(self.count, self.base_timestamp, self.max_timestamp);
        Ok(records::rebuild_with_codec(&header, &self.plain, self.count as usize, codec, None)?.to_vec())
    }
}

/// The records at or after `from_offset` of the v2 batches in `data`, as an
/// uncompressed message set of `magic` (0 or 1) for an old fetcher. Transaction
/// markers are left out and headers dropped (the old formats have neither), as in
/// Kafka's down-conversion. Decompressed records can be far larger than what was
/// read: the set stops at `limit` bytes (but holds at least one message), and the
/// client asks again from where it ends.
pub fn down_convert(data: &[u8], magic: i8, from_offset: i64, limit: usize) -> Result<Bytes> {
    let mut out = BytesMut::new();
    for (at, header) in batch::Batches::new(data) {
        if out.len() >= limit {
            break;
        }
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
            if !out.is_empty() && out.len() + r.raw.len() + 34 > limit {
                return Ok(Walk::Stop);
            }
            let timestamp = if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(r.timestamp_delta)
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
            let set = down_convert(&batch, magic, 41, 1 << 20).unwrap();
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

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn old_fetches_stop_at_the_limit_but_hold_one_message() {
        let mut set = BytesMut::new();
        for i in 0..100 {
            put_message(&mut set, i, 1, false, 1_000 + i, Some(b"k"), Some(&[7u8; 1000]));
        }
        let mut batch = up_convert(&set, 1 << 20).unwrap();
        batch::assign_offsets(&mut batch, 0, 0);
        let converted = down_convert(&batch, 1, 0, 10_000).unwrap();
        assert!(
            converted.len() <= 10_000 && converted.len() > 8_000,
            "{}",
            converted.len()
        );
        let one = down_convert(&batch, 1, 5, 1).unwrap();
        assert_eq!(&one[..8], &5i64.to_be_bytes(), "at least one message");
        assert!(one.len() < 1100);
    }

    #[test]
    fn negative_timestamps_other_than_none_are_refused() {
        let mut set = BytesMut::new();
        put_message(&mut set, 0, 1, false, -1, None, Some(b"none is fine"));
        put_message(&mut set, 1, 1, false, i64::MIN, None, Some(b"x"));
        put_message(&mut set, 2, 1, false, -5, None, Some(b"y"));
        match up_convert(&set, 1 << 20) {
            Err(Error::RejectedRecords(r)) => {
                assert!(r.any_timestamp);
                assert_eq!(r.indexes, [1, 2]);
            }
            other => panic!("{other:?}"),
        }
        // −1 and the largest timestamp together: the delta wraps, as in Kafka's
        // batches, and reads back exactly.
        let mut set = BytesMut::new();
        put_message(&mut set, 0, 1, false, -1, None, Some(b"a"));
        put_message(&mut set, 1, 1, false, i64::MAX, None, Some(b"b"));
        let batch = up_convert(&set, 1 << 20).unwrap();
        let back = down_convert(&batch, 1, 0, 1 << 20).unwrap();
        let second_ts = &back[back.len() - 4 - 1 - 4 - 8..][..8];
        assert_eq!(second_ts, &i64::MAX.to_be_bytes());
    }
}

//! The records inside a batch, for the few features that need them: keys on
//! compacted topics, and the log cleaner. Records are walked in place and kept as
//! their original bytes, never decoded into a struct and re-encoded, so nothing a
//! client wrote (duplicate header keys included) can be altered.
//!
//! Record layout (varints are zigzag, as in Kafka):
//!
//! ```text
//! length: varint          bytes after this field
//! attributes: int8        unused
//! timestamp_delta: varlong
//! offset_delta: varint
//! key_length: varint      −1 for a null key
//! key: bytes
//! value_length: varint    −1 for a null value (a tombstone)
//! value: bytes
//! header_count: varint, then per header key_length, key, value_length, value
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::records::{BatchHeader, BATCH_HEADER_LEN};
use crate::error::{Error, Result};

/// One record, pointing into the (decompressed) records section.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub value_is_null: bool,
    /// The whole record, length prefix included, exactly as stored.
    pub raw: Bytes,
}

fn zigzag(buf: &mut Bytes) -> Result<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return Err(Error::CorruptMessage("truncated varint in a record"));
        }
        let b = buf.get_u8();
        value |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(Error::CorruptMessage("varint too long in a record"))
}

fn take(buf: &mut Bytes, len: i64) -> Result<Option<Bytes>> {
    if len < 0 {
        return Ok(None);
    }
    if (buf.remaining() as i64) < len {
        return Err(Error::CorruptMessage("record field longer than its record"));
    }
    Ok(Some(buf.split_to(len as usize)))
}

const CODEC_MASK: i16 = 0x07;

/// The records section of a batch, decompressed.
pub fn records_section(batch: &Bytes, header: &BatchHeader) -> Result<Bytes> {
    let mut section = batch.slice(BATCH_HEADER_LEN..header.total_size());
    let fail = |_| Error::CorruptMessage("record batch does not decompress");
    let whole = |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()));
    Ok(match header.attributes & CODEC_MASK {
        0 => section,
        1 => Gzip::decompress(&mut section, whole).map_err(fail)?,
        2 => Snappy::decompress(&mut section, whole).map_err(fail)?,
        3 => Lz4::decompress(&mut section, whole).map_err(fail)?,
        4 => Zstd::decompress(&mut section, whole).map_err(fail)?,
        _ => return Err(Error::CorruptMessage("unknown compression codec")),
    })
}

/// Every record of a batch.
pub fn records(batch: &Bytes, header: &BatchHeader) -> Result<Vec<RecordView>> {
    let mut section = records_section(batch, header)?;
    let mut out = Vec::with_capacity((header.records_count.max(0) as usize).min(section.len()));
    for _ in 0..header.records_count {
        let start = section.clone();
        let length = zigzag(&mut section)?;
        let prefix = start.len() - section.len();
        let mut body = take(&mut section, length)?.ok_or(Error::CorruptMessage("negative record length"))?;
        let raw = start.slice(..prefix + length as usize);
        if !body.has_remaining() {
            return Err(Error::CorruptMessage("empty record"));
        }
        body.advance(1); // attributes
        let timestamp_delta = zigzag(&mut body)?;
        let offset_delta = zigzag(&mut body)? as i32;
        let key_len = zigzag(&mut body)?;
        let key = take(&mut body, key_len)?;
        let value_len = zigzag(&mut body)?;
        let value = take(&mut body, value_len)?;
        out.push(RecordView {
            offset_delta,
            timestamp_delta,
            key,
            value_is_null: value.is_none(),
            value,
            raw,
        });
    }
    Ok(out)
}

/// A copy of `batch` holding only `kept` of its records (their raw bytes, in order),
/// compressed again with the batch's own codec, with a new CRC. The batch keeps its
/// base offset, timestamps, last offset delta and producer fields, so offsets and
/// idempotence state stay as they were.
pub fn rebuild(batch: &Bytes, header: &BatchHeader, kept: &[RecordView]) -> Result<Bytes> {
    let mut plain = BytesMut::new();
    for r in kept {
        plain.put_slice(&r.raw);
    }
    let mut section = BytesMut::new();
    let fail = |_| Error::CorruptMessage("record batch does not compress");
    let fill = |out: &mut BytesMut| {
        out.put_slice(&plain);
        Ok(())
    };
    match header.attributes & CODEC_MASK {
        0 => section.put_slice(&plain),
        1 => Gzip::compress(&mut section, fill).map_err(fail)?,
        2 => Snappy::compress(&mut section, fill).map_err(fail)?,
        3 => Lz4::compress(&mut section, fill).map_err(fail)?,
        4 => Zstd::compress(&mut section, fill).map_err(fail)?,
        _ => return Err(Error::CorruptMessage("unknown compression codec")),
    }
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + section.len());
    out.put_slice(&batch[..BATCH_HEADER_LEN]);
    out.put_slice(&section);
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{self, build_batch, NewRecord};

    fn batch_with(keys: &[Option<&str>], codec: kafka_protocol::records::Compression) -> Bytes {
        use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
        let recs: Vec<Record> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: 1000 + i as i64,
                key: k.map(|k| Bytes::from(k.to_string())),
                value: if i == 1 {
                    None
                } else {
                    Some(Bytes::from(format!("v{i}")))
                },
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions {
                version: 2,
                compression: codec,
            },
        )
        .unwrap();
        buf.freeze()
    }

    #[test]
    fn walks_records_of_every_codec_and_rebuilds_a_subset() {
        use kafka_protocol::records::Compression as C;
        for codec in [C::None, C::Gzip, C::Snappy, C::Lz4, C::Zstd] {
            let b = batch_with(&[Some("a"), Some("b"), None, Some("d")], codec);
            let h = records::next_batch(&b).unwrap().unwrap();
            let rs = records(&b, &h).unwrap();
            assert_eq!(rs.len(), 4, "{codec:?}");
            assert_eq!(rs[0].key.as_deref(), Some(&b"a"[..]));
            assert!(rs[1].value_is_null);
            assert!(rs[2].key.is_none());
            assert_eq!(rs[3].offset_delta, 3);
            assert_eq!(rs[3].timestamp_delta, 3);
            let kept = vec![rs[0].clone(), rs[3].clone()];
            let rebuilt = rebuild(&b, &h, &kept).unwrap();
            let h2 = records::next_batch(&rebuilt).unwrap().unwrap();
            assert_eq!(h2.records_count, 2);
            assert_eq!(h2.last_offset(), h.last_offset(), "the last offset is kept");
            assert_eq!(h2.attributes, h.attributes, "same codec");
            assert_eq!(crc32c::crc32c(&rebuilt[21..]), h2.crc);
            let again = records(&rebuilt, &h2).unwrap();
            assert_eq!(again.iter().map(|r| r.offset_delta).collect::<Vec<_>>(), vec![0, 3]);
        }
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let b = Bytes::from(build_batch(
            &[NewRecord {
                key: Some("k".into()),
                value: Some("v".into()),
                timestamp: 0,
            }],
            None,
        ));
        let mut h = records::next_batch(&b).unwrap().unwrap();
        h.records_count = 3;
        assert!(records(&b, &h).is_err());
    }
}

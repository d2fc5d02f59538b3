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

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as EncoderRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::{BatchHeader, BATCH_HEADER_LEN, CODEC_MASK};
use super::compression;
use super::reader::{ByteReader, VARINT_MAX, VARLONG_MAX};
use crate::error::{Error, Result};

/// One record, pointing into the batch (uncompressed) or the walker's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The headers section (count, then key/value pairs), checked well formed.
    pub headers: &'a [u8],
    /// The whole record, length prefix included, exactly as stored.
    pub raw: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's headers: (key, value) in order.
    pub fn headers(&self) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
        let mut body = ByteReader::new(self.headers);
        let count = varint(&mut body, VARINT_MAX).unwrap_or(0);
        let mut out = Vec::new();
        for _ in 0..count {
            match (field(&mut body), field(&mut body)) {
                (Ok(Some(key)), Ok(value)) => out.push((key, value)),
                _ => break,
            }
        }
        out
    }
}

/// An owned copy of a [`Record`], for the few callers that keep records.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub value_is_null: bool,
    pub raw: Bytes,
}

/// Whether [`walk`] should go on to the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Continue,
    Stop,
}

/// The most bytes a batch's records may decompress to: far above what any client
/// puts in one batch (they bound batches by their uncompressed size, about
/// `message.max.bytes`), low enough that a compression bomb costs little.
pub fn max_uncompressed(message_max_bytes: usize) -> u64 {
    (message_max_bytes as u64).saturating_mul(16).max(32 << 20)
}

/// Walk every record of a complete batch in order, as Kafka's LogValidator does:
/// the batch must hold exactly `records_count` well-formed records whose offset
/// deltas grow up to `last_offset_delta` (0, 1, 2, … for a batch as clients send
/// it, which [`super::batch::validate_batch`] checks has last delta = count − 1); compressed records are decompressed as a stream, at
/// most `max_uncompressed` bytes, keeping one record in memory at a time.
/// `f` may stop the walk early (then the rest is not checked).
pub fn walk(
    batch: &[u8],
    header: &BatchHeader,
    max_uncompressed: u64,
    f: impl FnMut(&Record<'_>) -> Result<Walk>,
) -> Result<()> {
    let section = batch
        .get(BATCH_HEADER_LEN..header.total_size())
        .ok_or(Error::CorruptMessage("record batch is truncated"))?;
    let codec = header.attributes & CODEC_MASK;
    if codec == compression::NONE {
        walk_source(SliceSource { rest: section }, header, f)
    } else {
        let reader = std::io::BufReader::new(compression::reader(codec, section, max_uncompressed)?);
        walk_source(
            ReaderSource {
                reader,
                buf: Vec::new(),
            },
            header,
            f,
        )
    }
}

/// [`walk`] over the raw records `source` yields (one walker for every codec,
/// monomorphised for each source).
fn walk_source(
    mut source: impl RecordSource,
    header: &BatchHeader,
    mut f: impl FnMut(&Record<'_>) -> Result<Walk>,
) -> Result<()> {
    let mut previous_delta = -1;
    for _ in 0..header.records_count.max(0) {
        let Some(raw) = source.next_record()? else {
            return Err(Error::InvalidRecord("the batch holds fewer records than its count"));
        };
        let record = parse(raw)?;
        // Deltas grow and end at last_offset_delta; a compacted batch may skip
        // some, and a client's batch (count = last delta + 1) so runs 0, 1, 2, ….
        if record.offset_delta <= previous_delta || record.offset_delta > header.last_offset_delta {
            return Err(Error::InvalidRecord("record offset deltas out of order or range"));
        }
        previous_delta = record.offset_delta;
        if f(&record)? == Walk::Stop {
            return Ok(());
        }
    }
    if !source.at_end()? {
        return Err(Error::InvalidRecord("the batch holds more records than its count"));
    }
    Ok(())
}

/// Where the raw records come from: the batch itself, or a decompressor.
trait RecordSource {
    /// The next record with its length prefix; None at the end of the records.
    fn next_record(&mut self) -> Result<Option<&[u8]>>;
    fn at_end(&mut self) -> Result<bool>;
}

struct SliceSource<'a> {
    rest: &'a [u8],
}

impl RecordSource for SliceSource<'_> {
    fn next_record(&mut self) -> Result<Option<&[u8]>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let mut body = ByteReader::new(self.rest);
        let length = varint(&mut body, VARINT_MAX)?;
        let prefix = self.rest.len() - body.rest().len();
        let Some(length) = usize::try_from(length)
            .ok()
            .filter(|&l| l > 0 && l <= body.rest().len())
        else {
            return Err(Error::CorruptMessage("record length out of bounds"));
        };
        let total = length + prefix;
        let (raw, rest) = self.rest.split_at(total);
        self.rest = rest;
        Ok(Some(raw))
    }

    fn at_end(&mut self) -> Result<bool> {
        Ok(self.rest.is_empty())
    }
}

struct ReaderSource<R> {
    reader: R,
    buf: Vec<u8>,
}

impl<R: Read> ReaderSource<R> {
    fn byte(&mut self) -> Result<Option<u8>> {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(b[0])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.byte(),
            Err(e) => Err(compression::read_error(e)),
        }
    }
}

impl<R: Read> RecordSource for ReaderSource<R> {
    fn next_record(&mut self) -> Result<Option<&[u8]>> {
        self.buf.clear();
        // The length prefix, a byte at a time (it is kept as part of `raw`).
        loop {
            let Some(b) = self.byte()? else {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(Error::CorruptMessage("truncated varint in a record"));
            };
            self.buf.push(b);
            if b & 0x80 == 0 {
                break;
            }
            if self.buf.len() == VARINT_MAX {
                return Err(Error::CorruptMessage("varint too long in a record"));
            }
        }
        let length = varint(&mut ByteReader::new(&self.buf), VARINT_MAX)?;
        let length = usize::try_from(length)
            .ok()
            .filter(|&l| l > 0)
            .ok_or(Error::CorruptMessage("record length out of bounds"))?;
        let prefix = self.buf.len();
        // Read through `take` so that a lying length grows the buffer only as far
        // as the (bounded) stream really goes.
        let got = (&mut self.reader)
            .take(length as u64)
            .read_to_end(&mut self.buf)
            .map_err(compression::read_error)?;
        if got < length {
            return Err(Error::CorruptMessage("record length out of bounds"));
        }
        debug_assert_eq!(self.buf.len(), prefix + length);
        Ok(Some(&self.buf))
    }

    fn at_end(&mut self) -> Result<bool> {
        Ok(self.byte()?.is_none())
    }
}

/// A zigzag varint of at most `max` bytes.
fn varint(r: &mut ByteReader<'_>, max: usize) -> Result<i64> {
    // Not `ok_or`: that builds (and drops) an Error for every good varint.
    match r.varint(max) {
        Some(v) => Ok(v),
        None => Err(Error::CorruptMessage("truncated or overlong varint in a record")),
    }
}

/// A length-prefixed field: None for length −1, an error for other negatives or
/// a length past the record's end.
fn field<'a>(r: &mut ByteReader<'a>) -> Result<Option<&'a [u8]>> {
    let len = varint(r, VARINT_MAX)?;
    if len == -1 {
        return Ok(None);
    }
    match usize::try_from(len).ok().and_then(|len| r.take(len)) {
        Some(value) => Ok(Some(value)),
        None => Err(Error::CorruptMessage("record field longer than its record")),
    }
}

/// Parse one raw record (length prefix included), checking that its fields and
/// headers fill exactly its length.
fn parse(raw: &[u8]) -> Result<Record<'_>> {
    let mut body = ByteReader::new(raw);
    varint(&mut body, VARINT_MAX)?; // the length, checked by the source
    if body.u8().is_none() {
        return Err(Error::CorruptMessage("empty record")); // attributes, unused
    }
    let timestamp_delta = varint(&mut body, VARLONG_MAX)?;
    let offset_delta = i32::try_from(varint(&mut body, VARINT_MAX)?)
        .map_err(|_| Error::CorruptMessage("record offset delta out of range"))?;
    let key = field(&mut body)?;
    let value = field(&mut body)?;
    let headers_section = body.rest();
    let headers = varint(&mut body, VARINT_MAX)?;
    if headers < 0 {
        return Err(Error::CorruptMessage("negative record header count"));
    }
    for _ in 0..headers {
        if field(&mut body)?.is_none() {
            return Err(Error::CorruptMessage("null record header key"));
        }
        field(&mut body)?;
    }
    if !body.is_empty() {
        return Err(Error::CorruptMessage("record longer than its fields"));
    }
    Ok(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers: headers_section,
        raw,
    })
}

/// Every record of a batch, copied out (the log cleaner, the CLI).
pub fn records(batch: &Bytes, header: &BatchHeader) -> Result<Vec<RecordView>> {
    let mut out = Vec::new();
    walk(batch, header, max_uncompressed(batch.len()), |r| {
        out.push(RecordView {
            offset_delta: r.offset_delta,
            timestamp_delta: r.timestamp_delta,
            key: r.key.map(Bytes::copy_from_slice),
            value: r.value.map(Bytes::copy_from_slice),
            value_is_null: r.value.is_none(),
            raw: Bytes::copy_from_slice(r.raw),
        });
        Ok(Walk::Continue)
    })?;
    Ok(out)
}

/// A copy of the batch of `header` holding only `kept` of its records (their raw bytes, in order),
/// compressed again with the batch's own codec, with a new CRC. The batch keeps its
/// base offset, timestamps, last offset delta and producer fields, so offsets and
/// idempotence state stay as they were.
pub fn rebuild(header: &BatchHeader, kept: &[RecordView]) -> Result<Bytes> {
    let mut plain = BytesMut::new();
    for r in kept {
        plain.put_slice(&r.raw);
    }
    rebuild_from_raw(header, &plain, kept.len())
}

/// [`rebuild`] from the kept records' raw bytes, back to back (`count` of them):
/// what the cleaner keeps, one batch at a time, without a copy per record.
pub fn rebuild_from_raw(header: &BatchHeader, plain: &[u8], count: usize) -> Result<Bytes> {
    rebuild_with_codec(header, plain, count, header.attributes & CODEC_MASK, None)
}

/// A batch of `header` holding `count` records (their raw bytes back to back in
/// `plain`), compressed with `codec` at `level` (`None`: the codec's default) —
/// what a topic's compression.type makes of a producer's batch.
pub fn rebuild_with_codec(
    header: &BatchHeader,
    plain: &[u8],
    count: usize,
    codec: i16,
    level: Option<i32>,
) -> Result<Bytes> {
    let section = compression::compress(codec, level, plain)?;
    let header = BatchHeader {
        records_count: count as i32,
        attributes: (header.attributes & !CODEC_MASK) | codec,
        ..*header
    };
    Ok(Bytes::from(super::batch::encode_batch(&header, &section)))
}

/// Append a zigzag varint (Kafka's varlong; a varint is the same for i32 values).
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Append one record without headers, length-prefixed, as a batch's records
/// section holds it (see the layout above).
pub(crate) fn put_record(
    out: &mut Vec<u8>,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let mut body = Vec::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
    body.push(0); // attributes
    put_varlong(&mut body, timestamp_delta);
    put_varlong(&mut body, i64::from(offset_delta));
    for field in [key, value] {
        match field {
            Some(b) => {
                put_varlong(&mut body, b.len() as i64);
                body.extend_from_slice(b);
            }
            None => put_varlong(&mut body, -1),
        }
    }
    put_varlong(&mut body, 0); // no headers
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// A record to put in a batch built by [`build_batch`].
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub key: Option<bytes::Bytes>,
    pub value: Option<bytes::Bytes>,
    pub timestamp: i64,
    /// Header keys and values, in order.
    pub headers: Vec<(String, Option<bytes::Bytes>)>,
}

/// The producer of a batch: id, epoch and first sequence (idempotent producers).
#[derive(Debug, Clone, Copy)]
pub struct ProducerIds {
    pub id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
}

/// Encode an uncompressed v2 batch, as a client would: for the records the broker
/// writes itself (`__consumer_offsets`) and for tests. Offsets start at 0; the
/// broker assigns the real ones on append.
pub fn build_batch(records: &[NewRecord], producer: Option<ProducerIds>) -> Vec<u8> {
    build_compressed_batch(records, producer, compression::NONE)
        .expect("encoding uncompressed records to memory cannot fail")
}

/// [`build_batch`] with the records compressed by `codec` (a batch attributes'
/// codec number).
pub fn build_compressed_batch(records: &[NewRecord], producer: Option<ProducerIds>, codec: i16) -> Result<Vec<u8>> {
    let compression = match codec {
        compression::NONE => Compression::None,
        compression::GZIP => Compression::Gzip,
        compression::SNAPPY => Compression::Snappy,
        compression::LZ4 => Compression::Lz4,
        compression::ZSTD => Compression::Zstd,
        _ => return Err(Error::CorruptMessage("unknown compression codec")),
    };
    let p = producer.unwrap_or(ProducerIds {
        id: -1,
        epoch: -1,
        first_sequence: 0,
    });
    let records: Vec<EncoderRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| EncoderRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: p.id,
            producer_epoch: p.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset − sequence is
            // constant; without a producer the sequence is not used.
            sequence: p.first_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (kafka_protocol::protocol::StrBytes::from_string(k.clone()), v.clone()))
                .collect(),
        })
        .collect();
    encode(&records, compression).map_err(|_| Error::CorruptMessage("records do not compress"))
}

/// One v2 batch of `records`, by kafka-protocol's encoder.
pub(crate) fn encode(records: &[EncoderRecord], compression: Compression) -> std::io::Result<Vec<u8>> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).map_err(std::io::Error::other)?;
    Ok(buf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::batch;
    use crate::record::testing;

    /// Records with `keys`; the second one's value is null (a tombstone).
    fn batch_with(keys: &[Option<&str>], codec: kafka_protocol::records::Compression) -> Bytes {
        let records = keys.iter().enumerate().map(|(i, k)| {
            let value = (i != 1).then(|| Bytes::from(format!("v{i}")));
            (k.map(|k| Bytes::from(k.to_string())), value)
        });
        Bytes::from(testing::client_batch(codec, records).unwrap())
    }

    #[test]
    fn walks_records_of_every_codec_and_rebuilds_a_subset() {
        use kafka_protocol::records::Compression as C;
        for codec in [C::None, C::Gzip, C::Snappy, C::Lz4, C::Zstd] {
            let b = batch_with(&[Some("a"), Some("b"), None, Some("d")], codec);
            let h = batch::next_batch(&b).unwrap().unwrap();
            let rs = records(&b, &h).unwrap();
            assert_eq!(rs.len(), 4, "{codec:?}");
            assert_eq!(rs[0].key.as_deref(), Some(&b"a"[..]));
            assert!(rs[1].value_is_null);
            assert!(rs[2].key.is_none());
            assert_eq!(rs[3].offset_delta, 3);
            assert_eq!(rs[3].timestamp_delta, 3);
            let kept = vec![rs[0].clone(), rs[3].clone()];
            let rebuilt = rebuild(&h, &kept).unwrap();
            let h2 = batch::next_batch(&rebuilt).unwrap().unwrap();
            assert_eq!(h2.records_count, 2);
            assert_eq!(h2.last_offset(), h.last_offset(), "the last offset is kept");
            assert_eq!(h2.attributes, h.attributes, "same codec");
            assert_eq!(crc32c::crc32c(&rebuilt[21..]), h2.crc);
            let again = records(&rebuilt, &h2).unwrap();
            assert_eq!(again.iter().map(|r| r.offset_delta).collect::<Vec<_>>(), vec![0, 3]);
        }
    }

    fn all_codecs() -> [kafka_protocol::records::Compression; 5] {
        use kafka_protocol::records::Compression as C;
        [C::None, C::Gzip, C::Snappy, C::Lz4, C::Zstd]
    }

    /// `b` with its header edited by `edit` and its CRC made right again.
    fn edited(b: &[u8], edit: impl FnOnce(&mut BatchHeader)) -> (Vec<u8>, BatchHeader) {
        let mut h = batch::next_batch(b).unwrap().unwrap();
        edit(&mut h);
        let out = batch::encode_batch(&h, &b[BATCH_HEADER_LEN..]);
        let h = batch::next_batch(&out).unwrap().unwrap();
        (out, h)
    }

    fn count(b: &[u8], h: &BatchHeader, max: u64) -> Result<usize> {
        let mut n = 0;
        walk(b, h, max, |_| {
            n += 1;
            Ok(Walk::Continue)
        })?;
        Ok(n)
    }

    #[test]
    fn record_counts_that_lie_are_refused_for_every_codec() {
        for codec in all_codecs() {
            let b = batch_with(&[Some("a"), Some("b"), Some("c")], codec);
            let h = batch::next_batch(&b).unwrap().unwrap();
            assert_eq!(count(&b, &h, 1 << 20).unwrap(), 3, "{codec:?}");
            for claimed in [i32::MAX, 4, 2, 1] {
                let (lie, h) = edited(&b, |h| {
                    h.records_count = claimed;
                    h.last_offset_delta = claimed - 1;
                });
                assert!(
                    matches!(count(&lie, &h, 1 << 20), Err(Error::InvalidRecord(_))),
                    "{codec:?} claiming {claimed}"
                );
            }
        }
    }

    #[test]
    fn bytes_after_a_compressed_payload_are_refused() {
        for codec in all_codecs().into_iter().skip(1) {
            let b = batch_with(&[Some("a"), Some("b")], codec);
            let h = batch::next_batch(&b).unwrap().unwrap();
            let mut section = b[BATCH_HEADER_LEN..].to_vec();
            section.extend_from_slice(&[0x42; 16]);
            let trailing = batch::encode_batch(&h, &section);
            let h = batch::next_batch(&trailing).unwrap().unwrap();
            assert!(count(&trailing, &h, 1 << 20).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn unknown_codecs_and_undecodable_payloads_are_refused() {
        for codec in 5..=7 {
            let b = batch_with(&[Some("a")], kafka_protocol::records::Compression::None);
            let (bad, h) = edited(&b, |h| h.attributes = codec);
            assert!(
                matches!(count(&bad, &h, 1 << 20), Err(Error::CorruptMessage(_))),
                "codec {codec}"
            );
        }
        for codec in all_codecs().into_iter().skip(1) {
            let b = batch_with(&[Some("a"), Some("b")], codec);
            let mut garbage = b.to_vec();
            let len = garbage.len();
            for (i, byte) in garbage[BATCH_HEADER_LEN + 4..len].iter_mut().enumerate() {
                *byte ^= 0x5a ^ i as u8;
            }
            let (bad, h) = edited(&garbage, |_| {});
            assert!(count(&bad, &h, 1 << 20).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn compression_bombs_stop_at_the_limit() {
        for codec in [compression::GZIP, compression::ZSTD] {
            let (b, h) = testing::bomb(codec, 4 << 20).unwrap();
            assert!(b.len() < 64 << 10, "a small batch");
            assert_eq!(count(&b, &h, 5 << 20).unwrap(), 1, "under the limit it is one record");
            let (b, h) = testing::bomb(codec, 256 << 20).unwrap();
            let e = count(&b, &h, max_uncompressed(1 << 20)).unwrap_err();
            assert!(matches!(e, Error::InvalidRecord(_)), "{e}");
        }
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let b = Bytes::from(build_batch(
            &[NewRecord {
                key: Some("k".into()),
                value: Some("v".into()),
                timestamp: 0,
                headers: Vec::new(),
            }],
            None,
        ));
        let mut h = batch::next_batch(&b).unwrap().unwrap();
        h.records_count = 3;
        assert!(records(&b, &h).is_err());
    }
}

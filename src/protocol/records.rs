//! A read-only view of Kafka record batches (magic v2), and the few in-place edits a
//! broker makes to them.
//!
//! Batches travel from the produce request to the segment file and back to fetchers
//! as opaque bytes; the broker only reads the fixed-size header. Layout (big-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset               <- assigned by the broker on append
//!      8     4  batch_length              (bytes after this field)
//!     12     4  partition_leader_epoch    <- set by the broker on append
//!     16     1  magic                     (2)
//!     17     4  crc                       CRC-32C of bytes 21..end
//!     21     2  attributes                bits 0-2 codec, 3 timestamp type,
//!                                         4 transactional, 5 control
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61     …  records (possibly compressed)
//! ```
//!
//! Because the CRC starts at the attributes, assigning the base offset and leader
//! epoch never requires a new checksum.

use crate::error::{Error, Result};

/// Bytes before `batch_length`'s payload starts: base_offset + batch_length.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the full v2 batch header.
pub const BATCH_HEADER_LEN: usize = 61;
/// The only record format this broker stores.
pub const MAGIC_V2: i8 = 2;

const CRC_OFFSET: usize = 17;
/// length, attributes, timestamp delta, offset delta, key length, value length and
/// header count: seven varints of at least one byte each.
const MIN_RECORD_SIZE: usize = 7;
const ATTRIBUTES_OFFSET: usize = 21;

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The header fields of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parse the header at the start of `b`, which must hold at least
    /// [`BATCH_HEADER_LEN`] bytes. Checks nothing beyond the length.
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        if b.len() < BATCH_HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(b, 0),
            batch_length: i32_at(b, 8),
            partition_leader_epoch: i32_at(b, 12),
            magic: b[16] as i8,
            crc: u32::from_be_bytes(b[CRC_OFFSET..CRC_OFFSET + 4].try_into().expect("4")),
            attributes: i16_at(b, ATTRIBUTES_OFFSET),
            last_offset_delta: i32_at(b, 23),
            base_timestamp: i64_at(b, 27),
            max_timestamp: i64_at(b, 35),
            producer_id: i64_at(b, 43),
            producer_epoch: i16_at(b, 51),
            base_sequence: i32_at(b, 53),
            records_count: i32_at(b, 57),
        })
    }

    /// Total bytes the batch occupies: the length prefix plus what it counts.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Sequence of the last record, wrapping at i32::MAX as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        (last % (i32::MAX as i64 + 1)) as i32
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// message.timestamp.type=LogAppendTime: every record's timestamp is the
    /// batch's max timestamp.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
}

/// Frame the next batch in `buf`: `Ok(None)` when `buf` holds less than one whole
/// batch (a torn tail, or the caller should read more), otherwise its header and size.
/// A length that can never be valid is an error.
pub fn next_batch(buf: &[u8]) -> Result<Option<BatchHeader>> {
    if buf.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let batch_length = i32_at(buf, 8);
    if (batch_length as i64) < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64 {
        return Err(Error::CorruptMessage("batch length smaller than a batch header"));
    }
    if buf.len() < LOG_OVERHEAD + batch_length as usize {
        return Ok(None);
    }
    Ok(BatchHeader::parse(buf))
}

/// Check one complete batch: magic v2, a consistent record count, and the CRC-32C.
pub fn validate_batch(batch: &[u8], header: &BatchHeader) -> Result<()> {
    if header.magic != MAGIC_V2 {
        return Err(Error::InvalidRecord(
            "only record batch format v2 (magic 2) is accepted",
        ));
    }
    if crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..header.total_size()]) != header.crc {
        return Err(Error::CorruptMessage("record batch CRC mismatch"));
    }
    if header.records_count <= 0 {
        return Err(Error::InvalidRecord("record batch holds no records"));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(Error::InvalidRecord("last offset delta disagrees with record count"));
    }
    // An uncompressed record takes at least 7 bytes (seven one-byte varints), so a
    // count the bytes cannot hold is a lie that would move offsets arbitrarily.
    let uncompressed = header.attributes & 0x07 == 0;
    if uncompressed && header.records_count as usize * MIN_RECORD_SIZE > header.total_size() - BATCH_HEADER_LEN {
        return Err(Error::InvalidRecord("record count exceeds what the batch can hold"));
    }
    Ok(())
}

/// A batch of the header fields in `h` (its length and CRC are computed, not
/// taken from `h`) and an already encoded, possibly compressed, records section.
pub fn encode_batch(h: &BatchHeader, section: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + section.len());
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&((BATCH_HEADER_LEN - LOG_OVERHEAD + section.len()) as i32).to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(h.magic as u8);
    out.extend_from_slice(&[0; 4]); // CRC, below
    out.extend_from_slice(&h.attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&h.base_timestamp.to_be_bytes());
    out.extend_from_slice(&h.max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&h.records_count.to_be_bytes());
    out.extend_from_slice(section);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Check a batch read back from a segment file: magic v2, a sane offset delta, and
/// the CRC-32C. Laxer than [`validate_batch`], which checks what clients send:
/// a compacted batch keeps its last offset delta with fewer records, or none.
pub fn verify_stored_batch(batch: &[u8], header: &BatchHeader) -> std::result::Result<(), &'static str> {
    if header.magic != MAGIC_V2 {
        return Err("not a record batch of format v2 (magic 2)");
    }
    if header.last_offset_delta < 0 || header.records_count < 0 {
        return Err("negative offset delta or record count");
    }
    match batch.get(ATTRIBUTES_OFFSET..header.total_size()) {
        Some(covered) if crc32c::crc32c(covered) == header.crc => Ok(()),
        Some(_) => Err("CRC mismatch"),
        None => Err("batch shorter than its length"),
    }
}

/// Assign the broker's offsets and leader epoch to a batch about to be appended.
/// Neither field is covered by the CRC.
pub fn assign_offsets(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// message.timestamp.type=LogAppendTime: mark the batch's timestamps as the
/// broker's and set its max timestamp to `now_ms`. Both fields are in the header
/// (`head`, edited apart from the records, `rest`) and covered by the CRC, which is
/// computed again.
pub fn set_log_append_time(head: &mut [u8; BATCH_HEADER_LEN], rest: &[u8], now_ms: i64) {
    let attributes = i16_at(head, ATTRIBUTES_OFFSET) | 0x08;
    head[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    head[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[ATTRIBUTES_OFFSET..]), rest);
    head[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A record to put in a batch built by [`build_batch`].
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub key: Option<bytes::Bytes>,
    pub value: Option<bytes::Bytes>,
    pub timestamp: i64,
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
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let p = producer.unwrap_or(ProducerIds {
        id: -1,
        epoch: -1,
        first_sequence: 0,
    });
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
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
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding to memory cannot fail");
    buf.to_vec()
}

/// Iterate the complete batches at the start of `buf`, stopping at the first
/// incomplete or invalid one. Yields `(position, header)`.
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Batches<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Batches { buf, pos: 0 }
    }

    /// Bytes consumed by the batches yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Batches<'_> {
    type Item = (usize, BatchHeader);

    fn next(&mut self) -> Option<Self::Item> {
        match next_batch(&self.buf[self.pos..]) {
            Ok(Some(h)) => {
                let at = self.pos;
                self.pos += h.total_size();
                Some((at, h))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real v2 batch of `n` records, as a client would send it.
    pub fn sample_batch(n: i32, base_timestamp: i64) -> Vec<u8> {
        let records: Vec<NewRecord> = (0..n)
            .map(|i| NewRecord {
                key: Some(format!("k{i}").into()),
                value: Some(format!("value-{i}").into()),
                timestamp: base_timestamp + i as i64,
            })
            .collect();
        build_batch(&records, None)
    }

    #[test]
    fn parses_and_validates_a_client_batch() {
        let b = sample_batch(3, 1000);
        let h = next_batch(&b).unwrap().unwrap();
        assert_eq!(h.total_size(), b.len());
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, 1000);
        assert_eq!(h.max_timestamp, 1002);
        validate_batch(&b, &h).unwrap();
    }

    #[test]
    fn crc_mismatch_is_corrupt_message() {
        let mut b = sample_batch(2, 0);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let h = next_batch(&b).unwrap().unwrap();
        assert!(matches!(validate_batch(&b, &h), Err(Error::CorruptMessage(_))));
    }

    #[test]
    fn assigning_offsets_keeps_crc_valid() {
        let mut b = sample_batch(2, 0);
        assign_offsets(&mut b, 4242, 7);
        let h = next_batch(&b).unwrap().unwrap();
        assert_eq!(h.base_offset, 4242);
        assert_eq!(h.partition_leader_epoch, 7);
        assert_eq!(h.last_offset(), 4243);
        validate_batch(&b, &h).unwrap();
    }

    #[test]
    fn torn_batches_are_not_yet_complete() {
        let b = sample_batch(2, 0);
        assert_eq!(next_batch(&b[..b.len() - 1]).unwrap(), None);
        assert_eq!(next_batch(&b[..5]).unwrap(), None);
        let mut two = b.clone();
        two.extend_from_slice(&b[..20]);
        let seen: Vec<_> = Batches::new(&two).collect();
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn record_count_must_fit_the_bytes() {
        let mut b = sample_batch(2, 0);
        // Claim a million records, consistently, with a valid CRC.
        b[23..27].copy_from_slice(&999_999i32.to_be_bytes());
        b[57..61].copy_from_slice(&1_000_000i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let h = next_batch(&b).unwrap().unwrap();
        assert!(matches!(validate_batch(&b, &h), Err(Error::InvalidRecord(_))));
    }

    #[test]
    fn impossible_length_is_an_error() {
        let mut b = sample_batch(1, 0);
        b[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert!(next_batch(&b).is_err());
    }

    #[test]
    fn sequence_wraps() {
        let mut h = BatchHeader::parse(&sample_batch(3, 0)).unwrap();
        h.base_sequence = i32::MAX - 1;
        assert_eq!(h.last_sequence(), 0);
    }
}

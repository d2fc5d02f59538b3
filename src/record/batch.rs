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

use super::reader::{i32_at, ByteReader};
use crate::error::{Error, Result};

/// Where each header field starts, in bytes from the start of the batch (the
/// layout above). Everything that reads or edits a header in place uses these.
pub mod at {
    pub const BASE_OFFSET: usize = 0;
    pub const BATCH_LENGTH: usize = 8;
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    pub const MAGIC: usize = 16;
    pub const CRC: usize = 17;
    /// The CRC covers everything from here to the end of the batch.
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const BASE_TIMESTAMP: usize = 27;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const PRODUCER_ID: usize = 43;
    pub const PRODUCER_EPOCH: usize = 51;
    pub const BASE_SEQUENCE: usize = 53;
    pub const RECORDS_COUNT: usize = 57;
    pub const RECORDS: usize = 61;
}

/// Bytes before `batch_length`'s payload starts: base_offset + batch_length.
pub const LOG_OVERHEAD: usize = at::PARTITION_LEADER_EPOCH;
/// Size of the full v2 batch header.
pub const BATCH_HEADER_LEN: usize = at::RECORDS;
/// The only record format this broker stores.
pub const MAGIC_V2: i8 = 2;

/// length, attributes, timestamp delta, offset delta, key length, value length and
/// header count: seven varints of at least one byte each.
const MIN_RECORD_SIZE: usize = 7;

/// Attribute bits.
pub const CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
pub const TRANSACTIONAL_BIT: i16 = 0x10;
pub const CONTROL_BIT: i16 = 0x20;

/// The `batch_length` field of the batch starting `b`, if `b` reaches that far.
pub fn batch_length(b: &[u8]) -> Option<i32> {
    i32_at(b, at::BATCH_LENGTH)
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
    /// The header of a batch the broker builds of `count` records: offsets from
    /// 0, no producer, uncompressed (callers set what differs).
    pub fn of_records(count: i32, base_timestamp: i64, max_timestamp: i64) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: MAGIC_V2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp,
            max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: count,
        }
    }

    /// Parse the header at the start of `b`, which must hold at least
    /// [`BATCH_HEADER_LEN`] bytes. Checks nothing beyond the length.
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        // Field by field, in the order of the layout above.
        let mut r = ByteReader::new(b.get(..BATCH_HEADER_LEN)?);
        Some(BatchHeader {
            base_offset: r.i64()?,
            batch_length: r.i32()?,
            partition_leader_epoch: r.i32()?,
            magic: r.i8()?,
            crc: r.u32()?,
            attributes: r.i16()?,
            last_offset_delta: r.i32()?,
            base_timestamp: r.i64()?,
            max_timestamp: r.i64()?,
            producer_id: r.i64()?,
            producer_epoch: r.i16()?,
            base_sequence: r.i32()?,
            records_count: r.i32()?,
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
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// message.timestamp.type=LogAppendTime: every record's timestamp is the
    /// batch's max timestamp.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
}

/// Frame the next batch in `buf`: `Ok(None)` when `buf` holds less than one whole
/// batch (a torn tail, or the caller should read more), otherwise its header and size.
/// A length that can never be valid is an error.
pub fn next_batch(buf: &[u8]) -> Result<Option<BatchHeader>> {
    if buf.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let Some(batch_length) = batch_length(buf) else {
        return Ok(None);
    };
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
    if crc32c::crc32c(&batch[at::ATTRIBUTES..header.total_size()]) != header.crc {
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
    let uncompressed = header.attributes & CODEC_MASK == 0;
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
    let crc = crc32c::crc32c(&out[at::ATTRIBUTES..]);
    out[at::CRC..at::ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
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
    match batch.get(at::ATTRIBUTES..header.total_size()) {
        Some(covered) if crc32c::crc32c(covered) == header.crc => Ok(()),
        Some(_) => Err("CRC mismatch"),
        None => Err("batch shorter than its length"),
    }
}

/// Assign the broker's offsets and leader epoch to a batch about to be appended.
/// Neither field is covered by the CRC.
pub fn assign_offsets(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[at::BASE_OFFSET..at::BATCH_LENGTH].copy_from_slice(&base_offset.to_be_bytes());
    batch[at::PARTITION_LEADER_EPOCH..at::MAGIC].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// message.timestamp.type=LogAppendTime: mark the batch's timestamps as the
/// broker's and set its max timestamp to `now_ms`. Both fields are in the header
/// (`head`, edited apart from the records, `rest`) and covered by the CRC, which is
/// computed again.
pub fn set_log_append_time(head: &mut [u8; BATCH_HEADER_LEN], rest: &[u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([head[at::ATTRIBUTES], head[at::ATTRIBUTES + 1]]) | TIMESTAMP_TYPE_BIT;
    head[at::ATTRIBUTES..at::LAST_OFFSET_DELTA].copy_from_slice(&attributes.to_be_bytes());
    head[at::MAX_TIMESTAMP..at::PRODUCER_ID].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[at::ATTRIBUTES..]), rest);
    head[at::CRC..at::ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
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
    use crate::record::records::{build_batch, NewRecord};

    /// A real v2 batch of `n` records, as a client would send it.
    pub fn sample_batch(n: i32, base_timestamp: i64) -> Vec<u8> {
        let records: Vec<NewRecord> = (0..n)
            .map(|i| NewRecord {
                key: Some(format!("k{i}").into()),
                value: Some(format!("value-{i}").into()),
                timestamp: base_timestamp + i as i64,
                headers: Vec::new(),
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

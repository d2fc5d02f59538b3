//! The `__transaction_state` record codec (Kafka's TransactionLog): one record per
//! transactional id, the last one for a key wins, a null value (a tombstone)
//! removes the id.
//!
//! Layouts (big-endian; string = i16 length + UTF-8):
//!
//! ```text
//! key    version: i16 = 0, transactional_id: string
//! value  version: i16 = 0, producer_id: i64, producer_epoch: i16,
//!        transaction_timeout_ms: i32, transaction_status: i8,
//!        partitions: i32 count (−1: null), each: topic: string,
//!                    partition_ids: i32 count, each i32,
//!        last_update_timestamp_ms: i64, start_timestamp_ms: i64
//! ```
//!
//! Version 1 of the value (Kafka's transaction version 1 and 2) is the same fields
//! in the flexible encoding (compact arrays and strings, a tag section at the end
//! of the value and of each partition entry; tag 0 the previous producer id). It
//! is read; version 0 is written, which every Kafka reads.

use std::collections::BTreeSet;

use bytes::{BufMut, BytesMut};

use super::state::{TransactionMetadata, TransactionState};
use crate::error::{Error, Result};
use crate::record::fields::put_string;
use crate::record::reader::{ByteReader, VARINT_MAX};

const CORRUPT: Error = Error::CorruptMessage("malformed __transaction_state record");

/// The key of `transactional_id`'s record.
pub fn encode_key(transactional_id: &str) -> Result<Vec<u8>> {
    let mut b = BytesMut::new();
    b.put_i16(0);
    put_string(&mut b, transactional_id)?;
    Ok(b.to_vec())
}

/// The transactional id a key names.
pub fn decode_key(key: &[u8]) -> Result<String> {
    let mut r = ByteReader::new(key);
    if r.i16().ok_or(CORRUPT)? != 0 {
        return Err(Error::CorruptMessage("unknown __transaction_state key version"));
    }
    string(&mut r)?.ok_or(CORRUPT)
}

/// A value of version 0. The partitions are null when nothing is open (Empty).
pub fn encode_value(m: &TransactionMetadata) -> Result<Vec<u8>> {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i64(m.producer_id);
    b.put_i16(m.producer_epoch);
    b.put_i32(m.timeout_ms);
    b.put_i8(m.state as i8);
    if m.state == TransactionState::Empty {
        b.put_i32(-1);
    } else {
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &m.partitions {
            match topics.last_mut() {
                Some((t, ps)) if *t == topic.as_str() => ps.push(*partition),
                _ => topics.push((topic, vec![*partition])),
            }
        }
        b.put_i32(topics.len() as i32);
        for (topic, partitions) in topics {
            put_string(&mut b, topic)?;
            b.put_i32(partitions.len() as i32);
            for p in partitions {
                b.put_i32(p);
            }
        }
    }
    b.put_i64(m.last_update_ms);
    b.put_i64(m.start_ms);
    Ok(b.to_vec())
}

/// A value of version 0 or 1.
pub fn decode_value(value: &[u8]) -> Result<TransactionMetadata> {
    let mut r = ByteReader::new(value);
    let flexible = match r.i16().ok_or(CORRUPT)? {
        0 => false,
        1 => true,
        _ => return Err(Error::CorruptMessage("unknown __transaction_state value version")),
    };
    let producer_id = r.i64().ok_or(CORRUPT)?;
    let producer_epoch = r.i16().ok_or(CORRUPT)?;
    let timeout_ms = r.i32().ok_or(CORRUPT)?;
    let state = TransactionState::from_id(r.i8().ok_or(CORRUPT)?).ok_or(CORRUPT)?;
    let mut partitions = BTreeSet::new();
    let topics = count(&mut r, flexible)?;
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            compact_string(&mut r)?
        } else {
            string(&mut r)?
        }
        .ok_or(CORRUPT)?;
        for _ in 0..count(&mut r, flexible)?.unwrap_or(0) {
            partitions.insert((topic.clone(), r.i32().ok_or(CORRUPT)?));
        }
        if flexible {
            tags(&mut r, |_, _| Ok(()))?;
        }
    }
    let last_update_ms = r.i64().ok_or(CORRUPT)?;
    let start_ms = r.i64().ok_or(CORRUPT)?;
    let mut previous_producer_id = -1;
    if flexible {
        tags(&mut r, |tag, data| {
            if tag == 0 {
                previous_producer_id = ByteReader::new(data).i64().ok_or(CORRUPT)?;
            }
            Ok(())
        })?;
    }
    Ok(TransactionMetadata {
        producer_id,
        previous_producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

fn string(r: &mut ByteReader<'_>) -> Result<Option<String>> {
    let len = r.i16().ok_or(CORRUPT)?;
    if len < 0 {
        return Ok(None);
    }
    let raw = r.take(len as usize).ok_or(CORRUPT)?;
    String::from_utf8(raw.to_vec()).map(Some).map_err(|_| CORRUPT)
}

fn uvarint(r: &mut ByteReader<'_>) -> Result<u64> {
    let mut v = 0u64;
    for i in 0..VARINT_MAX {
        let b = r.u8().ok_or(CORRUPT)?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(CORRUPT)
}

fn compact_string(r: &mut ByteReader<'_>) -> Result<Option<String>> {
    let Some(len) = uvarint(r)?.checked_sub(1) else {
        return Ok(None);
    };
    let raw = r.take(usize::try_from(len).map_err(|_| CORRUPT)?).ok_or(CORRUPT)?;
    String::from_utf8(raw.to_vec()).map(Some).map_err(|_| CORRUPT)
}

/// An array's element count: `None` for null. Never allocated from: the caller
/// reads element by element, failing at the first one missing.
fn count(r: &mut ByteReader<'_>, flexible: bool) -> Result<Option<u64>> {
    if flexible {
        return Ok(uvarint(r)?.checked_sub(1));
    }
    let n = r.i32().ok_or(CORRUPT)?;
    Ok((n >= 0).then_some(n as u64))
}

/// A tag section: each tagged field's tag and data.
fn tags(r: &mut ByteReader<'_>, mut each: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
    for _ in 0..uvarint(r)? {
        let tag = uvarint(r)?;
        let size = usize::try_from(uvarint(r)?).map_err(|_| CORRUPT)?;
        each(tag, r.take(size).ok_or(CORRUPT)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: TransactionState) -> TransactionMetadata {
        let mut m = TransactionMetadata::new(1234, 5, 60_000, 1_000);
        m.state = state;
        if state != TransactionState::Empty {
            m.partitions = [("b".to_string(), 1), ("a".to_string(), 2), ("a".to_string(), 0)].into();
            m.start_ms = 900;
        }
        m
    }

    #[test]
    fn keys_and_values_round_trip() {
        assert_eq!(decode_key(&encode_key("txn-1").unwrap()).unwrap(), "txn-1");
        for state in [
            TransactionState::Empty,
            TransactionState::Ongoing,
            TransactionState::PrepareCommit,
        ] {
            let m = sample(state);
            assert_eq!(decode_value(&encode_value(&m).unwrap()).unwrap(), m, "{state:?}");
        }
    }

    #[test]
    fn the_v0_layout_is_kafkas() {
        let v = encode_value(&sample(TransactionState::Ongoing)).unwrap();
        let mut expected = BytesMut::new();
        expected.put_i16(0);
        expected.put_i64(1234);
        expected.put_i16(5);
        expected.put_i32(60_000);
        expected.put_i8(1);
        expected.put_i32(2); // topics a and b, sorted
        expected.put_i16(1);
        expected.put_slice(b"a");
        expected.put_i32(2);
        expected.put_i32(0);
        expected.put_i32(2);
        expected.put_i16(1);
        expected.put_slice(b"b");
        expected.put_i32(1);
        expected.put_i32(1);
        expected.put_i64(1_000);
        expected.put_i64(900);
        assert_eq!(v, expected.to_vec());
    }

    #[test]
    fn flexible_v1_values_are_read() {
        // Ongoing, one topic "t" with partition 3, previous producer id 77 in tag 0.
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(9);
        b.put_i16(2);
        b.put_i32(30_000);
        b.put_i8(1);
        b.put_u8(2); // one topic
        b.put_u8(2); // "t"
        b.put_slice(b"t");
        b.put_u8(2); // one partition
        b.put_i32(3);
        b.put_u8(0); // no tags in the entry
        b.put_i64(50);
        b.put_i64(40);
        b.put_u8(2); // two tags
        b.put_u8(0);
        b.put_u8(8);
        b.put_i64(77);
        b.put_u8(2); // client transaction version, ignored
        b.put_u8(2);
        b.put_i16(1);
        let m = decode_value(&b).unwrap();
        assert_eq!((m.producer_id, m.previous_producer_id, m.producer_epoch), (9, 77, 2));
        assert_eq!(m.partitions, [("t".to_string(), 3)].into());
        assert_eq!(
            (m.last_update_ms, m.start_ms, m.state),
            (50, 40, TransactionState::Ongoing)
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        let v = encode_value(&sample(TransactionState::Ongoing)).unwrap();
        for cut in 0..v.len() {
            assert!(decode_value(&v[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = v[..17].to_vec();
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_value(&huge).is_err());
    }
}

//! Batches for tests (unit, fault and fuzz seeds), honest and hostile.

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, TimestampType};

use super::batch::{self, BatchHeader};
use super::compression;
use super::records::{build_batch, encode, NewRecord};

/// A batch as a client encodes it with `codec`: one record per (key, value),
/// offset deltas from 0, timestamps a millisecond apart from 1,700,000,000,000.
pub fn client_batch(
    codec: Compression,
    records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>)>,
) -> std::io::Result<Vec<u8>> {
    let recs: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key,
            value,
            headers: Default::default(),
        })
        .collect();
    encode(&recs, codec)
}

/// `n` records `key-i` → `value-i` with `codec`.
pub fn numbered_batch(codec: Compression, n: usize) -> std::io::Result<Vec<u8>> {
    client_batch(
        codec,
        (0..n).map(|i| {
            (
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value-{i}"))),
            )
        }),
    )
}

/// A batch of one record whose value is `size` zero bytes, compressed as a
/// stream with gzip or zstd: a few kilobytes that expand to `size`.
pub fn bomb(codec: i16, size: u64) -> std::io::Result<(Vec<u8>, BatchHeader)> {
    use std::io::Write;
    fn zigzag(v: i64, out: &mut Vec<u8>) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    fn fill(w: &mut impl Write, size: u64) -> std::io::Result<()> {
        let mut value_len = Vec::new();
        zigzag(size as i64, &mut value_len);
        let mut head = Vec::new();
        zigzag(4 + value_len.len() as i64 + size as i64 + 1, &mut head);
        head.extend_from_slice(&[0, 0, 0, 1]); // attributes, ts delta, offset delta, null key
        head.extend_from_slice(&value_len);
        w.write_all(&head)?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..size / (1 << 20) {
            w.write_all(&zeros)?;
        }
        w.write_all(&[0]) // no headers
    }
    let section = if codec == compression::GZIP {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        fill(&mut e, size)?;
        e.finish()?
    } else {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1)?;
        fill(&mut e, size)?;
        e.finish()?
    };
    let template = build_batch(&[NewRecord::default()], None);
    let header = |b: &[u8]| {
        batch::next_batch(b)
            .ok()
            .flatten()
            .ok_or_else(|| std::io::Error::other("batch does not frame"))
    };
    let mut h = header(&template)?;
    h.attributes = codec;
    let b = batch::encode_batch(&h, &section);
    let h = header(&b)?;
    Ok((b, h))
}

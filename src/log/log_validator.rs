//! Kafka's LogValidator: what the partition leader checks in a produced batch
//! before appending it, and the batch it appends — the producer's own bytes, or the
//! records recompressed to the topic's `compression.type`.
//!
//! Checks, in Kafka's order: one whole batch, `max.message.bytes`, the batch header
//! and CRC, no control batches (markers are the coordinator's), then
//! every record (compressed ones as a bounded stream): it must decode, carry a key
//! on a compacted topic, and (CreateTime topics) have a timestamp within
//! `message.timestamp.before.max.ms` / `after.max.ms` of the broker's clock. A
//! record that fails does not stop the walk: the batch is refused whole, but every
//! bad record is named (KIP-467) so that clients can resend the good ones.

use std::borrow::Cow;

use super::config::LogConfig;
use crate::error::{Error, RejectedRecords, Result};
use crate::record::batch::{self, BatchHeader, CODEC_MASK};
use crate::record::compression;
use crate::record::records::{self, Walk};

/// Validate `batch` for the partition `topic`-`partition`; the batch to append.
pub fn validate<'a>(
    topic: &str,
    partition: i32,
    config: &LogConfig,
    batch: &'a [u8],
    now_ms: i64,
) -> Result<Cow<'a, [u8]>> {
    let header = match batch::next_batch(batch)? {
        Some(h) if h.total_size() == batch.len() => h,
        Some(_) => {
            return Err(Error::InvalidRecord(
                "a produce request must carry exactly one record batch",
            ))
        }
        None => return Err(Error::CorruptMessage("record batch is truncated")),
    };
    too_large(batch.len(), config)?;
    batch::validate_batch(batch, &header)?;
    // Markers are the transaction coordinator's to write.
    if header.is_control() {
        return Err(Error::InvalidRecord("clients may not write control records"));
    }
    // compression.type other than `producer`: the records are stored with the
    // topic's codec (and level), as Kafka recompresses them on append.
    let recompress = config
        .target_codec()
        .filter(|(codec, _)| *codec != header.attributes & CODEC_MASK);
    let mut plain = Vec::new();
    let max_uncompressed = records::max_uncompressed(config.message_max_bytes);
    let mut rejected = RejectedRecords::default();
    let mut index = 0i32;
    records::walk(batch, &header, max_uncompressed, |r| {
        // Compaction keeps the latest record per key: a record without one
        // could never be compacted, so Kafka refuses it.
        if config.cleanup_compact && r.key.is_none() {
            rejected.push(index, || {
                format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}")
            });
        } else if let Some(message) = timestamp_error(config, &header, r.timestamp_delta, r.offset_delta, now_ms) {
            rejected.push(index, || message);
            rejected.any_timestamp = true;
        }
        if let Some((codec, _)) = recompress {
            plain.extend_from_slice(r.raw);
            // Stored uncompressed, the batch is at least this big already.
            if codec == compression::NONE && plain.len() > config.message_max_bytes {
                return Err(Error::MessageTooLarge {
                    size: plain.len(),
                    max: config.message_max_bytes,
                });
            }
        }
        index += 1;
        Ok(Walk::Continue)
    })?;
    if !rejected.is_empty() {
        return Err(Error::RejectedRecords(rejected));
    }
    let Some((codec, level)) = recompress else {
        return Ok(Cow::Borrowed(batch));
    };
    let rebuilt = records::rebuild_with_codec(&header, &plain, header.records_count as usize, codec, level)?;
    too_large(rebuilt.len(), config)?;
    Ok(Cow::Owned(rebuilt.to_vec()))
}

fn too_large(size: usize, config: &LogConfig) -> Result<()> {
    if size > config.message_max_bytes {
        return Err(Error::MessageTooLarge {
            size,
            max: config.message_max_bytes,
        });
    }
    Ok(())
}

/// Why a record's own timestamp is refused, if it is: message.timestamp.before
/// and after.max.ms, for CreateTime topics only, and never for −1 ("none"), as in
/// Kafka.
fn timestamp_error(
    config: &LogConfig,
    header: &BatchHeader,
    delta: i64,
    offset_delta: i32,
    now_ms: i64,
) -> Option<String> {
    let timestamp = header.base_timestamp.saturating_add(delta);
    if config.log_append_time || timestamp < 0 {
        return None;
    }
    let (before, after) = (
        config.message_timestamp_before_max_ms,
        config.message_timestamp_after_max_ms,
    );
    if now_ms.saturating_sub(timestamp) <= before && timestamp.saturating_sub(now_ms) <= after {
        return None;
    }
    Some(format!(
        "Timestamp {timestamp} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
        header.base_offset.saturating_add(i64::from(offset_delta)),
        now_ms.saturating_sub(before),
        now_ms.saturating_add(after),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::compression;
    use crate::record::records::{build_compressed_batch, records as all_records, NewRecord, ProducerIds};

    #[test]
    fn recompression_keeps_producer_fields_offsets_and_records() {
        let rs: Vec<NewRecord> = (0..10)
            .map(|i| NewRecord {
                key: Some(format!("k{i}").into()),
                value: Some(format!("v{i}").into()),
                timestamp: 1_000 + i,
                headers: Vec::new(),
            })
            .collect();
        let producer = ProducerIds {
            id: 7,
            epoch: 2,
            first_sequence: 40,
        };
        let sent = build_compressed_batch(&rs, Some(producer), compression::LZ4).unwrap();
        let config = LogConfig {
            compression_type: "zstd".into(),
            message_timestamp_before_max_ms: i64::MAX,
            ..LogConfig::default()
        };
        let stored = bytes::Bytes::from(validate("t", 0, &config, &sent, 5_000).unwrap().into_owned());
        let (before, after) = (
            batch::next_batch(&sent).unwrap().unwrap(),
            batch::next_batch(&stored).unwrap().unwrap(),
        );
        assert_eq!(after.attributes & CODEC_MASK, compression::ZSTD);
        assert_eq!(
            (
                after.producer_id,
                after.producer_epoch,
                after.base_sequence,
                after.last_offset_delta
            ),
            (
                before.producer_id,
                before.producer_epoch,
                before.base_sequence,
                before.last_offset_delta
            )
        );
        assert_eq!(
            (after.base_timestamp, after.max_timestamp),
            (before.base_timestamp, before.max_timestamp)
        );
        batch::validate_batch(&stored, &after).unwrap();
        let (a, b) = (
            all_records(&bytes::Bytes::from(sent.clone()), &before).unwrap(),
            all_records(&stored, &after).unwrap(),
        );
        assert_eq!(
            a.iter().map(|r| &r.raw).collect::<Vec<_>>(),
            b.iter().map(|r| &r.raw).collect::<Vec<_>>()
        );
        // The same codec: the producer's bytes, untouched.
        let same = LogConfig {
            compression_type: "lz4".into(),
            ..config
        };
        assert!(matches!(
            validate("t", 0, &same, &sent, 5_000).unwrap(),
            Cow::Borrowed(_)
        ));
    }
}

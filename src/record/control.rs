//! Control batches: the transaction markers a transaction coordinator writes to
//! every partition of a transaction when it ends (KIP-98).
//!
//! A marker batch has the transactional and control attributes, the producer's id
//! and epoch, base sequence −1, and one record whose key and value are:
//!
//! ```text
//! key:   version: int16 (0), type: int16 (0 ABORT, 1 COMMIT)
//! value: version: int16 (0), coordinator_epoch: int32     (Kafka's EndTxnMarker)
//! ```

use bytes::BufMut;

use super::batch::{BatchHeader, CONTROL_BIT, TRANSACTIONAL_BIT};
use super::records::{self, Walk};
use crate::error::{Error, Result};

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    Abort = 0,
    Commit = 1,
}

/// A transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub kind: MarkerType,
    pub coordinator_epoch: i32,
}

/// The marker a control batch carries; `None` for any other batch, or a control
/// record of a type this broker does not know (Kafka skips those too).
pub fn read_marker(batch: &[u8], header: &BatchHeader) -> Option<Marker> {
    if !header.is_control() {
        return None;
    }
    let mut found = None;
    records::walk(batch, header, 1 << 16, |r| {
        let Some(key) = r.key.filter(|k| k.len() >= 4) else {
            return Ok(Walk::Stop);
        };
        let kind = match i16::from_be_bytes([key[2], key[3]]) {
            0 => MarkerType::Abort,
            1 => MarkerType::Commit,
            _ => return Ok(Walk::Stop),
        };
        let coordinator_epoch = r
            .value
            .filter(|v| v.len() >= 6)
            .map_or(-1, |v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
        found = Some(Marker {
            kind,
            coordinator_epoch,
        });
        Ok(Walk::Stop)
    })
    .ok()?;
    found
}

/// The control batch that ends producer `producer_id`'s transaction (offsets
/// from 0: the log assigns the real one).
pub fn marker_batch(producer_id: i64, producer_epoch: i16, marker: Marker, timestamp: i64) -> Result<Vec<u8>> {
    let mut key = Vec::with_capacity(4);
    key.put_i16(0);
    key.put_i16(marker.kind as i16);
    let mut value = Vec::with_capacity(6);
    value.put_i16(0);
    value.put_i32(marker.coordinator_epoch);
    let mut plain = Vec::new();
    records::put_record(&mut plain, 0, 0, Some(&key), Some(&value));
    let header = BatchHeader {
        attributes: TRANSACTIONAL_BIT | CONTROL_BIT,
        producer_id,
        producer_epoch,
        ..BatchHeader::of_records(1, timestamp, timestamp)
    };
    if producer_id < 0 {
        return Err(Error::InvalidRecord("a marker needs a producer id"));
    }
    Ok(records::rebuild_with_codec(&header, &plain, 1, super::compression::NONE, None)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::batch::{next_batch, validate_batch};

    #[test]
    fn markers_round_trip_and_are_valid_control_batches() {
        for kind in [MarkerType::Abort, MarkerType::Commit] {
            let m = Marker {
                kind,
                coordinator_epoch: 7,
            };
            let b = marker_batch(42, 3, m, 1_700_000_000_000).unwrap();
            let h = next_batch(&b).unwrap().unwrap();
            validate_batch(&b, &h).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence, h.records_count),
                (42, 3, -1, 1)
            );
            assert_eq!(read_marker(&b, &h), Some(m));
        }
        // A data batch carries no marker.
        let data = crate::record::records::build_batch(&[Default::default()], None);
        let h = next_batch(&data).unwrap().unwrap();
        assert_eq!(read_marker(&data, &h), None);
    }
}

//! The `__consumer_offsets` record codec (the serde half of Kafka's
//! GroupMetadataManager): the durable form of committed offsets and group metadata: records in the
//! internal topic `__consumer_offsets`, in the key and value layouts Kafka uses
//! there, replayed at start (the last record for a key wins; a null value, a
//! tombstone, deletes it).
//!
//! Layouts (big-endian; string = i16 length + UTF-8, nullable string: length −1 for
//! null; bytes = i32 length + data):
//!
//! ```text
//! offset commit key    version: i16 = 1, group: string, topic: string, partition: i32
//! offset commit value  version: i16 = 3, offset: i64, leader_epoch: i32,
//!                      metadata: string, commit_timestamp: i64
//! group metadata key   version: i16 = 2, group: string
//! group metadata value version: i16 = 3, protocol_type: string, generation: i32,
//!                      protocol: nullable string, leader: nullable string,
//!                      current_state_timestamp: i64, members: i32 count, each:
//!                        member_id: string, group_instance_id: nullable string,
//!                        client_id: string, client_host: string,
//!                        rebalance_timeout: i32, session_timeout: i32,
//!                        subscription: bytes, assignment: bytes
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::consumer::records::ConsumerRecord;
use super::member::MemberProfile;
use crate::error::{Error, Result};
use crate::record::batch;
use crate::record::control::{read_marker, MarkerType};
use crate::record::fields::{put_nullable_string, put_string, too_long};
use crate::record::reader::ByteReader;
use crate::record::records;
use crate::record::records::{build_batch, NewRecord, ProducerIds};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// Its `protocols` hold one entry: the group's protocol and the member's
    /// subscription for it (the record keeps only that).
    pub profile: MemberProfile,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<MemberMetadata>,
}

/// One record of `__consumer_offsets`: a key (which kind, and of what) and its
/// value, `None` for a tombstone. Kafka's OffsetCommitKey/Value and
/// GroupMetadataKey/Value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        group: String,
        value: Option<GroupMetadataValue>,
    },
    /// A consumer-protocol group's record (types 3–8).
    Consumer(ConsumerRecord),
}

fn put_bytes(b: &mut BytesMut, data: &[u8]) -> Result<()> {
    let len = i32::try_from(data.len()).map_err(|_| too_long("member metadata"))?;
    b.put_i32(len);
    b.put_slice(data);
    Ok(())
}

/// The fields of one key or value, read with the record format's byte reader;
/// byte fields are shared with the batch they came from, not copied.
struct Fields<'a> {
    bytes: &'a Bytes,
    r: ByteReader<'a>,
}

const TRUNCATED: Error = Error::CorruptMessage("truncated __consumer_offsets record");

impl<'a> Fields<'a> {
    fn new(bytes: &'a Bytes) -> Self {
        Fields {
            bytes,
            r: ByteReader::new(bytes),
        }
    }
    fn i16(&mut self) -> Result<i16> {
        self.r.i16().ok_or(TRUNCATED)
    }
    fn i32(&mut self) -> Result<i32> {
        self.r.i32().ok_or(TRUNCATED)
    }
    fn i64(&mut self) -> Result<i64> {
        self.r.i64().ok_or(TRUNCATED)
    }
    fn nullable_string(&mut self) -> Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let raw = self.r.take(len as usize).ok_or(TRUNCATED)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| Error::CorruptMessage("non-UTF-8 string in __consumer_offsets"))
    }
    fn string(&mut self) -> Result<String> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }
    fn bytes(&mut self) -> Result<Bytes> {
        let len = self.i32()?.max(0) as usize;
        let raw = self.r.take(len).ok_or(TRUNCATED)?;
        Ok(self.bytes.slice_ref(raw))
    }
}

impl CoordinatorRecord {
    fn key(&self) -> Result<Bytes> {
        let mut b = BytesMut::new();
        match self {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                ..
            } => {
                b.put_i16(1);
                put_string(&mut b, group)?;
                put_string(&mut b, topic)?;
                b.put_i32(*partition);
            }
            CoordinatorRecord::GroupMetadata { group, .. } => {
                b.put_i16(2);
                put_string(&mut b, group)?;
            }
            CoordinatorRecord::Consumer(r) => return r.key(),
        }
        Ok(b.freeze())
    }

    fn value(&self) -> Result<Option<Bytes>> {
        let mut b = BytesMut::new();
        match self {
            CoordinatorRecord::OffsetCommit { value: None, .. }
            | CoordinatorRecord::GroupMetadata { value: None, .. } => return Ok(None),
            CoordinatorRecord::Consumer(r) => return Ok(r.value()),
            CoordinatorRecord::OffsetCommit { value: Some(v), .. } => {
                b.put_i16(3);
                b.put_i64(v.offset);
                b.put_i32(v.leader_epoch);
                put_string(&mut b, &v.metadata)?;
                b.put_i64(v.commit_timestamp);
            }
            CoordinatorRecord::GroupMetadata { value: Some(g), .. } => {
                b.put_i16(3);
                put_string(&mut b, &g.protocol_type)?;
                b.put_i32(g.generation_id);
                put_nullable_string(&mut b, g.protocol_name.as_deref())?;
                put_nullable_string(&mut b, g.leader_id.as_deref())?;
                b.put_i64(g.state_timestamp);
                b.put_i32(g.members.len() as i32);
                for m in &g.members {
                    let p = &m.profile;
                    put_string(&mut b, &p.member_id)?;
                    put_nullable_string(&mut b, p.group_instance_id.as_deref())?;
                    put_string(&mut b, &p.client_id)?;
                    put_string(&mut b, &p.client_host)?;
                    b.put_i32(p.rebalance_timeout_ms);
                    b.put_i32(p.session_timeout_ms);
                    put_bytes(&mut b, p.protocols.first().map_or(&[][..], |(_, s)| s))?;
                    put_bytes(&mut b, &m.assignment)?;
                }
            }
        }
        Ok(Some(b.freeze()))
    }

    /// The record, or None for a type this broker does not keep (share and
    /// streams groups, resolved regular expressions): skipped, as Kafka skips
    /// types it does not know.
    fn decode(key: Bytes, value: Option<Bytes>) -> Result<Option<CoordinatorRecord>> {
        let mut k = Fields::new(&key);
        let kind = k.i16()?;
        if (3..=8).contains(&kind) {
            return Ok(Some(CoordinatorRecord::Consumer(ConsumerRecord::decode(
                kind, &mut k.r, value,
            )?)));
        }
        if kind > 8 {
            return Ok(None);
        }
        match kind {
            0 | 1 => {
                let (group, topic, partition) = (k.string()?, k.string()?, k.i32()?);
                let value = match value {
                    None => None,
                    Some(v) => {
                        let mut v = Fields::new(&v);
                        let version = v.i16()?;
                        let offset = v.i64()?;
                        let leader_epoch = if version >= 3 { v.i32()? } else { -1 };
                        let metadata = v.string()?;
                        let commit_timestamp = v.i64()?;
                        Some(OffsetCommitValue {
                            offset,
                            leader_epoch,
                            metadata,
                            commit_timestamp,
                        })
                    }
                };
                Ok(Some(CoordinatorRecord::OffsetCommit {
                    group,
                    topic,
                    partition,
                    value,
                }))
            }
            2 => {
                let group = k.string()?;
                let value = match value {
                    None => None,
                    Some(v) => {
                        let mut v = Fields::new(&v);
                        let _version = v.i16()?;
                        let protocol_type = v.string()?;
                        let generation_id = v.i32()?;
                        let protocol_name = v.nullable_string()?;
                        let leader_id = v.nullable_string()?;
                        let state_timestamp = v.i64()?;
                        let count = v.i32()?.max(0);
                        let mut members = Vec::new();
                        for _ in 0..count {
                            let member_id = v.string()?;
                            let group_instance_id = v.nullable_string()?;
                            let client_id = v.string()?;
                            let client_host = v.string()?;
                            let rebalance_timeout_ms = v.i32()?;
                            let session_timeout_ms = v.i32()?;
                            let subscription = v.bytes()?;
                            members.push(MemberMetadata {
                                profile: MemberProfile {
                                    member_id,
                                    group_instance_id,
                                    client_id,
                                    client_host,
                                    session_timeout_ms,
                                    rebalance_timeout_ms,
                                    protocols: vec![(protocol_name.clone().unwrap_or_default(), subscription)],
                                },
                                assignment: v.bytes()?,
                            });
                        }
                        Some(GroupMetadataValue {
                            protocol_type,
                            generation_id,
                            protocol_name,
                            leader_id,
                            state_timestamp,
                            members,
                        })
                    }
                };
                Ok(Some(CoordinatorRecord::GroupMetadata { group, value }))
            }
            _ => Err(Error::CorruptMessage("unknown __consumer_offsets key version")),
        }
    }
}

/// Encode records as one batch: outside any transaction, or (`producer`: id and
/// epoch) as part of that producer's transaction, as TxnOffsetCommit writes them.
pub fn encode_batch(records: &[CoordinatorRecord], producer: Option<(i64, i16)>, now_ms: i64) -> Result<Vec<u8>> {
    let records = records
        .iter()
        .map(|r| {
            Ok(NewRecord {
                key: Some(r.key()?),
                value: r.value()?,
                timestamp: now_ms,
                headers: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let Some((id, epoch)) = producer else {
        return Ok(build_batch(&records, None));
    };
    let ids = ProducerIds {
        id,
        epoch,
        first_sequence: 0,
    };
    let plain = build_batch(&records, Some(ids));
    let mut header = batch::BatchHeader::parse(&plain).ok_or(Error::CorruptMessage("batch header"))?;
    header.attributes |= batch::TRANSACTIONAL_BIT;
    Ok(batch::encode_batch(&header, &plain[batch::BATCH_HEADER_LEN..]))
}

/// What a stored batch means to the group coordinator.
#[derive(Debug, PartialEq)]
pub enum Stored {
    /// A record written outside any transaction, at `offset` in the log.
    Record { offset: i64, record: CoordinatorRecord },
    /// A record of producer `producer_id`'s transaction, at `offset`: it counts
    /// once the transaction commits.
    InTransaction {
        offset: i64,
        producer_id: i64,
        record: CoordinatorRecord,
    },
    /// The marker that ends producer `producer_id`'s transaction.
    TxnEnd { producer_id: i64, commit: bool },
}

/// The records and transaction markers of stored batches, in order.
pub fn decode_batches(batches: Bytes) -> Result<Vec<Stored>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < batches.len() {
        let header = batch::next_batch(&batches[pos..])?
            .ok_or(Error::CorruptMessage("__consumer_offsets batch is truncated"))?;
        let one = batches.slice(pos..pos + header.total_size());
        pos += header.total_size();
        if header.is_control() {
            if let Some(marker) = read_marker(&one, &header) {
                out.push(Stored::TxnEnd {
                    producer_id: header.producer_id,
                    commit: marker.kind == MarkerType::Commit,
                });
            }
            continue;
        }
        for r in records::records(&one, &header)? {
            let Some(key) = r.key else { continue };
            let Some(record) = CoordinatorRecord::decode(key, r.value)? else {
                continue;
            };
            let offset = header.base_offset + i64::from(r.offset_delta);
            out.push(if header.is_transactional() {
                Stored::InTransaction {
                    offset,
                    producer_id: header.producer_id,
                    record,
                }
            } else {
                Stored::Record { offset, record }
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_batch() {
        let records = vec![
            CoordinatorRecord::OffsetCommit {
                group: "g".into(),
                topic: "orders".into(),
                partition: 3,
                value: Some(OffsetCommitValue {
                    offset: 42,
                    leader_epoch: 0,
                    metadata: "checkpoint ✓".into(),
                    commit_timestamp: 1_700_000_000_000,
                }),
            },
            CoordinatorRecord::OffsetCommit {
                group: "g".into(),
                topic: "orders".into(),
                partition: 4,
                value: None,
            },
            CoordinatorRecord::GroupMetadata {
                group: "g".into(),
                value: Some(GroupMetadataValue {
                    protocol_type: "consumer".into(),
                    generation_id: 7,
                    protocol_name: Some("range".into()),
                    leader_id: Some("m1".into()),
                    state_timestamp: 5,
                    members: vec![MemberMetadata {
                        profile: MemberProfile {
                            member_id: "m1".into(),
                            group_instance_id: Some("i1".into()),
                            client_id: "c".into(),
                            client_host: "/127.0.0.1".into(),
                            rebalance_timeout_ms: 300_000,
                            session_timeout_ms: 45_000,
                            protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
                        },
                        assignment: Bytes::from_static(b"assign"),
                    }],
                }),
            },
            CoordinatorRecord::GroupMetadata {
                group: "gone".into(),
                value: None,
            },
        ];
        let batch = encode_batch(&records, None, 0).unwrap();
        let plain: Vec<Stored> = (0..)
            .zip(records.iter().cloned())
            .map(|(offset, record)| Stored::Record { offset, record })
            .collect();
        assert_eq!(decode_batches(Bytes::from(batch)).unwrap(), plain);

        // Offsets of a transaction, then the marker that commits it.
        let mut stored = encode_batch(&records[..1], Some((7, 3)), 0).unwrap();
        let marker = crate::record::control::Marker {
            kind: MarkerType::Commit,
            coordinator_epoch: 0,
        };
        stored.extend(crate::record::control::marker_batch(7, 3, marker, 0).unwrap());
        let header = batch::BatchHeader::parse(&stored).unwrap();
        assert!(header.is_transactional() && header.producer_id == 7 && header.producer_epoch == 3);
        assert_eq!(
            decode_batches(Bytes::from(stored)).unwrap(),
            vec![
                Stored::InTransaction {
                    offset: 0,
                    producer_id: 7,
                    record: records[0].clone()
                },
                Stored::TxnEnd {
                    producer_id: 7,
                    commit: true
                }
            ]
        );
    }

    #[test]
    fn a_name_longer_than_its_length_prefix_is_refused_not_written() {
        // 65,542 bytes whose tail would read back as another group's commit.
        let group = format!("{}{}", "x".repeat(65_536), "victim");
        let commit = CoordinatorRecord::OffsetCommit {
            group,
            topic: "t".into(),
            partition: 0,
            value: None,
        };
        assert!(matches!(
            encode_batch(&[commit], None, 0),
            Err(Error::InvalidRequest(_))
        ));
    }
}

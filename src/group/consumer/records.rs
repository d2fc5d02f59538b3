//! Consumer-protocol groups in `__consumer_offsets`, in Kafka 4.0's record
//! formats, so the group survives a restart (and Kafka's tools could read it).
//!
//! A key is an int16 record type and the key's fields at version 0 (classic
//! encoding: int16-length strings); a value is an int16 version (0) and the
//! value's fields in the flexible encoding (compact strings and arrays with
//! unsigned-varint lengths plus one, a tagged-field section after every struct).
//! A null value deletes the key (a tombstone).
//!
//! ```text
//! type 3  ConsumerGroupMetadata            key: group          value: epoch i32
//! type 4  ConsumerGroupPartitionMetadata   key: group          value: [topic id, name, partitions, []]
//! type 5  ConsumerGroupMemberMetadata      key: group, member  value: instance?, rack?, client id, host,
//!                                          names[], regex?, rebalance timeout, assignor?, tag 0: classic?
//! type 6  ConsumerGroupTargetAssignmentMetadata  key: group    value: assignment epoch i32
//! type 7  ConsumerGroupTargetAssignmentMember    key: group, member  value: [topic id, partitions[]]
//! type 8  ConsumerGroupCurrentMemberAssignment   key: group, member  value: epoch, previous epoch,
//!                                          state i8, assigned [..], pending revocation [..]
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::assignor::Assignment;
use super::group::TopicMeta;
pub use super::member::MemberMetadataValue;
use super::member::{ClassicMember, MemberState, Reconciled};
use crate::error::{Error, Result};
use crate::record::fields::put_string;
use crate::record::reader::ByteReader;

/// One record of a consumer-protocol group; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    Metadata {
        group: String,
        epoch: Option<i32>,
    },
    PartitionMetadata {
        group: String,
        topics: Option<Vec<(String, TopicMeta)>>,
    },
    MemberMetadata {
        group: String,
        member: String,
        value: Option<MemberMetadataValue>,
    },
    TargetAssignmentMetadata {
        group: String,
        epoch: Option<i32>,
    },
    TargetAssignmentMember {
        group: String,
        member: String,
        partitions: Option<Assignment>,
    },
    CurrentMemberAssignment {
        group: String,
        member: String,
        value: Option<Reconciled>,
    },
}

impl ConsumerRecord {
    pub fn group(&self) -> &str {
        match self {
            ConsumerRecord::Metadata { group, .. }
            | ConsumerRecord::PartitionMetadata { group, .. }
            | ConsumerRecord::MemberMetadata { group, .. }
            | ConsumerRecord::TargetAssignmentMetadata { group, .. }
            | ConsumerRecord::TargetAssignmentMember { group, .. }
            | ConsumerRecord::CurrentMemberAssignment { group, .. } => group,
        }
    }

    /// A member's records deleted, in Kafka's order.
    pub fn member_tombstones(group: &str, member: &str) -> [ConsumerRecord; 3] {
        let (group, member) = (group.to_string(), member.to_string());
        [
            ConsumerRecord::CurrentMemberAssignment {
                group: group.clone(),
                member: member.clone(),
                value: None,
            },
            ConsumerRecord::TargetAssignmentMember {
                group: group.clone(),
                member: member.clone(),
                partitions: None,
            },
            ConsumerRecord::MemberMetadata {
                group,
                member,
                value: None,
            },
        ]
    }

    /// The group's own records deleted (after its members'), in Kafka's order.
    pub fn group_tombstones(group: &str) -> [ConsumerRecord; 3] {
        [
            ConsumerRecord::TargetAssignmentMetadata {
                group: group.to_string(),
                epoch: None,
            },
            ConsumerRecord::PartitionMetadata {
                group: group.to_string(),
                topics: None,
            },
            ConsumerRecord::Metadata {
                group: group.to_string(),
                epoch: None,
            },
        ]
    }

    pub fn key(&self) -> Result<Bytes> {
        let mut b = BytesMut::new();
        let (kind, group, member) = match self {
            ConsumerRecord::Metadata { group, .. } => (3, group, None),
            ConsumerRecord::PartitionMetadata { group, .. } => (4, group, None),
            ConsumerRecord::MemberMetadata { group, member, .. } => (5, group, Some(member)),
            ConsumerRecord::TargetAssignmentMetadata { group, .. } => (6, group, None),
            ConsumerRecord::TargetAssignmentMember { group, member, .. } => (7, group, Some(member)),
            ConsumerRecord::CurrentMemberAssignment { group, member, .. } => (8, group, Some(member)),
        };
        b.put_i16(kind);
        put_string(&mut b, group)?;
        if let Some(m) = member {
            put_string(&mut b, m)?;
        }
        Ok(b.freeze())
    }

    pub fn value(&self) -> Option<Bytes> {
        let mut b = BytesMut::new();
        b.put_i16(0);
        match self {
            ConsumerRecord::Metadata { epoch: Some(e), .. }
            | ConsumerRecord::TargetAssignmentMetadata { epoch: Some(e), .. } => b.put_i32(*e),
            ConsumerRecord::PartitionMetadata {
                topics: Some(topics), ..
            } => {
                put_len(&mut b, topics.len());
                for (name, t) in topics {
                    b.put_slice(t.id.as_bytes());
                    put_compact(&mut b, Some(name));
                    b.put_i32(t.partitions);
                    put_len(&mut b, 0);
                    b.put_u8(0);
                }
            }
            ConsumerRecord::MemberMetadata { value: Some(v), .. } => {
                put_compact(&mut b, v.instance_id.as_deref());
                put_compact(&mut b, v.rack_id.as_deref());
                put_compact(&mut b, Some(&v.client_id));
                put_compact(&mut b, Some(&v.client_host));
                put_len(&mut b, v.subscribed_topic_names.len());
                for n in &v.subscribed_topic_names {
                    put_compact(&mut b, Some(n));
                }
                put_compact(&mut b, v.subscribed_topic_regex.as_deref());
                b.put_i32(v.rebalance_timeout_ms);
                put_compact(&mut b, v.server_assignor.as_deref());
                let Some(c) = &v.classic else {
                    b.put_u8(0);
                    return Some(b.freeze());
                };
                // Tag 0: the classic member's metadata, a nullable struct.
                let mut s = BytesMut::new();
                put_uvarint(&mut s, 1);
                s.put_i32(c.session_timeout_ms);
                put_len(&mut s, c.protocols.len());
                for (name, metadata) in &c.protocols {
                    put_compact(&mut s, Some(name));
                    put_uvarint(&mut s, metadata.len() as u64 + 1);
                    s.put_slice(metadata);
                    s.put_u8(0);
                }
                s.put_u8(0);
                put_uvarint(&mut b, 1);
                put_uvarint(&mut b, 0);
                put_uvarint(&mut b, s.len() as u64);
                b.put_slice(&s);
                return Some(b.freeze());
            }
            ConsumerRecord::TargetAssignmentMember {
                partitions: Some(a), ..
            } => put_assignment(&mut b, a),
            ConsumerRecord::CurrentMemberAssignment { value: Some(r), .. } => {
                b.put_i32(r.epoch);
                b.put_i32(r.previous_epoch);
                b.put_i8(r.state.as_byte());
                put_assignment(&mut b, &r.assigned);
                put_assignment(&mut b, &r.pending_revocation);
            }
            _ => return None,
        }
        b.put_u8(0);
        Some(b.freeze())
    }

    /// Decode a record of types 3–8 (`kind`), the key past its type.
    pub fn decode(kind: i16, key: &mut ByteReader<'_>, value: Option<Bytes>) -> Result<ConsumerRecord> {
        let group = key_string(key)?;
        let member = if matches!(kind, 5 | 7 | 8) {
            key_string(key)?
        } else {
            String::new()
        };
        let Some(value) = value else {
            return Ok(match kind {
                3 => ConsumerRecord::Metadata { group, epoch: None },
                4 => ConsumerRecord::PartitionMetadata { group, topics: None },
                5 => ConsumerRecord::MemberMetadata {
                    group,
                    member,
                    value: None,
                },
                6 => ConsumerRecord::TargetAssignmentMetadata { group, epoch: None },
                7 => ConsumerRecord::TargetAssignmentMember {
                    group,
                    member,
                    partitions: None,
                },
                _ => ConsumerRecord::CurrentMemberAssignment {
                    group,
                    member,
                    value: None,
                },
            });
        };
        let mut v = Compact(ByteReader::new(&value));
        let _version = v.0.i16().ok_or(TRUNCATED)?;
        Ok(match kind {
            3 => ConsumerRecord::Metadata {
                group,
                epoch: Some(v.i32()?),
            },
            4 => {
                let mut topics = Vec::new();
                for _ in 0..v.len()? {
                    let id = v.uuid()?;
                    let name = v.string()?;
                    let partitions = v.i32()?;
                    for _ in 0..v.len()? {
                        v.i32()?;
                        for _ in 0..v.len()? {
                            v.string()?;
                        }
                        v.skip_tags()?;
                    }
                    v.skip_tags()?;
                    topics.push((name, TopicMeta { id, partitions }));
                }
                ConsumerRecord::PartitionMetadata {
                    group,
                    topics: Some(topics),
                }
            }
            5 => {
                let instance_id = v.nullable_string()?;
                let rack_id = v.nullable_string()?;
                let client_id = v.string()?;
                let client_host = v.string()?;
                let mut names = Vec::new();
                for _ in 0..v.len()? {
                    names.push(v.string()?);
                }
                let subscribed_topic_regex = v.nullable_string()?;
                let rebalance_timeout_ms = v.i32()?;
                let server_assignor = v.nullable_string()?;
                let mut classic = None;
                for _ in 0..v.uvarint()? {
                    let tag = v.uvarint()?;
                    let size = v.uvarint()? as usize;
                    let raw = v.0.take(size).ok_or(TRUNCATED)?;
                    if tag == 0 {
                        classic = decode_classic(&value.slice_ref(raw))?;
                    }
                }
                ConsumerRecord::MemberMetadata {
                    group,
                    member,
                    value: Some(MemberMetadataValue {
                        instance_id,
                        rack_id,
                        client_id,
                        client_host,
                        subscribed_topic_names: names,
                        subscribed_topic_regex,
                        rebalance_timeout_ms,
                        server_assignor,
                        classic,
                    }),
                }
            }
            6 => ConsumerRecord::TargetAssignmentMetadata {
                group,
                epoch: Some(v.i32()?),
            },
            7 => ConsumerRecord::TargetAssignmentMember {
                group,
                member,
                partitions: Some(v.assignment()?),
            },
            _ => ConsumerRecord::CurrentMemberAssignment {
                group,
                member,
                value: Some(Reconciled {
                    epoch: v.i32()?,
                    previous_epoch: v.i32()?,
                    state: MemberState::from_byte(v.0.i8().ok_or(TRUNCATED)?),
                    assigned: v.assignment()?,
                    pending_revocation: v.assignment()?,
                }),
            },
        })
    }
}

const TRUNCATED: Error = Error::CorruptMessage("truncated consumer group record");

fn decode_classic(raw: &Bytes) -> Result<Option<ClassicMember>> {
    let mut c = Compact(ByteReader::new(raw));
    if c.uvarint()? == 0 {
        return Ok(None);
    }
    let session_timeout_ms = c.i32()?;
    let mut protocols = Vec::new();
    for _ in 0..c.len()? {
        let name = c.string()?;
        let len = (c.uvarint()? as usize).saturating_sub(1);
        let data = c.0.take(len).ok_or(TRUNCATED)?;
        protocols.push((name, raw.slice_ref(data)));
        c.skip_tags()?;
    }
    Ok(Some(ClassicMember {
        session_timeout_ms,
        protocols,
    }))
}

fn key_string(r: &mut ByteReader<'_>) -> Result<String> {
    let len = r.i16().ok_or(TRUNCATED)?.max(0) as usize;
    let raw = r.take(len).ok_or(TRUNCATED)?;
    String::from_utf8(raw.to_vec()).map_err(|_| Error::CorruptMessage("non-UTF-8 key in __consumer_offsets"))
}

fn put_uvarint(b: &mut BytesMut, mut n: u64) {
    while n >= 0x80 {
        b.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    b.put_u8(n as u8);
}

fn put_len(b: &mut BytesMut, n: usize) {
    put_uvarint(b, n as u64 + 1);
}

fn put_compact(b: &mut BytesMut, s: Option<&str>) {
    match s {
        None => b.put_u8(0),
        Some(s) => {
            put_len(b, s.len());
            b.put_slice(s.as_bytes());
        }
    }
}

fn put_assignment(b: &mut BytesMut, a: &Assignment) {
    put_len(b, a.len());
    for (topic, parts) in a {
        b.put_slice(topic.as_bytes());
        put_len(b, parts.len());
        for p in parts {
            b.put_i32(*p);
        }
        b.put_u8(0);
    }
}

/// A reader of the flexible encoding.
struct Compact<'a>(ByteReader<'a>);

impl Compact<'_> {
    fn uvarint(&mut self) -> Result<u64> {
        let mut n = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.0.u8().ok_or(TRUNCATED)?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Error::CorruptMessage("varint too long in consumer group record"))
    }
    fn i32(&mut self) -> Result<i32> {
        self.0.i32().ok_or(TRUNCATED)
    }
    /// An array's length (a null array reads as empty).
    fn len(&mut self) -> Result<usize> {
        let n = self.uvarint()?.saturating_sub(1) as usize;
        // Each element takes at least a byte: a length past the data is damage.
        if n > self.0.rest().len() {
            return Err(TRUNCATED);
        }
        Ok(n)
    }
    fn nullable_string(&mut self) -> Result<Option<String>> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let raw = self.0.take(n as usize - 1).ok_or(TRUNCATED)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| Error::CorruptMessage("non-UTF-8 string in consumer group record"))
    }
    fn string(&mut self) -> Result<String> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }
    fn uuid(&mut self) -> Result<Uuid> {
        Ok(Uuid::from_bytes(self.0.array::<16>().ok_or(TRUNCATED)?))
    }
    fn skip_tags(&mut self) -> Result<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.0.take(size).ok_or(TRUNCATED)?;
        }
        Ok(())
    }
    fn assignment(&mut self) -> Result<Assignment> {
        let mut a = Assignment::new();
        for _ in 0..self.len()? {
            let topic = self.uuid()?;
            let mut parts = std::collections::BTreeSet::new();
            for _ in 0..self.len()? {
                parts.insert(self.i32()?);
            }
            self.skip_tags()?;
            a.insert(topic, parts);
        }
        Ok(a)
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;

//! The request versions Kafka 4 dropped (KIP-896) and Kafka 3.9 still served, for
//! the clients that still send them (sarama before 1.30 by default, kafka-python
//! 1.x, old Java clients).
//!
//! kafka-protocol, like Kafka 4, no longer knows these versions. Each of them is
//! the next version up minus a few fields, so instead of a second codec this module
//! rewrites the bytes: a request of an old version becomes the same request in the
//! oldest version the codec knows (its *bridge* version), which the handler serves
//! as usual, and the response encoded in the bridge version is rewritten down to
//! the old version the client asked in. Every one of these versions is
//! non-flexible: int16-length strings, int32-count arrays, no tagged fields.
//!
//! What the rewrite cannot express is left to the handler, which sees the client's
//! version in `RequestContext::wire_version`: message sets v0/v1 in Produce v0–2
//! (up-converted before the append) and in Fetch v0–3 (down-converted for the
//! client), as Kafka did.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use crate::record::reader::ByteReader;

/// The oldest version kafka-protocol encodes of `api`, for the APIs whose older
/// versions are rewritten here; `None` for the others.
pub fn bridge(api: ApiKey) -> Option<i16> {
    use ApiKey as K;
    Some(match api {
        K::Produce => 3,
        K::Fetch => 4,
        K::ListOffsets => 1,
        K::OffsetCommit => 2,
        K::OffsetFetch => 1,
        K::CreateTopics => 2,
        K::DeleteTopics => 1,
        K::DescribeConfigs => 1,
        K::DescribeLogDirs => 1,
        _ => return None,
    })
}

/// The version to decode `body` at, and the body to decode: a request below the
/// codec's range rewritten to its bridge version, any other unchanged. `None` if
/// the old request is malformed.
pub fn upgrade_request(api: ApiKey, version: i16, body: Bytes) -> Option<(i16, Bytes)> {
    let bridge = match bridge(api) {
        Some(bridge) if version < bridge => bridge,
        _ => return Some((version, body)),
    };
    let mut t = Rewrite::new(&body);
    use ApiKey as K;
    match api {
        // v3 put transactional_id first; everything else is as in v0–2.
        K::Produce => {
            t.out.put_i16(-1);
            t.rest();
        }
        // v3 added max_bytes, v4 isolation_level, both after min_bytes.
        K::Fetch => {
            t.copy(12)?; // replica_id, max_wait_ms, min_bytes
            if version == 3 {
                t.copy(4)?;
            } else {
                // Kafka's answer to an old fetch was bounded by partitions only.
                t.out.put_i32(i32::MAX);
            }
            t.out.put_i8(0); // READ_UNCOMMITTED: old clients know no transactions
            t.rest();
        }
        // v1 dropped max_num_offsets: one offset per partition from then on.
        K::ListOffsets => {
            t.copy(4)?; // replica_id
            t.array(|t| {
                t.string()?;
                t.array(|t| {
                    t.copy(12)?; // partition_index, timestamp
                    t.skip(4) // max_num_offsets
                })
            })?;
        }
        K::OffsetCommit => {
            t.string()?; // group_id
            if version == 0 {
                // No generation: a commit from outside any group's generation.
                t.out.put_i32(-1);
                t.out.put_i16(0); // member_id ""
            } else {
                t.copy(4)?; // generation_id
                t.string()?; // member_id
            }
            t.out.put_i64(-1); // retention_time_ms: the broker's default
            t.array(|t| {
                t.string()?;
                t.array(|t| {
                    t.copy(12)?; // partition_index, committed_offset
                    if version == 1 {
                        t.skip(8)?; // commit_timestamp, which v2 dropped
                    }
                    t.string() // committed_metadata
                })
            })?;
        }
        // v0 of these read what v1 reads (OffsetFetch v0 read ZooKeeper, which is
        // gone; the group coordinator answers instead).
        K::OffsetFetch | K::DeleteTopics | K::DescribeLogDirs => t.rest(),
        K::CreateTopics => {
            t.rest();
            t.out.put_i8(0); // validate_only, added in v1
        }
        K::DescribeConfigs => {
            t.rest();
            t.out.put_i8(0); // include_synonyms, added in v1
        }
        _ => return None,
    }
    t.done().map(|b| (bridge, b))
}

/// Rewrite a response `body` encoded at `api`'s bridge version down to `version`.
/// `None` only if the body is not what the codec encodes (a broker bug).
pub fn downgrade_response(api: ApiKey, version: i16, body: &[u8]) -> Option<Bytes> {
    let mut t = Rewrite::new(body);
    use ApiKey as K;
    match api {
        K::Produce => {
            // v2 = v3; v1 has no log_append_time; v0 no throttle_time either.
            if version == 2 {
                t.rest();
            } else {
                t.array(|t| {
                    t.string()?;
                    t.array(|t| {
                        t.copy(14)?; // index, error_code, base_offset
                        t.skip(8) // log_append_time_ms
                    })
                })?;
                if version == 1 {
                    t.copy(4)?;
                } else {
                    t.skip(4)?;
                }
            }
        }
        K::Fetch => {
            if version == 0 {
                t.skip(4)?; // throttle_time_ms, from v1
            } else {
                t.copy(4)?;
            }
            t.array(|t| {
                t.string()?;
                t.array(|t| {
                    t.copy(14)?; // partition_index, error_code, high_watermark
                    t.skip(8)?; // last_stable_offset, from v4
                    t.skip_array(|t| t.skip(16))?; // aborted_transactions, from v4
                    t.bytes() // records
                })
            })?;
        }
        K::ListOffsets => {
            t.array(|t| {
                t.string()?;
                t.array(|t| {
                    t.copy(4)?; // partition_index
                    let error = t.read_i16()?;
                    t.out.put_i16(error);
                    t.skip(8)?; // timestamp, from v1
                    let offset = t.read_i64()?;
                    // old_style_offsets: the one offset found, if any.
                    if error == 0 && offset >= 0 {
                        t.out.put_i32(1);
                        t.out.put_i64(offset);
                    } else {
                        t.out.put_i32(0);
                    }
                    Some(())
                })
            })?;
        }
        K::OffsetCommit | K::OffsetFetch | K::DescribeLogDirs => t.rest(),
        K::CreateTopics => {
            t.skip(4)?; // throttle_time_ms, from v2
            t.array(|t| {
                t.string()?; // name
                t.copy(2)?; // error_code
                if version == 1 {
                    t.string()
                } else {
                    t.skip_string() // error_message, from v1
                }
            })?;
        }
        K::DeleteTopics => {
            t.skip(4)?; // throttle_time_ms, from v1
            t.rest();
        }
        K::DescribeConfigs => {
            t.copy(4)?; // throttle_time_ms
            t.array(|t| {
                t.copy(2)?; // error_code
                t.string()?; // error_message
                t.copy(1)?; // resource_type
                t.string()?; // resource_name
                t.array(|t| {
                    t.string()?; // name
                    t.string()?; // value
                    t.copy(1)?; // read_only
                                // v0's is_default: whether the value is the default one.
                    let source = t.read_i8()?;
                    t.out.put_i8(i8::from(source == DEFAULT_CONFIG));
                    t.copy(1)?; // is_sensitive
                    t.skip_array(|t| {
                        t.skip_string()?;
                        t.skip_string()?;
                        t.skip(1)
                    })
                })
            })?;
        }
        _ => return None,
    }
    t.done()
}

/// DescribeConfigs' config_source for a value nobody set.
const DEFAULT_CONFIG: i8 = 5;

/// Reads a message and writes its rewrite: fields copied, skipped or added.
struct Rewrite<'a> {
    r: ByteReader<'a>,
    out: BytesMut,
}

impl<'a> Rewrite<'a> {
    fn new(body: &'a [u8]) -> Self {
        Rewrite {
            r: ByteReader::new(body),
            out: BytesMut::with_capacity(body.len() + 16),
        }
    }

    fn copy(&mut self, n: usize) -> Option<()> {
        self.out.put_slice(self.r.take(n)?);
        Some(())
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.r.take(n).map(drop)
    }

    fn read_i8(&mut self) -> Option<i8> {
        self.r.i8()
    }

    fn read_i16(&mut self) -> Option<i16> {
        self.r.i16()
    }

    fn read_i64(&mut self) -> Option<i64> {
        self.r.i64()
    }

    /// Everything left, unchanged.
    fn rest(&mut self) {
        self.out.put_slice(self.r.rest());
        self.r = ByteReader::new(&[]);
    }

    /// The length of a nullable string (int16) or bytes (int32) field, and the
    /// field's bytes from its length prefix on.
    fn field(&mut self, wide: bool) -> Option<&'a [u8]> {
        let start = self.r.rest();
        let len = if wide {
            i64::from(self.r.i32()?)
        } else {
            i64::from(self.r.i16()?)
        };
        let prefix = if wide { 4 } else { 2 };
        if len >= 0 {
            self.r.take(usize::try_from(len).ok()?)?;
        } else if len != -1 {
            return None;
        }
        start.get(..prefix + len.max(0) as usize)
    }

    fn string(&mut self) -> Option<()> {
        let f = self.field(false)?;
        self.out.put_slice(f);
        Some(())
    }

    fn skip_string(&mut self) -> Option<()> {
        self.field(false).map(drop)
    }

    fn bytes(&mut self) -> Option<()> {
        let f = self.field(true)?;
        self.out.put_slice(f);
        Some(())
    }

    /// An array (int32 count, −1 for null) whose elements `each` rewrites. The
    /// count is never allocated from: a lying count fails at the first missing
    /// element.
    fn array(&mut self, mut each: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        let n = self.r.i32()?;
        self.out.put_i32(n);
        for _ in 0..n.max(0) {
            each(self)?;
        }
        Some(())
    }

    /// An array the rewrite leaves out.
    fn skip_array(&mut self, mut each: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        let n = self.r.i32()?;
        let mut dropped = Rewrite {
            r: std::mem::replace(&mut self.r, ByteReader::new(&[])),
            out: BytesMut::new(),
        };
        for _ in 0..n.max(0) {
            each(&mut dropped)?;
        }
        self.r = dropped.r;
        Some(())
    }

    /// The rewrite, if all of the input was read.
    fn done(self) -> Option<Bytes> {
        self.r.is_empty().then(|| self.out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
        let mut b = BytesMut::new();
        m.encode(&mut b, version).unwrap();
        b.freeze()
    }

    #[test]
    fn produce_v0_to_v2_requests_become_v3_with_no_transactional_id() {
        // v0–2 requests are v3's bytes without the leading transactional_id.
        let mut r = ProduceRequest::default();
        r.acks = -1;
        r.timeout_ms = 1234;
        let v3 = encode(&r, 3);
        for version in 0..3 {
            let (bridge, up) = upgrade_request(ApiKey::Produce, version, v3.slice(2..)).unwrap();
            assert_eq!((bridge, &up), (3, &v3));
        }
    }

    #[test]
    fn produce_responses_lose_the_fields_old_versions_lack() {
        let mut p = produce_response::PartitionProduceResponse::default();
        p.index = 7;
        p.base_offset = 42;
        p.log_append_time_ms = 99;
        let mut t = produce_response::TopicProduceResponse::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        t.partition_responses = vec![p];
        let mut r = ProduceResponse::default();
        r.responses = vec![t];
        r.throttle_time_ms = 5;
        let v3 = encode(&r, 3);
        let v0 = downgrade_response(ApiKey::Produce, 0, &v3).unwrap();
        // topics(1) name "t", partitions(1): index, error, base_offset.
        let mut expected = BytesMut::new();
        expected.put_i32(1);
        expected.put_i16(1);
        expected.put_slice(b"t");
        expected.put_i32(1);
        expected.put_i32(7);
        expected.put_i16(0);
        expected.put_i64(42);
        assert_eq!(v0, expected);
        let v1 = downgrade_response(ApiKey::Produce, 1, &v3).unwrap();
        expected.put_i32(5);
        assert_eq!(v1, expected);
        assert_eq!(downgrade_response(ApiKey::Produce, 2, &v3).unwrap(), v3);
    }

    #[test]
    fn fetch_v0_requests_gain_max_bytes_and_isolation_level() {
        let mut r = FetchRequest::default();
        r.replica_id = BrokerId(-1);
        r.max_wait_ms = 500;
        r.min_bytes = 1;
        r.max_bytes = i32::MAX;
        let mut p = fetch_request::FetchPartition::default();
        p.partition = 3;
        p.fetch_offset = 10;
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(StrBytes::from_static_str("t"));
        t.partitions = vec![p];
        r.topics = vec![t];
        let v4 = encode(&r, 4);
        // v0: v4 without max_bytes (4 bytes) and isolation_level (1 byte).
        let mut v0 = BytesMut::from(&v4[..12]);
        v0.put_slice(&v4[17..]);
        let (bridge, up) = upgrade_request(ApiKey::Fetch, 0, v0.freeze()).unwrap();
        assert_eq!(bridge, 4);
        assert_eq!(FetchRequest::decode(&mut up.clone(), 4).unwrap(), r);
    }

    #[test]
    fn describe_configs_v0_reports_defaults_as_is_default() {
        let mut c = describe_configs_response::DescribeConfigsResourceResult::default();
        c.name = StrBytes::from_static_str("retention.ms");
        c.value = Some(StrBytes::from_static_str("1"));
        c.config_source = DEFAULT_CONFIG;
        let mut s = describe_configs_response::DescribeConfigsSynonym::default();
        s.name = StrBytes::from_static_str("log.retention.ms");
        c.synonyms = vec![s];
        let mut res = describe_configs_response::DescribeConfigsResult::default();
        res.resource_type = 2;
        res.resource_name = StrBytes::from_static_str("t");
        res.configs = vec![c];
        let mut r = DescribeConfigsResponse::default();
        r.results = vec![res];
        let v0 = downgrade_response(ApiKey::DescribeConfigs, 0, &encode(&r, 1)).unwrap();
        // value "1", then read_only false, is_default true, is_sensitive false;
        // the synonyms are gone.
        assert!(v0.ends_with(&[b'1', 0, 1, 0]), "{v0:?}");
    }

    #[test]
    fn malformed_old_requests_are_refused_not_misread() {
        assert!(upgrade_request(ApiKey::ListOffsets, 0, Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0, 0, 0])).is_none());
        assert!(upgrade_request(ApiKey::OffsetCommit, 1, Bytes::from_static(&[0, 1])).is_none());
        // In range for the codec: untouched.
        let body = Bytes::from_static(b"xyz");
        assert_eq!(upgrade_request(ApiKey::Produce, 5, body.clone()), Some((5, body)));
    }
}

//! Reading the consumer protocol's subscription metadata (what topics a member
//! wants), which the broker otherwise passes through untouched.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A consumer's subscription as a classic JoinGroup carries it: the topics, and
/// (v1+) the partitions it still owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub owned: Vec<(String, Vec<i32>)>,
    pub rack_id: Option<String>,
}

/// Decode a "consumer" protocol subscription; None if it does not parse.
pub fn subscription(metadata: &Bytes) -> Option<Subscription> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, 3);
    let s = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(Subscription {
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect(),
        rack_id: s.rack_id.map(|r| r.to_string()),
    })
}

/// Partitions named in a "consumer" protocol assignment (empty if it does not
/// parse).
pub fn decode_assignment(assignment: &Bytes) -> Vec<(String, Vec<i32>)> {
    let mut buf = assignment.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    ConsumerProtocolAssignment::decode(&mut buf, version)
        .map(|a| {
            a.assigned_partitions
                .iter()
                .map(|t| (t.topic.to_string(), t.partitions.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Encode an assignment (topic names and partitions) as the "consumer"
/// protocol's ConsumerProtocolAssignment v0, as a classic member expects it.
pub fn encode_assignment(partitions: &[(String, Vec<i32>)]) -> Bytes {
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = partitions
        .iter()
        .map(|(topic, ps)| {
            let mut t = TopicPartition::default();
            t.topic = TopicName(StrBytes::from_string(topic.clone()));
            t.partitions = ps.clone();
            t
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    // Encoding an in-memory assignment at v0 cannot fail.
    let _ = a.encode(&mut buf, 0);
    buf.freeze()
}

/// Topics named in a "consumer" protocol subscription; empty if it does not parse
/// (another protocol type, or a client's own format).
pub fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16();
    match ConsumerProtocolSubscription::decode(&mut buf, version) {
        Ok(s) => s.topics.iter().map(|t| t.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn reads_consumer_subscriptions() {
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = vec![StrBytes::from_static_str("orders"), StrBytes::from_static_str("stock")];
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        s.encode(&mut buf, 1).unwrap();
        assert_eq!(subscribed_topics(&buf.freeze()), vec!["orders", "stock"]);
        assert!(subscribed_topics(&Bytes::from_static(b"x")).is_empty());
    }
}

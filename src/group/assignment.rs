//! Reading the consumer protocol's subscription metadata (what topics a member
//! wants), which the broker otherwise passes through untouched.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

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

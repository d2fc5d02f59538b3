//! Request headers (v1 and the flexible v2) and response headers (v0, v1).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable};

/// What the broker needs from a request header, plus the undecoded body.
#[derive(Debug, Clone)]
pub struct Request {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed request header")]
pub struct HeaderError;

/// Split a frame into header and body. The first 8 bytes (key, version, correlation
/// id) are the same in every header version, so even a request for an API this
/// broker does not know can be answered.
pub fn parse_request(mut frame: Bytes) -> Result<Request, HeaderError> {
    if frame.len() < 8 {
        return Err(HeaderError);
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    match ApiKey::try_from(api_key) {
        Ok(key) => {
            let header_version = key.request_header_version(api_version);
            let header = RequestHeader::decode(&mut frame, header_version).map_err(|_| HeaderError)?;
            Ok(Request {
                api_key,
                api_version,
                correlation_id,
                client_id: header.client_id.map(|s| s.to_string()),
                body: frame,
            })
        }
        Err(_) => {
            // Unknown API: header v1 (key, version, correlation id, client id); the
            // body stays unread.
            frame.advance(8);
            if frame.len() >= 2 {
                let len = frame.get_i16();
                if len > 0 && frame.len() >= len as usize {
                    frame.advance(len as usize);
                }
            }
            Ok(Request {
                api_key,
                api_version,
                correlation_id,
                client_id: None,
                body: frame,
            })
        }
    }
}

/// Encode a response header of the given version (0: correlation id; 1: plus tagged
/// fields) into `out`.
pub fn encode_response_header<B: ByteBufMut>(out: &mut B, correlation_id: i32, version: i16) {
    if version == 0 {
        out.put_i32(correlation_id);
    } else {
        let mut h = ResponseHeader::default();
        h.correlation_id = correlation_id;
        h.encode(out, version).expect("response header encodes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::StrBytes;

    fn header_bytes(key: ApiKey, version: i16, corr: i32) -> BytesMut {
        let mut h = RequestHeader::default();
        h.request_api_key = key as i16;
        h.request_api_version = version;
        h.correlation_id = corr;
        h.client_id = Some(StrBytes::from_static_str("rdkafka"));
        let mut b = BytesMut::new();
        h.encode(&mut b, key.request_header_version(version)).unwrap();
        b
    }

    #[test]
    fn parses_v1_and_flexible_v2_headers() {
        for (key, version) in [(ApiKey::Metadata, 4), (ApiKey::Metadata, 12), (ApiKey::Produce, 9)] {
            let mut b = header_bytes(key, version, 77);
            b.extend_from_slice(b"BODY");
            let r = parse_request(b.freeze()).unwrap();
            assert_eq!(r.api_key, key as i16);
            assert_eq!(r.api_version, version);
            assert_eq!(r.correlation_id, 77);
            assert_eq!(r.client_id.as_deref(), Some("rdkafka"));
            assert_eq!(&r.body[..], b"BODY");
        }
    }

    #[test]
    fn unknown_api_keys_still_yield_a_correlation_id() {
        let mut b = BytesMut::new();
        b.put_i16(999);
        b.put_i16(3);
        b.put_i32(5);
        b.put_i16(-1);
        let r = parse_request(b.freeze()).unwrap();
        assert_eq!((r.api_key, r.api_version, r.correlation_id), (999, 3, 5));
    }

    #[test]
    fn short_header_is_an_error() {
        assert!(parse_request(Bytes::from_static(&[0, 3, 0])).is_err());
    }
}

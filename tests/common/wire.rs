//! A raw Kafka protocol client for tests that need exact control of the bytes.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use strom::protocol::records::{build_batch, NewRecord, ProducerIds};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Wire {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Wire {
    pub async fn connect(addr: SocketAddr) -> Wire {
        Wire {
            stream: TcpStream::connect(addr).await.unwrap(),
            next_correlation: 1,
        }
    }

    pub async fn send_frame(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        out.put_i32(payload.len() as i32);
        out.put_slice(payload);
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next response frame, or None when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(body.into())
    }

    pub fn header(&mut self, key: ApiKey, version: i16) -> (RequestHeader, i32) {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let mut h = RequestHeader::default();
        h.request_api_key = key as i16;
        h.request_api_version = version;
        h.correlation_id = correlation;
        h.client_id = Some(StrBytes::from_static_str("strom-wire-test"));
        (h, correlation)
    }

    /// Encode a request of `version`; returns its correlation id.
    pub async fn send<R: Request>(&mut self, version: i16, request: &R) -> i32 {
        let key = ApiKey::try_from(R::KEY).unwrap();
        let (h, correlation) = self.header(key, version);
        let mut buf = BytesMut::new();
        h.encode(&mut buf, key.request_header_version(version)).unwrap();
        request.encode(&mut buf, version).unwrap();
        self.send_frame(&buf).await;
        correlation
    }

    pub async fn receive<R: Request>(&mut self, version: i16, correlation: i32) -> R::Response {
        let key = ApiKey::try_from(R::KEY).unwrap();
        let mut frame = self.read_frame().await.expect("a response");
        let h = ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        assert_eq!(h.correlation_id, correlation);
        let response = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "{key:?} v{version}: trailing bytes");
        response
    }

    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        let correlation = self.send(version, request).await;
        self.receive::<R>(version, correlation).await
    }
}

/// A record batch as a client would build it.
pub fn batch(count: i32, producer_id: i64, first_sequence: i32, timestamp: i64) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            timestamp: timestamp + i as i64,
        })
        .collect();
    let producer = (producer_id >= 0).then_some(ProducerIds {
        id: producer_id,
        epoch: 0,
        first_sequence,
    });
    Bytes::from(build_batch(&records, producer))
}

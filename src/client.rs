//! A minimal Kafka protocol client, for strom's own command-line tools. It speaks
//! the protocol, so the tools work against any Kafka-compatible broker.

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach a broker at {addr}: {source} (is it running? see --bootstrap-server)")]
    Connect { addr: String, source: std::io::Error },
    #[error("connection to the broker failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected answer from the broker: {0}")]
    Protocol(String),
    #[error("the broker answered {name}{detail}")]
    Kafka { code: i16, name: String, detail: String },
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// A Kafka error code (and message) from a response; `Ok` for 0.
    pub fn check(code: i16, message: Option<&str>) -> Result<(), ClientError> {
        match kafka_protocol::error::ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(e) => Err(ClientError::Kafka {
                code,
                name: format!("{e:?}"),
                detail: message.map(|m| format!(": {m}")).unwrap_or_default(),
            }),
        }
    }
}

pub struct Client {
    stream: TcpStream,
    next_correlation: i32,
}

impl Client {
    /// Connect to the first reachable address of a comma-separated bootstrap list.
    pub async fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        let mut last = None;
        for addr in bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match tokio::time::timeout(std::time::Duration::from_secs(10), TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    return Ok(Client {
                        stream,
                        next_correlation: 1,
                    })
                }
                Ok(Err(source)) => last = Some((addr.to_string(), source)),
                Err(_) => last = Some((addr.to_string(), std::io::ErrorKind::TimedOut.into())),
            }
        }
        let (addr, source) = last.unwrap_or_else(|| (bootstrap.to_string(), std::io::ErrorKind::InvalidInput.into()));
        Err(ClientError::Connect { addr, source })
    }

    /// Send one request of `version` and read its response.
    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response, ClientError> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Protocol("unknown api key".into()))?;
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str("strom-cli"));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        request
            .encode(&mut body, version)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        self.stream.write_all(&frame).await?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await?;
        let mut response = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
        self.stream.read_exact(&mut response).await?;
        let mut response = bytes::Bytes::from(response);
        let h = ResponseHeader::decode(&mut response, key.response_header_version(version))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if h.correlation_id != correlation {
            return Err(ClientError::Protocol("response to another request".into()));
        }
        let decoded = R::Response::decode(&mut response, version).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if response.has_remaining() {
            return Err(ClientError::Protocol(format!("{key:?} v{version}: trailing bytes")));
        }
        Ok(decoded)
    }
}

//! A minimal Kafka protocol client, for strom's own command-line tools. It speaks
//! the protocol, so the tools work against any Kafka-compatible broker, also
//! over TLS and with a SASL login ([`security`]).

pub mod pool;
pub mod route;
pub mod security;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use security::{ClientSecurity, ClientTls};

/// Where the tools connect: a bootstrap list and how to get in.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    pub servers: String,
    pub security: ClientSecurity,
}

impl Bootstrap {
    /// Plain connections to `servers`.
    pub fn plain(servers: &str) -> Bootstrap {
        Bootstrap {
            servers: servers.to_string(),
            security: ClientSecurity::default(),
        }
    }

    /// A broker's connection to another broker at `addr`, on the inter-broker
    /// listener, secured and authenticated as `inter` says.
    pub fn to_broker(addr: &str, inter: &crate::config::cluster::InterBroker) -> Bootstrap {
        Bootstrap {
            servers: addr.to_string(),
            security: ClientSecurity {
                tls: inter.tls.as_ref().map(|t| ClientTls {
                    ca: Some(t.ca.clone()),
                    identity: t.identity.clone().map(|both| (both.clone(), both)),
                }),
                sasl: inter.sasl.clone(),
            },
        }
    }
}

/// How long reaching one broker may take: TCP, TLS and SASL together.
const CONNECT_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// A byte stream to a broker: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

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
    /// The broker was not there (refused, reset, timed out): retried quietly.
    /// Anything else (a certificate, a login, an answer refused) needs an
    /// operator's eye.
    pub fn is_unreachable(&self) -> bool {
        use std::io::ErrorKind::*;
        matches!(self, ClientError::Connect { source, .. } | ClientError::Io(source)
            if matches!(source.kind(), ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
                | AddrNotAvailable | TimedOut | UnexpectedEof | BrokenPipe))
    }

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
    stream: Box<dyn Stream>,
    next_correlation: i32,
    client_id: &'static str,
    /// Where responses are read: kept between calls, so a follower fetching
    /// megabytes many times a second reuses one allocation once the previous
    /// response has been dropped, instead of a fresh zeroed one each time.
    received: BytesMut,
    /// How long a call waits for its whole response (request.timeout.ms).
    request_timeout: std::time::Duration,
    /// A call ended between sending its request and reading all of its
    /// response (a timeout, a reset, a response too large): what the stream
    /// holds next is not the next call's answer, so no call is made on it.
    out_of_step: bool,
}

/// How much more room a response being read takes at a time: memory grows
/// with the bytes that arrive, not with the size a peer claims.
const READ_CHUNK: usize = 1 << 20;

/// The largest response read: above socket.request.max.bytes (100 MiB, so no
/// record batch is larger), with room for a response's own fields. A peer
/// announcing more is not a Kafka broker (librdkafka's
/// receive.message.max.bytes is 100 MB for the same reason).
pub const MAX_RESPONSE_BYTES: usize = 128 << 20;

/// A call's default wait for its response: longer than the 30 s that strom's
/// tools give a broker to finish a request (timeout_ms), so the broker's own
/// answer to a slow request comes first; a peer that never answers does not
/// hold a tool forever.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

impl Client {
    /// Connect to the first reachable address of the bootstrap list, with TLS
    /// and a SASL login when the settings ask for them; each address within
    /// [`CONNECT_WITHIN`], the handshakes included (a peer that accepts the
    /// connection and never answers must not hold the caller forever).
    pub async fn connect(bootstrap: &Bootstrap) -> Result<Client, ClientError> {
        let mut last = None;
        let servers = bootstrap.servers.as_str();
        for addr in servers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match tokio::time::timeout(CONNECT_WITHIN, Client::open(addr, &bootstrap.security)).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(ClientError::Connect { addr, source })) => last = Some((addr, source)),
                Ok(Err(e)) => return Err(e),
                Err(_) => last = Some((addr.to_string(), std::io::ErrorKind::TimedOut.into())),
            }
        }
        let (addr, source) = last.unwrap_or_else(|| (servers.to_string(), std::io::ErrorKind::InvalidInput.into()));
        Err(ClientError::Connect { addr, source })
    }

    /// One address: TCP, then TLS and SASL as `security` asks.
    async fn open(addr: &str, security: &ClientSecurity) -> Result<Client, ClientError> {
        let unreachable = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let tcp = TcpStream::connect(addr).await.map_err(unreachable)?;
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let connector = tokio_rustls::TlsConnector::from(ClientSecurity::tls_config(tls)?);
                let name = ClientSecurity::server_name(addr)?;
                Box::new(connector.connect(name, tcp).await.map_err(unreachable)?)
            }
        };
        let mut client = Client {
            stream,
            next_correlation: 1,
            client_id: "strom-cli",
            received: BytesMut::new(),
            request_timeout: REQUEST_TIMEOUT,
            out_of_step: false,
        };
        if let Some((mechanism, user, password)) = &security.sasl {
            client.login(mechanism, user, password).await?;
        }
        Ok(client)
    }

    /// A client over an already connected byte stream (the console's
    /// in-process connection), sending `client_id`.
    pub fn over<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S, client_id: &'static str) -> Client {
        Client {
            stream: Box::new(stream),
            next_correlation: 1,
            client_id,
            received: BytesMut::new(),
            request_timeout: REQUEST_TIMEOUT,
            out_of_step: false,
        }
    }

    /// Wait at most `timeout` for each response from now on.
    pub fn set_request_timeout(&mut self, timeout: std::time::Duration) {
        self.request_timeout = timeout;
    }

    /// Send `client_id` from now on.
    pub fn set_client_id(&mut self, client_id: &'static str) {
        self.client_id = client_id;
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds: PLAIN in one, SCRAM in
    /// two (and the server's signature checked).
    async fn login(&mut self, mechanism: &str, user: &str, password: &str) -> Result<(), ClientError> {
        use crate::security::scram::{ScramClient, ScramMechanism};
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_string(mechanism.to_string());
        let offered = self.call(1, &hs).await?;
        ClientError::check(
            offered.error_code,
            Some(&format!("{mechanism} is not enabled on this listener")),
        )?;
        let round = |bytes: Vec<u8>| {
            let mut auth = SaslAuthenticateRequest::default();
            auth.auth_bytes = bytes.into();
            auth
        };
        if mechanism == "PLAIN" {
            let r = self
                .call(1, &round(format!("\0{user}\0{password}").into_bytes()))
                .await?;
            return ClientError::check(r.error_code, r.error_message.as_deref());
        }
        let m = ScramMechanism::from_name(mechanism).ok_or_else(|| {
            ClientError::Usage(format!(
                "sasl.mechanism {mechanism}: strom's tools log in with PLAIN or SCRAM-SHA-256/512"
            ))
        })?;
        let (mut scram, first) = ScramClient::start(m, user, password);
        let r = self.call(1, &round(first)).await?;
        ClientError::check(r.error_code, r.error_message.as_deref())?;
        let last = scram.answer(&r.auth_bytes).map_err(ClientError::Protocol)?;
        let r = self.call(1, &round(last)).await?;
        ClientError::check(r.error_code, r.error_message.as_deref())?;
        scram.verify(&r.auth_bytes).map_err(ClientError::Protocol)
    }

    /// Send one request of `version` and read its response.
    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response, ClientError> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Protocol("unknown api key".into()))?;
        if self.out_of_step {
            return Err(ClientError::Protocol(
                "the connection was left mid-response by an earlier call".into(),
            ));
        }
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str(self.client_id));
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
        // Out of step until the whole response is in.
        self.out_of_step = true;
        let timeout = self.request_timeout;
        let mut response = match tokio::time::timeout(timeout, self.exchange(&frame, key, version)).await {
            Ok(exchanged) => exchanged?,
            Err(_) => {
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{key:?}: no answer within {} ms", timeout.as_millis()),
                )))
            }
        };
        let h = ResponseHeader::decode(&mut response, key.response_header_version(version))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if h.correlation_id != correlation {
            return Err(ClientError::Protocol("response to another request".into()));
        }
        self.out_of_step = false;
        let decoded = R::Response::decode(&mut response, version).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if response.has_remaining() {
            return Err(ClientError::Protocol(format!("{key:?} v{version}: trailing bytes")));
        }
        Ok(decoded)
    }

    /// Send a request frame and read its response frame.
    async fn exchange(&mut self, frame: &[u8], key: ApiKey, version: i16) -> Result<bytes::Bytes, ClientError> {
        self.stream.write_all(frame).await?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .map_err(|_| ClientError::Protocol(format!("{key:?} v{version}: a negative response size")))?;
        if size > MAX_RESPONSE_BYTES {
            return Err(ClientError::Protocol(format!(
                "{key:?} v{version}: a response of {size} bytes, more than the {MAX_RESPONSE_BYTES} this client reads"
            )));
        }
        self.read_frame(size).await
    }

    /// The next `size` bytes of the stream, read into `received` without
    /// zeroing it first. Once the Bytes of the last response are all dropped,
    /// `reserve` takes its allocation back.
    async fn read_frame(&mut self, size: usize) -> Result<bytes::Bytes, ClientError> {
        self.received.clear();
        while self.received.len() < size {
            let wanted = size - self.received.len();
            if self.received.capacity() == self.received.len() {
                self.received.reserve(wanted.min(READ_CHUNK));
            }
            // No further than this frame: the next one is another call's.
            let read = (&mut self.stream)
                .take(wanted as u64)
                .read_buf(&mut self.received)
                .await?;
            if read == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
        Ok(self.received.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseHeader};
    use tokio::io::DuplexStream;

    /// Read one request frame from `broker`'s side, answer it with `records`
    /// in a Fetch v12 response.
    async fn answer_fetch(broker: &mut DuplexStream, records: &'static [u8]) {
        let mut size = [0u8; 4];
        broker.read_exact(&mut size).await.unwrap();
        let mut request = vec![0u8; i32::from_be_bytes(size) as usize];
        broker.read_exact(&mut request).await.unwrap();
        let mut request = bytes::Bytes::from(request);
        let header = RequestHeader::decode(&mut request, 2).unwrap();
        let mut p = PartitionData::default();
        p.records = Some(bytes::Bytes::from_static(records));
        let mut t = FetchableTopicResponse::default();
        t.partitions = vec![p];
        let mut response = FetchResponse::default();
        response.responses = vec![t];
        let mut body = BytesMut::new();
        let mut h = ResponseHeader::default();
        h.correlation_id = header.correlation_id;
        h.encode(&mut body, 1).unwrap();
        response.encode(&mut body, 12).unwrap();
        broker.write_all(&(body.len() as i32).to_be_bytes()).await.unwrap();
        broker.write_all(&body).await.unwrap();
    }

    fn records(r: &FetchResponse) -> bytes::Bytes {
        r.responses[0].partitions[0].records.clone().unwrap()
    }

    #[tokio::test]
    async fn a_response_kept_is_not_overwritten_by_the_next_one() {
        // Small pipes: each response arrives in many reads.
        let (near, mut broker) = tokio::io::duplex(1000);
        let mut client = Client::over(near, "test");
        static FIRST: [u8; 5000] = [1; 5000];
        static SECOND: [u8; 3000] = [2; 3000];
        let broker_side = tokio::spawn(async move {
            answer_fetch(&mut broker, &FIRST).await;
            answer_fetch(&mut broker, &SECOND).await;
            answer_fetch(&mut broker, &FIRST).await;
        });
        let first = client.call(12, &FetchRequest::default()).await.unwrap();
        let second = client.call(12, &FetchRequest::default()).await.unwrap();
        assert_eq!(records(&first), &FIRST[..]);
        assert_eq!(records(&second), &SECOND[..]);
        drop((first, second));
        // The buffer given back is reused, and holds only the new response.
        let third = client.call(12, &FetchRequest::default()).await.unwrap();
        assert_eq!(records(&third), &FIRST[..]);
        broker_side.await.unwrap();
    }

    /// A client whose peer answers its first request with `answer`, then goes.
    fn peer_answering(answer: Vec<u8>) -> (Client, tokio::task::JoinHandle<()>) {
        let (near, mut broker) = tokio::io::duplex(1000);
        let broker_side = tokio::spawn(async move {
            let mut request = [0u8; 64];
            let _ = broker.read(&mut request).await.unwrap();
            broker.write_all(&answer).await.unwrap();
        });
        (Client::over(near, "test"), broker_side)
    }

    #[tokio::test]
    async fn a_size_the_peer_never_sends_ends_the_call_without_reserving_it() {
        // The most a response may be announced, ten bytes sent, then the
        // peer is gone.
        let mut answer = (MAX_RESPONSE_BYTES as i32).to_be_bytes().to_vec();
        answer.extend([0u8; 10]);
        let (mut client, broker_side) = peer_answering(answer);
        let failed = client.call(12, &FetchRequest::default()).await;
        assert!(
            matches!(failed, Err(ClientError::Io(ref e)) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "{failed:?}"
        );
        assert!(
            client.received.capacity() <= READ_CHUNK,
            "{}",
            client.received.capacity()
        );
        broker_side.await.unwrap();
    }

    #[tokio::test]
    async fn a_response_larger_than_any_kafka_sends_is_refused_unread() {
        let announced = (MAX_RESPONSE_BYTES as i32 + 1).to_be_bytes().to_vec();
        let (mut client, broker_side) = peer_answering(announced);
        let failed = client.call(12, &FetchRequest::default()).await;
        assert!(
            matches!(failed, Err(ClientError::Protocol(ref m)) if m.contains("more than")),
            "{failed:?}"
        );
        assert_eq!(client.received.capacity(), 0);
        broker_side.await.unwrap();
    }

    #[tokio::test]
    async fn a_call_not_answered_in_time_ends_and_leaves_the_connection_unusable() {
        let (near, mut broker) = tokio::io::duplex(1000);
        let mut client = Client::over(near, "test");
        client.set_request_timeout(std::time::Duration::from_millis(50));
        let failed = client.call(12, &FetchRequest::default()).await;
        assert!(
            matches!(failed, Err(ClientError::Io(ref e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "{failed:?}"
        );
        // The late answer would be taken for the next call's: no next call.
        let broker_side = tokio::spawn(async move { answer_fetch(&mut broker, b"late").await });
        let next = client.call(12, &FetchRequest::default()).await;
        assert!(
            matches!(next, Err(ClientError::Protocol(ref m)) if m.contains("mid-response")),
            "{next:?}"
        );
        broker_side.abort();
    }

    #[tokio::test]
    async fn a_negative_size_is_a_protocol_error() {
        let (mut client, broker_side) = peer_answering((-5i32).to_be_bytes().to_vec());
        let failed = client.call(12, &FetchRequest::default()).await;
        assert!(matches!(failed, Err(ClientError::Protocol(_))), "{failed:?}");
        broker_side.await.unwrap();
    }
}

//! A minimal Kafka protocol client, for strom's own command-line tools. It speaks
//! the protocol, so the tools work against any Kafka-compatible broker, also
//! over TLS and with a SASL login ([`security`]).

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
}

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
        }
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

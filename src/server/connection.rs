//! One client connection: read frames, handle requests in arrival order, write the
//! responses in that same order.
//!
//! Clients pipeline (librdkafka keeps several requests in flight). Each request is
//! handled as it arrives, so produce requests of one connection are appended in the
//! order they were sent; a request that has to wait (a long-polling fetch, a
//! rebalance, an fsync for acks=-1) finishes in its own task while later requests
//! are read and handled, and the writer sends every response in request order.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::limits::{Reservation, ServerLimits};
use super::listener::ListenerAuth;
use super::sasl::{Gate, Login};
use super::transport::{ReadSide, Transport, WriteSide};
use crate::broker::Broker;
use crate::cluster::metadata_cache::ListenerInfo;
use crate::handlers::{self, Reply, RequestContext};
use crate::protocol::frame::parse_frame;
use crate::protocol::header::parse_request;

/// Responses waiting to be written before reading stops (backpressure).
const MAX_QUEUED_RESPONSES: usize = 16;
/// What one read asks for when the buffer is full, and the most read before the
/// size and API of the next frame are known.
const READ_CHUNK: usize = 16 * 1024;
/// How long a client has to send the rest of a request whose memory is reserved:
/// 30 s (librdkafka's and Java's request timeout) plus a second per MiB. A client
/// that sends a large request's head and stalls holds its reservation no longer.
fn time_to_send(size: usize) -> Duration {
    Duration::from_secs(30 + (size >> 20) as u64)
}
/// An empty buffer larger than this is freed rather than kept for the next request.
const IDLE_BUFFER: usize = 64 * 1024;

/// Resolves when the client has closed the connection (without reading what it
/// sent); pending forever otherwise.
async fn client_gone(reader: &mut ReadSide) {
    // The peer's half-close is seen even behind unread data; while data is
    // waiting the client is there: look again in a while.
    while !reader.ready_closed().await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The API key and size of the frame at the front of `buf`, once known (−1 for
/// the key of a frame too short to have one). None for a negative size, which
/// `parse_frame` refuses.
fn frame_head(buf: &[u8]) -> Option<(i16, usize)> {
    let size: &[u8; 4] = buf.first_chunk()?;
    let size = usize::try_from(i32::from_be_bytes(*size)).ok()?;
    if size < 2 {
        return Some((-1, size));
    }
    let key = buf.get(4..6)?;
    Some((i16::from_be_bytes([key[0], key[1]]), size))
}

pub struct Connection {
    broker: Arc<Broker>,
    listener: Arc<ListenerInfo>,
    auth: Arc<ListenerAuth>,
    /// Set when the client goes over a quota: nothing is read until then.
    throttle: Arc<crate::handlers::Throttle>,
    /// Logging in (SASL), or who the connection is once logged in.
    login: Login,
    peer: SocketAddr,
    /// The client software it named in ApiVersions (name, version).
    software: Option<(String, String)>,
    shutdown: watch::Receiver<bool>,
    /// Dropped when the connection ends: the listener waits for all of these.
    _done: mpsc::Sender<()>,
}

impl Connection {
    /// A connection of `principal` (who TLS says it is, or ANONYMOUS); on a SASL
    /// listener it has to log in first.
    pub fn new(
        broker: Arc<Broker>,
        (listener, auth): (Arc<ListenerInfo>, Arc<ListenerAuth>),
        peer: SocketAddr,
        principal: crate::security::Principal,
        (shutdown, done): (watch::Receiver<bool>, mpsc::Sender<()>),
    ) -> Connection {
        Connection {
            broker,
            listener,
            login: Login::start(auth.sasl.as_ref(), principal),
            throttle: Arc::default(),
            auth,
            peer,
            software: None,
            shutdown,
            _done: done,
        }
    }

    pub async fn run(mut self, transport: Transport, limits: &Arc<ServerLimits>) {
        tracing::debug!(peer = %self.peer, "connection opened");
        // strom's own in-process connections (the console) are not clients.
        let _counted = (!matches!(transport, Transport::Memory(_)))
            .then(|| Counted::new(self.broker.clone(), self.listener.clone()));
        let (mut reader, writer) = transport.split();
        let (tx, rx) = mpsc::channel(MAX_QUEUED_RESPONSES);
        let in_flight = Arc::new(AtomicUsize::new(0));
        // When the peer closed its side: replies still being produced a grace
        // period later (long polls, rebalances) are dropped instead of holding
        // the connection until they end, as Kafka drops responses for a closed
        // channel; quick ones (an acks=all fsync) are still written to a client
        // that only half-closed.
        let (peer_gone, peer_gone_rx) = watch::channel(None::<Instant>);
        // When the writer last wrote, in ms since `epoch`: writing is activity too.
        let epoch = Instant::now();
        let last_write = Arc::new(AtomicU64::new(0));
        let writer_side = Writer {
            in_flight: in_flight.clone(),
            peer_gone: peer_gone_rx,
            epoch,
            last_write: last_write.clone(),
        };
        let writing = tokio::spawn(write_responses(writer, rx, writer_side));
        let idle = Duration::from_millis(self.broker.config.connections_max_idle_ms);
        let mut idle_deadline = Instant::now() + idle;
        // One timer for the whole connection, moved lazily: reads only push
        // `idle_deadline`, and the timer is re-armed when it fires early, instead
        // of a timer made and dropped on every read.
        let idle_timer = tokio::time::sleep_until(idle_deadline);
        tokio::pin!(idle_timer);
        // An idle connection holds no buffer: one is taken when bytes arrive and
        // given back once a large request is done with.
        let mut buf = BytesMut::new();
        // Request memory held for the frame at the front of `buf` (see limits.rs),
        // and when that frame must have arrived by.
        let mut held: Option<Reservation> = None;
        let mut frame_deadline: Option<Instant> = None;
        'serve: loop {
            while let Some((api_key, size)) = frame_head(&buf).filter(|&(_, size)| size <= self.max_frame()) {
                // Over a quota (KIP-219): nothing more is read or reserved for
                // this client until its throttle time has passed.
                let muted = self.throttle.until_ms() - crate::util::clock::now_ms();
                if muted > 0 && frame_deadline.is_none() {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(muted as u64)) => {}
                        _ = self.shutdown.changed() => break 'serve,
                    }
                }
                if frame_deadline.is_none() {
                    // Before a SASL login, frames are small (max_frame) and only the
                    // login's are read: they hold no share of the memory all
                    // connections draw on, which unauthenticated clients could
                    // otherwise drain (Kafka's authenticator reads outside its pool).
                    let costed = match self.login.principal() {
                        Some(_) => limits.cost(api_key, size),
                        None => Ok(0),
                    };
                    let cost = match costed {
                        Ok(cost) => cost,
                        Err(e) => {
                            tracing::warn!(peer = %self.peer, error = %e, "closing connection");
                            break 'serve;
                        }
                    };
                    // A frame already whole in the buffer is served even if the
                    // client has half-closed since (it sent the request, and an
                    // acks=0 produce expects nothing back): only a client that can
                    // no longer finish its frame is let go while it waits.
                    let whole = buf.len() >= 4 + size;
                    held = tokio::select! {
                        biased;
                        held = limits.reserve(cost) => held,
                        _ = self.shutdown.changed() => break 'serve,
                        _ = client_gone(&mut reader), if !whole => break 'serve,
                    };
                    frame_deadline = Some(Instant::now() + time_to_send(size));
                }
                if buf.len() < 4 + size {
                    break;
                }
                let Ok(Some(frame)) = parse_frame(&mut buf, self.max_frame()) else {
                    break 'serve;
                };
                in_flight.fetch_add(1, Ordering::AcqRel);
                let processed = self.process(frame).await;
                (held, frame_deadline) = (None, None);
                let close = matches!(processed, Ok((_, true)));
                match processed.map(|(reply, _)| reply) {
                    Ok(Reply::Nothing) => {
                        in_flight.fetch_sub(1, Ordering::AcqRel);
                    }
                    Ok(reply) => {
                        // A full queue waits for the writer; a peer that closes
                        // meanwhile is noted, so the writer stops waiting for its
                        // long polls and the queue drains.
                        let permit = tokio::select! {
                            biased;
                            permit = tx.reserve() => permit,
                            _ = client_gone(&mut reader), if peer_gone.borrow().is_none() => {
                                let _ = peer_gone.send(Some(Instant::now()));
                                tx.reserve().await
                            }
                        };
                        let Ok(permit) = permit else {
                            break 'serve;
                        };
                        permit.send(reply);
                    }
                    Err(()) => break 'serve,
                }
                if close {
                    break 'serve;
                }
            }
            // A size that is negative or above socket.request.max.bytes.
            if let Err(e) = parse_frame(&mut buf, self.max_frame()) {
                tracing::warn!(peer = %self.peer, error = %e, "closing connection");
                break 'serve;
            }
            if buf.is_empty() && buf.capacity() > IDLE_BUFFER {
                buf = BytesMut::new();
            }
            if *self.shutdown.borrow() {
                break;
            }
            if buf.capacity() == buf.len() {
                buf.reserve(READ_CHUNK);
            }
            // Until a frame's reservation is held, read no more than a chunk.
            let limit = if held.is_some() { usize::MAX } else { READ_CHUNK };
            let mut room = (&mut buf).limit(limit);
            tokio::select! {
                read = reader.read(&mut room) => match read {
                    Ok(0) | Err(_) => {
                        let _ = peer_gone.send(Some(Instant::now()));
                        break;
                    }
                    Ok(_) => idle_deadline = Instant::now() + idle,
                },
                _ = &mut idle_timer => {
                    let wrote = epoch + Duration::from_millis(last_write.load(Ordering::Relaxed)) + idle;
                    idle_deadline = idle_deadline.max(wrote);
                    if Instant::now() < idle_deadline {
                        idle_timer.as_mut().reset(idle_deadline);
                        continue;
                    }
                    if in_flight.load(Ordering::Acquire) == 0 {
                        tracing::info!(peer = %self.peer, idle_ms = idle.as_millis() as u64, "closing idle connection (connections.max.idle.ms)");
                        break;
                    }
                    idle_deadline = Instant::now() + idle;
                    idle_timer.as_mut().reset(idle_deadline);
                }
                _ = tokio::time::sleep_until(frame_deadline.unwrap_or(idle_deadline)), if frame_deadline.is_some() => {
                    tracing::warn!(peer = %self.peer, "closing connection: a request was not sent in time");
                    break;
                }
                _ = self.shutdown.changed() => break,
            }
        }
        drop(tx);
        let _ = writing.await;
        if let Some((name, version)) = self.software.take() {
            self.broker.metrics.client_software(&name, &version, -1);
        }
        tracing::debug!(peer = %self.peer, "connection closed");
    }

    /// ApiVersions v3+ names the client software: counted per connection for
    /// the console (once; a second ApiVersions changes nothing).
    fn note_software(&mut self, request: &crate::protocol::header::Request) {
        use kafka_protocol::protocol::Decodable;
        if self.software.is_some() || request.api_version < 3 {
            return;
        }
        let mut body = request.body.clone();
        let Ok(r) = kafka_protocol::messages::ApiVersionsRequest::decode(&mut body, request.api_version) else {
            return;
        };
        let (name, version) = (
            r.client_software_name.to_string(),
            r.client_software_version.to_string(),
        );
        // Kafka's rule for both (KIP-511): letters, digits, '-' and '.'.
        let valid = |s: &str| {
            !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        if !valid(&name) || !valid(&version) {
            return;
        }
        self.broker.metrics.client_software(&name, &version, 1);
        self.software = Some((name, version));
    }

    /// The largest frame accepted now: socket.request.max.bytes, and until a
    /// SASL login is done sasl.server.max.receive.size (Kafka fails such a
    /// login with "invalid receive size").
    fn max_frame(&self) -> usize {
        let config = &self.broker.config;
        match self.login.principal() {
            Some(_) => config.socket_request_max_bytes,
            None => config.sasl_server_max_receive_size.min(config.socket_request_max_bytes),
        }
    }

    /// Handle one request frame: its reply, and whether to close the connection
    /// once it is sent; `Err` to close at once (a request too malformed to go
    /// on with, or one not allowed before logging in).
    async fn process(&mut self, frame: Bytes) -> Result<(Reply, bool), ()> {
        // After a SaslHandshake v0, the login's tokens come as bare frames.
        let gate = if self.login.expects_raw_token() {
            self.login
                .raw_token(&frame, self.auth.sasl.as_ref(), &self.broker.credentials)
        } else {
            match parse_request(frame) {
                Ok(request) => self
                    .login
                    .gate(request, self.auth.sasl.as_ref(), &self.broker.credentials),
                Err(e) => {
                    tracing::warn!(peer = %self.peer, error = %e, "closing connection");
                    return Err(());
                }
            }
        };
        let request = match gate {
            Gate::Dispatch(request) => request,
            Gate::Answer(frame) => return Ok((Reply::Now(frame), false)),
            Gate::Refuse(frame) => {
                tracing::info!(peer = %self.peer, listener = %self.listener.name, "failed authentication");
                let delay = self.broker.config.failed_authentication_delay_ms;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                return Ok((Reply::Now(frame), true));
            }
            Gate::Close(reason) => {
                tracing::info!(peer = %self.peer, listener = %self.listener.name, reason = %reason, "closing connection");
                return Err(());
            }
        };
        if request.api_key == kafka_protocol::messages::ApiKey::ApiVersions as i16 {
            self.note_software(&request);
        }
        // Before logging in, only ApiVersions gets here: it is answered to anyone.
        let principal = match self.login.principal() {
            Some(p) => p.clone(),
            None => Arc::new(crate::security::Principal::anonymous()),
        };
        let ctx = RequestContext {
            peer: self.peer,
            api_version: request.api_version,
            wire_version: request.api_version,
            correlation_id: request.correlation_id,
            client_id: request.client_id.clone(),
            listener: self.listener.clone(),
            principal,
            throttle: self.throttle.clone(),
        };
        let started = std::time::Instant::now();
        let reply = handlers::dispatch(&self.broker, &ctx, request).await.map_err(|e| {
            tracing::warn!(peer = %self.peer, error = %e, "closing connection after a malformed request");
        })?;
        // request_percentage: the time the broker spent on it here.
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        handlers::charge(&self.broker, &ctx, crate::quota::Kind::Request, ms);
        Ok((reply, false))
    }
}

/// An open connection in the metrics, for as long as it lives.
struct Counted(Arc<Broker>, Arc<ListenerInfo>);

impl Counted {
    fn new(broker: Arc<Broker>, listener: Arc<ListenerInfo>) -> Counted {
        broker.metrics.connection(&listener.name, 1);
        Counted(broker, listener)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.metrics.connection(&self.1.name, -1);
    }
}

/// Counts a request as answered when dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long replies still being produced may finish after the peer closed its
/// side: enough for an fsync, far less than a long poll.
const PEER_GONE_GRACE: Duration = Duration::from_secs(1);

/// Returns `grace` after the peer closed its side (at once if that is long past).
async fn gone_for(peer_gone: &mut watch::Receiver<Option<Instant>>, grace: Duration) {
    let since = match peer_gone.wait_for(Option::is_some).await {
        Ok(since) => *since,
        // The reading side is done and said nothing: the peer is not gone.
        Err(_) => None,
    };
    let Some(since) = since else {
        return std::future::pending().await;
    };
    tokio::time::sleep_until(since + grace).await;
}

/// What the writer shares with the reading side of its connection.
struct Writer {
    in_flight: Arc<AtomicUsize>,
    /// Flips to true when the peer has closed its side.
    /// When the peer closed its side, once it has.
    peer_gone: watch::Receiver<Option<Instant>>,
    epoch: Instant,
    /// When a response was last written, in ms since `epoch`.
    last_write: Arc<AtomicU64>,
}

/// Write responses in request order, waiting for deferred ones in their turn,
/// then close the write side.
async fn write_responses(mut writer: WriteSide, mut rx: mpsc::Receiver<Reply>, mut side: Writer) {
    while let Some(reply) = rx.recv().await {
        let _done = InFlight(&side.in_flight);
        let response = match reply {
            Reply::Nothing => continue,
            Reply::Now(bytes) => bytes,
            Reply::Later(mut task) => {
                let done = tokio::select! {
                    done = &mut task => done,
                    _ = gone_for(&mut side.peer_gone, PEER_GONE_GRACE) => {
                        task.abort();
                        continue;
                    }
                };
                match done {
                    Ok(Ok(Some(bytes))) => bytes,
                    Ok(Ok(None)) => continue,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "closing connection");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "request handler failed");
                        break;
                    }
                }
            }
        };
        if let Err(e) = writer.write_frame(&response).await {
            tracing::debug!(error = %e, "write failed, closing connection");
            break;
        }
        let since = side.epoch.elapsed().as_millis() as u64;
        side.last_write.store(since, Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
}

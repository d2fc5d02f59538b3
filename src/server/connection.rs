//! One client connection: read frames, handle requests in arrival order, write the
//! responses in that same order.
//!
//! Clients pipeline (librdkafka keeps several requests in flight). Each request is
//! handled as it arrives, so produce requests of one connection are appended in the
//! order they were sent; a request that has to wait (a long-polling fetch, a
//! rebalance, an fsync for acks=-1) finishes in its own task while later requests
//! are read and handled, and the writer sends every response in request order.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::broker::{Broker, ListenerInfo};
use crate::handlers::{self, Reply, RequestContext};
use crate::protocol::frame::parse_frame;
use crate::protocol::header::parse_request;

/// Responses waiting to be written before reading stops (backpressure).
const MAX_QUEUED_RESPONSES: usize = 16;

pub struct Connection {
    broker: Arc<Broker>,
    listener: Arc<ListenerInfo>,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    /// Dropped when the connection ends: the listener waits for all of these.
    _done: mpsc::Sender<()>,
}

impl Connection {
    pub fn new(
        broker: Arc<Broker>,
        listener: Arc<ListenerInfo>,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
        done: mpsc::Sender<()>,
    ) -> Connection {
        Connection {
            broker,
            listener,
            peer,
            shutdown,
            _done: done,
        }
    }

    pub async fn run(mut self, stream: TcpStream) {
        tracing::debug!(peer = %self.peer, "connection opened");
        let (mut reader, writer) = stream.into_split();
        let (tx, rx) = mpsc::channel(MAX_QUEUED_RESPONSES);
        let writing = tokio::spawn(write_responses(writer, rx));
        let max = self.broker.config.socket_request_max_bytes;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        'serve: loop {
            loop {
                match parse_frame(&mut buf, max) {
                    Ok(Some(frame)) => match self.process(frame).await {
                        Ok(Reply::Nothing) => {}
                        Ok(reply) => {
                            if tx.send(reply).await.is_err() {
                                break 'serve;
                            }
                        }
                        Err(()) => break 'serve,
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, error = %e, "closing connection");
                        break 'serve;
                    }
                }
            }
            if *self.shutdown.borrow() {
                break;
            }
            tokio::select! {
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
                _ = self.shutdown.changed() => break,
            }
        }
        drop(tx);
        let _ = writing.await;
        tracing::debug!(peer = %self.peer, "connection closed");
    }

    /// Handle one request frame; `Err` when the request is too malformed to go on
    /// with this connection.
    async fn process(&mut self, frame: Bytes) -> Result<Reply, ()> {
        let request = match parse_request(frame) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "closing connection");
                return Err(());
            }
        };
        let ctx = RequestContext {
            peer: self.peer,
            api_version: request.api_version,
            correlation_id: request.correlation_id,
            client_id: request.client_id.clone(),
            listener: self.listener.clone(),
        };
        handlers::dispatch(&self.broker, &ctx, request).await.map_err(|e| {
            tracing::warn!(peer = %self.peer, error = %e, "closing connection after a malformed request");
        })
    }
}

/// Write responses in request order, waiting for deferred ones in their turn,
/// then close the write side.
async fn write_responses(mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Reply>) {
    while let Some(reply) = rx.recv().await {
        let response = match reply {
            Reply::Nothing => continue,
            Reply::Now(bytes) => bytes,
            Reply::Later(task) => match task.await {
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
            },
        };
        if let Err(e) = response.write_to(&mut writer).await {
            tracing::debug!(error = %e, "write failed, closing connection");
            break;
        }
    }
    let _ = writer.shutdown().await;
}

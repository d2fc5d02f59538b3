//! What a connection reads from and writes to: the TCP socket itself
//! (PLAINTEXT, SASL_PLAINTEXT) or TLS over it (SSL, SASL_SSL).
//!
//! Plain sockets send fetched records from the page cache by `sendfile`; TLS has
//! to encrypt them, so its writer reads file ranges in pieces and writes them
//! through rustls. Both sides notice a client that closed its end while the
//! connection waits (see `connection::client_gone`): TLS through a second
//! descriptor of the same socket that is only ever asked for readiness.

use std::io;

use bytes::BufMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::protocol::response::ResponseFrame;

/// A connection's byte stream, before it is split.
pub enum Transport {
    Plain(TcpStream),
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        watch: TcpStream,
    },
    /// In-process: the console's requests, served as any client's.
    Memory(tokio::io::DuplexStream),
}

impl Transport {
    /// A TLS stream, with a second descriptor of its socket kept to watch for
    /// the peer's close.
    pub fn tls(stream: TlsStream<TcpStream>) -> io::Result<Transport> {
        let watch = dup(stream.get_ref().0)?;
        Ok(Transport::Tls {
            stream: Box::new(stream),
            watch,
        })
    }

    pub fn split(self) -> (ReadSide, WriteSide) {
        match self {
            Transport::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadSide::Plain(r), WriteSide::Plain(w))
            }
            Transport::Tls { stream, watch } => {
                let (r, w) = tokio::io::split(*stream);
                (ReadSide::Tls(r, watch), WriteSide::Tls(w))
            }
            Transport::Memory(stream) => {
                let (r, w) = tokio::io::split(stream);
                (ReadSide::Memory(r), WriteSide::Memory(w))
            }
        }
    }
}

/// A second tokio handle on a socket (a `dup`ed descriptor).
fn dup(stream: &TcpStream) -> io::Result<TcpStream> {
    use std::os::fd::AsFd;
    let std = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned()?);
    std.set_nonblocking(true)?;
    TcpStream::from_std(std)
}

pub enum ReadSide {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>, TcpStream),
    Memory(ReadHalf<tokio::io::DuplexStream>),
}

impl ReadSide {
    /// Read what is there into `buf` (0 at the end of the stream). Cancel safe:
    /// nothing is lost when another branch of a `select!` wins.
    pub async fn read<B: BufMut>(&mut self, buf: &mut B) -> io::Result<usize> {
        match self {
            ReadSide::Plain(r) => r.read_buf(buf).await,
            ReadSide::Tls(r, _) => r.read_buf(buf).await,
            ReadSide::Memory(r) => r.read_buf(buf).await,
        }
    }

    /// Resolves when the peer has closed its side (its FIN seen even behind
    /// unread data), or the socket failed; pending otherwise.
    pub async fn ready_closed(&self) -> bool {
        let ready = match self {
            ReadSide::Plain(r) => r.ready(tokio::io::Interest::READABLE).await,
            ReadSide::Tls(_, watch) => watch.ready(tokio::io::Interest::READABLE).await,
            // An in-process peer's close is seen by the next read.
            ReadSide::Memory(_) => return std::future::pending().await,
        };
        match ready {
            Ok(ready) => ready.is_read_closed(),
            Err(_) => true,
        }
    }
}

pub enum WriteSide {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
    Memory(WriteHalf<tokio::io::DuplexStream>),
}

impl WriteSide {
    pub async fn write_frame(&mut self, frame: &ResponseFrame) -> io::Result<()> {
        match self {
            WriteSide::Plain(w) => frame.write_to(w).await,
            WriteSide::Tls(w) => {
                frame.write_buffered(w).await?;
                w.flush().await
            }
            WriteSide::Memory(w) => {
                frame.write_buffered(w).await?;
                w.flush().await
            }
        }
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            WriteSide::Plain(w) => w.shutdown().await,
            WriteSide::Tls(w) => w.shutdown().await,
            WriteSide::Memory(w) => w.shutdown().await,
        }
    }
}

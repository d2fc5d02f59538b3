//! Accept loops, the connection limit, and graceful shutdown the mini-redis way:
//! a watch channel signals shutdown, every connection holds a clone of an mpsc
//! sender, and the senders all being dropped confirms that every connection ended.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use super::connection::Connection;
use super::limits::ServerLimits;
use super::sasl::SaslListener;
use super::transport::Transport;
use crate::broker::Broker;
use crate::cluster::metadata_cache::ListenerInfo;
use crate::config::ListenerSecurity;
use crate::security::tls::TlsListener;
use crate::security::Principal;

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has for its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a listener's connections are secured: TLS (SSL, SASL_SSL), a SASL login
/// (SASL_*), both or neither.
pub struct ListenerAuth {
    pub tls: Option<TlsListener>,
    pub sasl: Option<SaslListener>,
}

impl ListenerAuth {
    pub fn new(security: &ListenerSecurity) -> Result<ListenerAuth, String> {
        Ok(ListenerAuth {
            tls: security.tls.as_ref().map(TlsListener::new).transpose()?,
            sasl: security.sasl.as_ref().map(SaslListener::new),
        })
    }

    /// The connection's stream and who it is before any SASL login: TLS is
    /// negotiated here (its client certificate names the principal).
    async fn secure(&self, stream: tokio::net::TcpStream) -> Result<(Transport, Principal), String> {
        let Some(tls) = &self.tls else {
            return Ok((Transport::Plain(stream), Principal::anonymous()));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
        let stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let principal = match self.sasl {
            // SASL_SSL: the principal comes from the SASL login (KIP-684).
            Some(_) => Principal::anonymous(),
            None => tls.principal(stream.get_ref().1.peer_certificates())?,
        };
        let transport = Transport::tls(stream).map_err(|e| e.to_string())?;
        Ok((transport, principal))
    }
}

pub async fn serve(
    broker: Arc<Broker>,
    listeners: Vec<(TcpListener, Arc<ListenerInfo>, Arc<ListenerAuth>)>,
    shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let limits = ServerLimits::new(&broker.config);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accept_loops = Vec::new();
    for (socket, info, auth) in listeners {
        accept_loops.push(tokio::spawn(accept_loop(
            broker.clone(),
            socket,
            (info, auth),
            (limit.clone(), limits.clone()),
            shutdown.clone(),
            done_tx.clone(),
        )));
    }
    drop(done_tx);
    for l in accept_loops {
        let _ = l.await;
    }
    // Every connection holds a sender; recv() returns None once all are gone.
    if tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv()).await.is_err() {
        tracing::warn!("connections still busy after the drain timeout; closing anyway");
    }
}

async fn accept_loop(
    broker: Arc<Broker>,
    socket: TcpListener,
    (info, auth): (Arc<ListenerInfo>, Arc<ListenerAuth>),
    (limit, limits): (Arc<Semaphore>, Arc<ServerLimits>),
    mut shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        // Kafka closes a connection over max.connections.per.ip at once.
        let Some(slot) = limits.admit(peer.ip()) else {
            tracing::warn!(peer = %peer, "too many connections from this address; closing");
            continue;
        };
        // connection_creation_rate of the client's address (KIP-612).
        if !broker.quotas.admit_connection(peer.ip(), crate::util::clock::now_ms()) {
            tracing::info!(peer = %peer, "over the address's connection_creation_rate quota; closing");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (broker, info, auth, limits) = (broker.clone(), info.clone(), auth.clone(), limits.clone());
        let (mut shutdown, done) = (shutdown.clone(), done.clone());
        tokio::spawn(async move {
            let secured = tokio::select! {
                secured = auth.secure(stream) => secured,
                _ = shutdown.changed() => return,
            };
            match secured {
                Ok((transport, principal)) => {
                    let conn = Connection::new(broker, (info, auth), peer, principal, (shutdown, done));
                    conn.run(transport, &limits).await;
                }
                Err(e) => tracing::info!(peer = %peer, listener = %info.name, error = %e, "closing connection"),
            }
            drop((permit, slot));
        });
    }
}

//! Accept loops, the connection limit, and graceful shutdown the mini-redis way:
//! a watch channel signals shutdown, every connection holds a clone of an mpsc
//! sender, and the senders all being dropped confirms that every connection ended.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use super::connection::Connection;
use super::limits::ServerLimits;
use crate::broker::Broker;
use crate::cluster::metadata_cache::ListenerInfo;

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(
    broker: Arc<Broker>,
    listeners: Vec<(TcpListener, Arc<ListenerInfo>)>,
    shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let limits = ServerLimits::new(&broker.config);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accept_loops = Vec::new();
    for (socket, info) in listeners {
        accept_loops.push(tokio::spawn(accept_loop(
            broker.clone(),
            socket,
            info,
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
    info: Arc<ListenerInfo>,
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
        let _ = stream.set_nodelay(true);
        let conn = Connection::new(broker.clone(), info.clone(), peer, shutdown.clone(), done.clone());
        let limits = limits.clone();
        tokio::spawn(async move {
            conn.run(stream, &limits).await;
            drop((permit, slot));
        });
    }
}

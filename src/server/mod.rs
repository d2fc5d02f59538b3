//! Sockets: binding the listeners, accepting connections and running each one;
//! starting and stopping a whole broker.

#[cfg(feature = "cluster")]
mod cluster;
pub mod connection;
#[cfg(feature = "cluster")]
mod controlled_shutdown;
pub mod http;
#[cfg(feature = "cluster")]
mod isr;
pub mod limits;
pub mod listener;
pub mod sasl;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::cluster::metadata_cache::ListenerInfo;
use crate::config::{Config, Listener};
use crate::error::Result;

/// A broker serving in the background.
pub struct RunningBroker {
    pub broker: Arc<Broker>,
    pub listeners: Vec<ListenerInfo>,
    /// Where the HTTP endpoint (metrics, health, console) listens, if it does.
    pub http_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<()>>,
}

impl RunningBroker {
    /// The address of the first listener.
    pub fn addr(&self) -> SocketAddr {
        self.listeners[0].bound
    }

    /// Stop accepting, answer what is in flight, flush and close the log.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Wait until the broker stops (it stops only through `shutdown`).
    pub async fn wait(self) -> Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }

    /// A handle that triggers shutdown from elsewhere (e.g. a signal handler).
    pub fn shutdown_trigger(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// A Kafka client of `broker` inside the process: a connection served exactly
/// as a socket's (handlers, metrics, the trace), for strom's own tools (the web
/// console). It is `principal`, and `peer` is who it acts for.
pub fn connect_in_process(
    broker: &Arc<Broker>,
    limits: &Arc<limits::ServerLimits>,
    peer: SocketAddr,
    principal: crate::security::Principal,
    client_id: &'static str,
) -> crate::client::Client {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let info = broker.metadata.listeners().into_iter().next().unwrap_or(ListenerInfo {
        name: "INTERNAL".into(),
        bound: peer,
        advertised_host: "localhost".into(),
        advertised_port: 0,
    });
    let auth = Arc::new(listener::ListenerAuth { tls: None, sasl: None });
    // Nobody waits for these connections at shutdown: they end with their client.
    let (done, _) = tokio::sync::mpsc::channel(1);
    let connection = connection::Connection::new(
        broker.clone(),
        (Arc::new(info), auth),
        peer,
        principal,
        (broker.shutting_down.clone(), done),
    );
    let limits = limits.clone();
    tokio::spawn(async move { connection.run(transport::Transport::Memory(theirs), &limits).await });
    crate::client::Client::over(ours, client_id)
}

fn advertised_for(config: &Config, listener: &Listener, bound: SocketAddr) -> (String, i32) {
    match config.advertised_listeners.iter().find(|a| a.name == listener.name) {
        Some(a) if a.port != 0 => (a.host.clone(), a.port as i32),
        Some(a) => (a.host.clone(), bound.port() as i32),
        None => {
            let host = if bound.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                bound.ip().to_string()
            };
            (host, bound.port() as i32)
        }
    }
}

/// Open the data directory, bind every listener and start serving.
pub async fn start(config: Config) -> Result<RunningBroker> {
    let started = std::time::Instant::now();
    // A stop asked for (`stop_tx`) becomes the stop every part acts on
    // (`shutdown_rx`) once a cluster's broker has handed its leadership over.
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Bound first, so /health answers "loading" while the log recovers.
    let http = crate::server::http::HttpServer::bind(&config.observe, shutdown_rx.clone()).await?;
    // In a cluster, the data directory's identity is settled with etcd first.
    #[cfg(feature = "cluster")]
    let store = cluster::connect(&config).await?;
    let broker = Arc::new(Broker::open(config, shutdown_rx.clone())?);
    let config = &broker.config;
    let mut bound = Vec::new();
    let mut listeners = Vec::new();
    for l in &config.listeners {
        let security = config
            .listener_security
            .get(&l.name)
            .cloned()
            .unwrap_or_else(crate::config::ListenerSecurity::plaintext);
        let auth = listener::ListenerAuth::new(&security)
            .map_err(|e| std::io::Error::other(format!("listener {}: {e}", l.name)))?;
        let socket = TcpListener::bind(l.address()).await?;
        let addr = socket.local_addr()?;
        let (advertised_host, advertised_port) = advertised_for(config, l, addr);
        let info = ListenerInfo {
            name: l.name.clone(),
            bound: addr,
            advertised_host,
            advertised_port,
        };
        tracing::info!(
            listener = %info.name,
            security_protocol = security.protocol.name(),
            listen = %addr,
            advertised = %format!("{}:{}", info.advertised_host, info.advertised_port),
            data_dir = %config.data_dir.display(),
            cluster_id = %broker.metadata.cluster_id(),
            node_id = broker.node_id(),
            startup_ms = started.elapsed().as_millis() as u64,
            "strom is serving"
        );
        bound.push((socket, Arc::new(info.clone()), Arc::new(auth)));
        listeners.push(info);
    }
    broker.metadata.register_listeners(listeners.clone());
    // Registered once its listeners are known (other brokers and clients are
    // told those addresses).
    #[cfg(feature = "cluster")]
    let (membership, leaving) = match store {
        Some(store) => {
            let (task, leaving) = cluster::join(broker.clone(), store, &listeners, shutdown_rx.clone()).await?;
            (Some(task), Some(leaving))
        }
        None => (None, None),
    };
    #[cfg(not(feature = "cluster"))]
    let membership: Option<JoinHandle<()>> = None;
    tokio::spawn(async move {
        // Asked for, or nobody left to ask (the handle was dropped).
        let _ = stop_rx.wait_for(|stop| *stop).await;
        #[cfg(feature = "cluster")]
        if let Some(leaving) = leaving {
            leaving.move_leadership().await;
        }
        let _ = shutdown_tx.send(true);
    });
    if let Some(http) = &http {
        http.ready(broker.clone());
    }
    let background = broker.spawn_background(&shutdown_rx);
    let serving = broker.clone();
    let task = tokio::spawn(async move {
        listener::serve(serving.clone(), bound, shutdown_rx).await;
        // Leave the cluster (the lease is given up) before the log closes.
        if let Some(membership) = membership {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), membership).await;
        }
        // Nothing may append once the logs close: the followers' fetchers and
        // the background work (a group tick writes records) end first.
        serving.replicas.stop_fetchers().await;
        for task in background {
            task.abort();
            let _ = task.await;
        }
        let closing = serving.clone();
        tokio::task::spawn_blocking(move || closing.logs.close())
            .await
            .map_err(std::io::Error::other)??;
        tracing::info!("strom stopped cleanly");
        Ok(())
    });
    Ok(RunningBroker {
        broker,
        listeners,
        http_addr: http.map(|h| h.addr),
        shutdown: stop_tx,
        task,
    })
}

//! The broker: its shared state, and starting and stopping it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::metadata::ClusterIdentity;
use crate::cluster::producer_ids::ProducerIdManager;
use crate::config::{Config, Listener};
use crate::error::Result;
use crate::group::coordinator::GroupCoordinator;
use crate::log::manager::LogManager;
use crate::server;
use crate::util::now_ms;

/// Everything a request handler may reach.
pub struct Broker {
    pub config: Config,
    pub identity: ClusterIdentity,
    pub logs: LogManager,
    pub producer_ids: ProducerIdManager,
    pub groups: GroupCoordinator,
    /// Flips to `true` when shutdown begins; long waits select on it.
    pub shutting_down: watch::Receiver<bool>,
}

impl Broker {
    pub fn node_id(&self) -> i32 {
        self.identity.node_id
    }
}

/// A bound listener and the address clients connecting through it are told to use.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub bound: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: i32,
}

/// A broker serving in the background.
pub struct RunningBroker {
    pub broker: Arc<Broker>,
    pub listeners: Vec<ListenerInfo>,
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
    let identity = ClusterIdentity::load_or_create(&config.data_dir, config.node_id)?;
    let logs = LogManager::open(&config.data_dir, config.log.clone(), now_ms())?;
    let producer_ids = ProducerIdManager::open(&config.data_dir)?;
    let groups = GroupCoordinator::open(&logs, config.group.clone(), now_ms())?;
    let mut bound = Vec::new();
    let mut listeners = Vec::new();
    for l in &config.listeners {
        let socket = TcpListener::bind(l.address()).await?;
        let addr = socket.local_addr()?;
        let (advertised_host, advertised_port) = advertised_for(&config, l, addr);
        let info = ListenerInfo {
            name: l.name.clone(),
            bound: addr,
            advertised_host,
            advertised_port,
        };
        tracing::info!(
            listener = %info.name,
            listen = %addr,
            advertised = %format!("{}:{}", info.advertised_host, info.advertised_port),
            data_dir = %config.data_dir.display(),
            cluster_id = %identity.cluster_id,
            node_id = identity.node_id,
            startup_ms = started.elapsed().as_millis() as u64,
            "strom is serving"
        );
        bound.push((socket, Arc::new(info.clone())));
        listeners.push(info);
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let broker = Arc::new(Broker {
        config,
        identity,
        logs,
        producer_ids,
        groups,
        shutting_down: shutdown_rx.clone(),
    });
    let flusher = tokio::spawn(flush_periodically(broker.clone(), shutdown_rx.clone()));
    let group_timer = tokio::spawn(expire_group_members(broker.clone(), shutdown_rx.clone()));
    let retention = tokio::spawn(enforce_retention(broker.clone(), shutdown_rx.clone()));
    let cleaner = tokio::spawn(clean_logs(broker.clone(), shutdown_rx.clone()));
    let serving = broker.clone();
    let task = tokio::spawn(async move {
        server::listener::serve(serving.clone(), bound, shutdown_rx).await;
        flusher.abort();
        group_timer.abort();
        retention.abort();
        cleaner.abort();
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
        shutdown: shutdown_tx,
        task,
    })
}

/// Enforce `flush.ms` (`log.flush.interval.ms`), checked every 100 ms.
async fn flush_periodically(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let tick = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        let now = now_ms();
        for p in broker.logs.flush_overdue(now) {
            let leo = p.log_end_offset();
            if let Err(e) = p.flush_to(leo, now).await {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "scheduled flush failed");
            }
        }
    }
}

/// Drive the group coordinator's clock: session timeouts, rebalance timeouts and
/// the initial rebalance delay are checked every 100 ms.
async fn expire_group_members(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return,
        }
        broker.groups.tick(now_ms());
    }
}

/// Run `work` on every partition every `interval_ms`, off the async threads.
async fn every_partition(
    broker: Arc<Broker>,
    interval_ms: u64,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    work: fn(&crate::log::partition_log::Partition, i64) -> crate::error::Result<()>,
) {
    let tick = Duration::from_millis(interval_ms.max(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for topic in b.logs.topics() {
                for p in &topic.partitions {
                    if let Err(e) = work(p, now) {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, task = what, "background log task failed");
                    }
                }
            }
        })
        .await;
    }
}

/// Delete segments past retention every `log.retention.check.interval.ms`.
async fn enforce_retention(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let interval = broker.config.retention_check_interval_ms;
    every_partition(broker, interval, "retention", shutdown, |p, now| {
        p.apply_retention(now).map(|_| ())
    })
    .await
}

/// Compact `cleanup.policy=compact` partitions every `log.cleaner.backoff.ms`.
async fn clean_logs(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let interval = broker.config.cleaner_backoff_ms;
    every_partition(broker, interval, "cleaner", shutdown, |p, now| p.clean(now).map(|_| ())).await
}

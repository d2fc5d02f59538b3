//! A broker joining its cluster (with `metadata.store`): before its data
//! directory opens, it agrees the cluster id with etcd; once its listeners are
//! bound, it registers under a lease, keeps the lease alive, and keeps its
//! view of the registered brokers fresh from a watch, until it stops, when it
//! gives the lease up so the others see it gone at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::cluster::etcd::{BrokerChange, MetadataStore, Registered};
use crate::cluster::meta_properties::ClusterIdentity;
use crate::cluster::metadata_cache::ListenerInfo;
use crate::cluster::registration::{BrokerRegistration, BrokerState, RegisteredListener};
use crate::config::Config;
use crate::error::{Error, Result};

/// The lease of this broker's last registration, kept so that a restart (after
/// kill -9, say) gives it up at once instead of waiting for it to expire.
const LEASE_FILE: &str = "etcd-lease";

/// How long to wait before trying etcd again after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// Connect to the cluster's etcd and settle this data directory's cluster id
/// with the cluster's: a new directory takes the cluster's (or gives its own to
/// a new cluster); one recording another cluster's id is refused, as Kafka
/// refuses it (InconsistentClusterIdException).
pub async fn connect(config: &Config) -> Result<Option<MetadataStore>> {
    let Some(url) = &config.cluster.store else {
        return Ok(None);
    };
    let store = MetadataStore::connect(url).await?;
    let local = ClusterIdentity::recorded(&config.data_dir, config.node_id)?;
    let proposed = local
        .clone()
        .unwrap_or_else(|| crate::util::uuid::to_base64(&uuid::Uuid::new_v4()));
    let agreed = store.settle_cluster_id(&proposed).await?;
    match local {
        Some(local) if local != agreed => {
            return Err(Error::InvalidConfig(format!(
                "{} belongs to cluster {local}, but {}{} is cluster {agreed}: a data directory cannot move between clusters",
                config.data_dir.display(),
                url.endpoints.join(","),
                url.prefix
            )))
        }
        Some(_) => {}
        None => ClusterIdentity::record(&config.data_dir, config.node_id, &agreed)?,
    }
    tracing::info!(cluster_id = %agreed, prefix = %url.prefix, "joined the cluster's metadata store");
    Ok(Some(store))
}

fn registration(config: &Config, listeners: &[ListenerInfo], incarnation: &str) -> BrokerRegistration {
    BrokerRegistration {
        v: 1,
        id: config.node_id,
        listeners: listeners
            .iter()
            .map(|l| RegisteredListener {
                name: l.name.clone(),
                host: l.advertised_host.clone(),
                port: l.advertised_port,
                security_protocol: config
                    .listener_security
                    .get(&l.name)
                    .map_or("PLAINTEXT", |s| s.protocol.name())
                    .to_string(),
            })
            .collect(),
        rack: config.cluster.rack.clone(),
        state: BrokerState::Running,
        incarnation: incarnation.to_string(),
    }
}

/// Register, waiting while another process holds this node id (its lease must
/// expire first). Gives up only at shutdown.
async fn register(
    store: &MetadataStore,
    data_dir: &Path,
    registration: &BrokerRegistration,
    ttl_secs: i64,
    shutdown: &watch::Receiver<bool>,
) -> Result<Registered> {
    let mut waited = 0u32;
    loop {
        if *shutdown.borrow() {
            return Err(Error::MetadataStore("shutting down before registering".into()));
        }
        match store.register(registration, ttl_secs).await {
            Ok(Some(registered)) => {
                if let Err(e) = crate::util::fs::write_atomically(
                    &data_dir.join(LEASE_FILE),
                    registered.lease.to_string().as_bytes(),
                ) {
                    tracing::warn!(error = %e, "could not record the etcd lease");
                }
                tracing::info!(
                    node_id = registration.id,
                    broker_epoch = registered.epoch,
                    "registered in the cluster"
                );
                return Ok(registered);
            }
            Ok(None) => {
                if waited.is_multiple_of(10) {
                    tracing::warn!(
                        node_id = registration.id,
                        "node.id is registered by another broker process; waiting for that registration to expire"
                    );
                }
                waited += 1;
            }
            Err(e) => tracing::warn!(error = %e, "cannot register in the cluster yet"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Join the cluster once the listeners are bound: register (waiting as
/// [`register`] does), then keep the registration and the view of the brokers
/// up to date in the background. The task ends at shutdown, after giving the
/// lease up.
pub async fn join(
    broker: Arc<Broker>,
    store: MetadataStore,
    listeners: &[ListenerInfo],
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let config = &broker.config;
    // A previous run's lease: given up, so its registration goes now.
    if let Some(lease) = std::fs::read_to_string(config.data_dir.join(LEASE_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
    {
        let _ = store.revoke(lease).await;
    }
    let incarnation = crate::util::uuid::to_base64(&uuid::Uuid::new_v4());
    let me = registration(config, listeners, &incarnation);
    let ttl_secs = (config.cluster.session_timeout_ms as i64 + 999) / 1000;
    let registered = register(&store, &config.data_dir, &me, ttl_secs, &shutdown).await?;
    // The view of the brokers first, so Metadata lists the cluster at once.
    match store.brokers().await {
        Ok((brokers, _)) => broker.metadata.set_brokers(brokers),
        Err(e) => tracing::warn!(error = %e, "cannot read the registered brokers yet"),
    }
    let watcher = tokio::spawn(watch_brokers(broker.clone(), store.clone()));
    let interval = Duration::from_millis(config.cluster.heartbeat_interval_ms);
    let data_dir = config.data_dir.clone();
    Ok(tokio::spawn(async move {
        let mut shutdown = shutdown;
        let mut registered = registered;
        loop {
            tokio::select! {
                kept = store.keep_alive(registered.lease, interval) => match kept {
                    // The lease expired: for the cluster this broker was gone.
                    // It registers again, with a new broker epoch.
                    Ok(()) => {
                        tracing::warn!("the broker's lease expired; registering again");
                        match register(&store, &data_dir, &me, ttl_secs, &shutdown).await {
                            Ok(r) => registered = r,
                            Err(_) => break,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the broker's lease; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
        watcher.abort();
        // Gone at once for the others, rather than after the session timeout.
        match store.revoke(registered.lease).await {
            Ok(()) => {
                let _ = std::fs::remove_file(data_dir.join(LEASE_FILE));
                tracing::info!("left the cluster");
            }
            Err(e) => tracing::warn!(error = %e, "could not give the broker's lease up; it expires by itself"),
        }
    }))
}

/// Keep the metadata cache's registered brokers as etcd has them: read them,
/// then apply each change a watch reports; read again whenever the watch ends.
async fn watch_brokers(broker: Arc<Broker>, store: MetadataStore) {
    loop {
        let (mut brokers, revision) = match store.brokers().await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the registered brokers; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        broker.metadata.set_brokers(brokers.clone());
        let mut watch = match store.watch_brokers(revision + 1).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the registered brokers; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            match watch.next().await {
                Ok(changes) => {
                    apply(&mut brokers, changes);
                    broker.metadata.set_brokers(brokers.clone());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the watch of the registered brokers ended; reading them again");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

fn apply(brokers: &mut BTreeMap<i32, crate::cluster::registration::RegisteredBroker>, changes: Vec<BrokerChange>) {
    for change in changes {
        match change {
            BrokerChange::Registered(b) => {
                brokers.insert(b.registration.id, b);
            }
            BrokerChange::Gone(id) => {
                brokers.remove(&id);
            }
        }
    }
}

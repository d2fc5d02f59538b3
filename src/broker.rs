//! The broker's shared state — everything a request handler may reach — and
//! the background work that keeps it (flushes, group timeouts, retention, the
//! cleaner). Binding listeners and serving is [`crate::server`]'s.

mod coordinators;
mod shared;
pub mod txn_cluster;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::dynamic_config::{DynamicBrokerConfig, Scope};
use crate::cluster::meta_properties::ClusterIdentity;
use crate::cluster::metadata_cache::MetadataCache;
use crate::cluster::producer_ids::ProducerIdManager;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::router::{Catalog, GroupCoordinator};
/// Whether a topic is one of Kafka's internal ones, for the layers above.
pub use crate::log::manager::is_internal_topic;
use crate::log::manager::{ConfigChange, LogLayout, LogManager, OFFSETS_TOPIC};
use crate::record::control::{Marker, MarkerType};
use crate::replica::partition::NO_LEADER_EPOCH;
use crate::replica::replica_manager::ReplicaManager;
use crate::txn::coordinator::{MarkerWriter, TransactionCoordinator};
use crate::txn::state::TopicPartition;
use crate::txn::state_manager::TransactionStateManager;
use crate::util::clock::now_ms;

/// Everything a request handler may reach.
pub struct Broker {
    pub config: Config,
    /// The cluster as clients are told it: ids, brokers, listeners, leaders.
    pub metadata: MetadataCache,
    pub logs: Arc<LogManager>,
    /// The `log.*` defaults changed at run time (this broker's and the cluster's).
    pub dynamic_config: DynamicBrokerConfig,
    /// Appends with acks and fetches with waits (Kafka's ReplicaManager).
    pub replicas: Arc<ReplicaManager>,
    pub producer_ids: ProducerIdManager,
    /// The way to the active controller while this broker is it (a cluster's).
    pub controller: crate::cluster::controller::ControllerChannel,
    /// The transaction coordinator of every transactional id (one broker leads
    /// every `__transaction_state` partition).
    pub transactions: TransactionCoordinator,
    pub groups: GroupCoordinator,
    /// Users' SCRAM credentials (salted, iterated).
    pub credentials: crate::security::credentials::CredentialStore,
    /// ACLs, and whether they are checked.
    pub authorizer: crate::security::acl::Authorizer,
    /// Client quotas and each client's usage.
    pub quotas: crate::quota::QuotaManager,
    /// Counters and histograms for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The protocol trace's switch, filters and subscribers.
    pub tracer: crate::trace::Tracer,
    /// In a cluster, where ACLs, credentials, quotas and the default broker
    /// configs are changed, and what of them this broker installed.
    pub shared: crate::cluster::documents::SharedDocuments,
    /// Flips to `true` when shutdown begins; long waits select on it.
    pub shutting_down: watch::Receiver<bool>,
}

impl Broker {
    /// Open the data directory: identity, logs (recovered if need be), producer
    /// ids and the group coordinator's state.
    pub fn open(config: Config, shutting_down: watch::Receiver<bool>) -> Result<Broker> {
        let identity = ClusterIdentity::load_or_create(&config.data_dir, config.node_id)?;
        let dynamic_config =
            DynamicBrokerConfig::open(&config.data_dir, config.log.clone(), config.log_overrides.clone())?;
        // A cluster's broker holds only the partitions it has replicas of.
        let layout = match config.cluster.store {
            Some(_) => LogLayout::Sparse,
            None => LogLayout::Contiguous,
        };
        let logs = Arc::new(LogManager::open_with_layout(
            &config.data_dir,
            dynamic_config.effective(),
            now_ms(),
            layout,
        )?);
        let producer_ids = ProducerIdManager::open(&config.data_dir)?;
        if config.cluster.store.is_some() {
            // Ids are reserved in the cluster once it is joined.
            producer_ids.use_cluster_blocks();
        }
        let credentials = crate::security::credentials::CredentialStore::open(&config.data_dir)?;
        let quotas = crate::quota::QuotaManager::open(
            &config.data_dir,
            std::time::Duration::from_secs(config.quota_window_size_seconds),
            config.quota_window_num,
        )?;
        let authorizer = crate::security::acl::Authorizer::open(
            &config.data_dir,
            config.authorizer_enabled,
            &config.super_users,
            config.allow_everyone_if_no_acl_found,
        )?;
        // One broker coordinates every group, from its own offsets topic; a
        // cluster's broker, those of the partitions it comes to lead.
        let groups = match config.cluster.store {
            None => GroupCoordinator::open(&logs, config.group.clone(), now_ms())?,
            Some(_) => GroupCoordinator::new(config.group.clone(), Catalog::local(&logs)),
        };
        let store = match config.cluster.store {
            None => TransactionStateManager::open(logs.clone())?,
            Some(_) => TransactionStateManager::for_cluster(logs.clone()),
        };
        let transactions = TransactionCoordinator::new(store, config.transaction_max_timeout_ms);
        let node_id = identity.node_id;
        let metadata = MetadataCache::new(identity, logs.clone());
        let replicas = Arc::new(ReplicaManager::new(
            node_id,
            logs.clone(),
            shutting_down.clone(),
            config.cluster.inter_broker.clone(),
            metadata.subscribe(),
        ));
        // Decisions made before a crash get their markers now.
        transactions.complete_pending(
            &Markers {
                replicas: &replicas,
                groups: &groups,
                cluster: None,
            },
            now_ms(),
        );
        Ok(Broker {
            metadata,
            replicas,
            transactions,
            logs,
            dynamic_config,
            producer_ids,
            controller: Default::default(),
            groups,
            credentials,
            authorizer,
            quotas,
            metrics: crate::metrics::Metrics::new(&config.observe),
            tracer: crate::trace::Tracer::new(&config.observe),
            shared: Default::default(),
            config,
            shutting_down,
        })
    }

    /// Where the transaction coordinator's markers go.
    pub fn markers(&self) -> Markers<'_> {
        Markers {
            replicas: &self.replicas,
            groups: &self.groups,
            cluster: Some(&self.metadata),
        }
    }

    pub fn node_id(&self) -> i32 {
        self.metadata.node_id()
    }

    /// Change the dynamic configs of `scope` (AlterConfigs on a broker resource)
    /// to what `change` makes of them: validated and persisted, then every topic
    /// without an override of its own follows at once.
    pub fn alter_broker_configs(&self, scope: Scope, change: ConfigChange<'_>, validate_only: bool) -> Result<()> {
        self.dynamic_config.alter(scope, change, validate_only, |effective| {
            self.logs.set_base_config(effective);
            tracing::info!(?scope, "dynamic broker configs changed");
        })
    }

    /// Start the background tasks; they end when `shutdown` flips. Returns
    /// handles to abort them with.
    pub fn spawn_background(self: &Arc<Self>, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(flush_periodically(self.clone(), shutdown.clone())),
            tokio::spawn(expire_group_members(self.clone(), shutdown.clone())),
            tokio::spawn(enforce_retention(self.clone(), shutdown.clone())),
            tokio::spawn(clean_logs(self.clone(), shutdown.clone())),
            tokio::spawn(abort_timed_out_transactions(self.clone(), shutdown.clone())),
        ]
    }
}

/// Markers go to the partitions' logs; one in `__consumer_offsets` also ends the
/// offsets the transaction committed there (pending until then), which only the
/// group coordinator knows of (Kafka's GroupCoordinator.onTransactionCompleted).
/// In a cluster a marker counts once the partition's in-sync replicas have it,
/// and one for a partition led by another broker is sent to it
/// (WriteTxnMarkers).
pub struct Markers<'a> {
    replicas: &'a ReplicaManager,
    groups: &'a GroupCoordinator,
    /// A cluster's metadata (None while the broker opens: it coordinates no
    /// transaction of a cluster yet).
    cluster: Option<&'a MetadataCache>,
}

impl Markers<'_> {
    /// Write a marker to a partition this broker leads (WriteTxnMarkers from
    /// another broker's coordinator lands here): blocks until it is durable.
    pub fn write_local(
        &self,
        partition: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
    ) -> Result<()> {
        let log = self.replicas.leader_log(&partition.0, partition.1, NO_LEADER_EPOCH)?;
        self.replicas
            .write_marker(partition, producer_id, producer_epoch, marker)?;
        if self.cluster.is_some_and(|m| m.is_cluster()) {
            let end = log.log_end_offset();
            txn_cluster::wait_replicated(self.replicas, &log, end, txn_cluster::TXN_WAIT)?;
        }
        if partition.0 == OFFSETS_TOPIC {
            self.groups
                .complete_txn(partition.1, producer_id, marker.kind == MarkerType::Commit);
        }
        Ok(())
    }
}

impl MarkerWriter for Markers<'_> {
    fn write_marker(
        &self,
        partition: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
    ) -> Result<()> {
        match (
            self.write_local(partition, producer_id, producer_epoch, marker),
            self.cluster,
        ) {
            (Err(Error::NotLeaderOrFollower { .. }), Some(metadata)) if metadata.is_cluster() => {
                txn_cluster::write_remote_marker(
                    metadata,
                    partition,
                    producer_id,
                    producer_epoch,
                    marker,
                    self.replicas,
                )
            }
            (written, _) => written,
        }
    }
}

/// Abort transactions past their timeout, and finish those whose markers could
/// not all be written, every
/// transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s); forget ids
/// idle past transactional.id.expiration.ms (Kafka looks hourly; the check is
/// cheap).
async fn abort_timed_out_transactions(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(broker.config.transaction_abort_interval_ms)) => {}
            _ = shutdown.changed() => return,
        }
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            b.transactions.abort_timed_out(&b.markers(), now_ms());
            b.transactions
                .expire_ids(b.config.transactional_id_expiration_ms, now_ms());
        })
        .await;
    }
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
/// the initial rebalance delay are checked every 100 ms. A tick that comes late means the broker did not run meanwhile
/// (paused, starved): members could not reach it, so their sessions start
/// again instead of expiring — and a cluster's broker catches up with the
/// metadata (it may no longer coordinate them) before the next tick.
async fn expire_group_members(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    const TICK: Duration = Duration::from_millis(100);
    const PAUSED: i64 = 2_000;
    let mut last = now_ms();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        let now = now_ms();
        if now - last >= PAUSED {
            tracing::warn!(
                paused_ms = now - last,
                "the broker did not run for a while; group sessions start again"
            );
            broker.groups.forgive_pause(now);
        } else {
            broker.groups.tick(now);
        }
        last = now;
    }
}

/// Run `work` on every partition every `interval_ms`, off the async threads.
async fn every_partition(
    broker: Arc<Broker>,
    interval_ms: u64,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    work: fn(&crate::log::unified_log::UnifiedLog, i64) -> crate::error::Result<()>,
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
        p.delete_retired(now);
        p.apply_retention(now).map(|_| ())
    })
    .await
}

/// Compact `cleanup.policy=compact` partitions every `log.cleaner.backoff.ms`.
async fn clean_logs(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let interval = broker.config.cleaner_backoff_ms;
    every_partition(broker, interval, "cleaner", shutdown, |p, now| {
        p.delete_retired(now);
        p.clean(now).map(|_| ())
    })
    .await
}

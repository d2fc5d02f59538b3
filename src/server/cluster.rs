//! A broker joining its cluster (with `metadata.store`): before its data
//! directory opens, it agrees the cluster id with etcd; once its listeners are
//! bound, it registers under a lease, keeps the lease alive, and keeps its
//! view of the registered brokers fresh from a watch, until it stops, when it
//! gives the lease up so the others see it gone at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::controlled_shutdown::Leaving;
use crate::broker::Broker;
use crate::cluster::controller::{self, ControllerContext};
use crate::cluster::documents;
use crate::cluster::etcd::{ControllerRecord, KeyState, MetadataStore, Registered};
use crate::cluster::image::MetadataImage;
use crate::cluster::meta_properties::ClusterIdentity;
use crate::cluster::metadata_cache::ListenerInfo;
use crate::cluster::producer_ids::BLOCK;
use crate::cluster::registration::{BrokerRegistration, BrokerState, RegisteredListener};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::consumer::topics::TopicsView;
use crate::util::clock::now_ms;

/// The lease of this broker's last registration, kept so that a restart (after
/// kill -9, say) gives it up at once instead of waiting for it to expire.
const LEASE_FILE: &str = "etcd-lease";

/// How long to wait before trying etcd again after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// How long a starting broker keeps trying to reach etcd.
const CONNECT_PATIENCE: Duration = Duration::from_secs(30);

/// Connect to the cluster's etcd and settle this data directory's cluster id
/// with the cluster's: a new directory takes the cluster's (or gives its own to
/// a new cluster); one recording another cluster's id is refused, as Kafka
/// refuses it (InconsistentClusterIdException).
pub async fn connect(config: &Config) -> Result<Option<MetadataStore>> {
    let Some(url) = &config.cluster.store else {
        return Ok(None);
    };
    let local = ClusterIdentity::recorded(&config.data_dir, config.node_id)?;
    let proposed = local
        .clone()
        .unwrap_or_else(|| crate::util::uuid::to_base64(&uuid::Uuid::new_v4()));
    // etcd may still be starting (a compose file starts both at once), or one
    // of its members be down (calls routed to it fail): tried for a while
    // before giving up.
    let started = std::time::Instant::now();
    let (store, agreed) = loop {
        let attempt = async {
            let store = MetadataStore::connect(url).await?;
            let agreed = store.settle_cluster_id(&proposed).await?;
            Ok::<_, Error>((store, agreed))
        };
        match attempt.await {
            Ok(done) => break done,
            Err(e) if started.elapsed() < CONNECT_PATIENCE => {
                tracing::warn!(error = %e, endpoints = %url.endpoints.join(","), "cannot reach etcd yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    };
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
    give_up_after: Option<Duration>,
) -> Result<Registered> {
    let mut waited = 0u32;
    let started = std::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            return Err(Error::MetadataStore("shutting down before registering".into()));
        }
        if give_up_after.is_some_and(|limit| started.elapsed() > limit) {
            // As Kafka refuses a broker id that is registered already.
            return Err(Error::InvalidConfig(format!(
                "node.id={} is registered by another running broker",
                registration.id
            )));
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
                // The key holds something that is no registration (written by
                // hand): this broker's id is taken back.
                if let Ok(KeyState::Unsound(mod_revision)) = store.key_state(registration.id).await {
                    if let Ok(lease) = store.grant_lease(ttl_secs).await {
                        if store.reclaim(registration, lease, mod_revision).await.unwrap_or(false) {
                            if let Ok(KeyState::Registered(held_by, broker)) = store.key_state(registration.id).await {
                                if held_by == lease {
                                    return Ok(Registered {
                                        lease,
                                        epoch: broker.epoch,
                                    });
                                }
                            }
                        }
                        let _ = store.revoke(lease).await;
                    }
                }
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
) -> Result<(JoinHandle<()>, Leaving)> {
    let config = &broker.config;
    // Consumer-protocol subscriptions see the cluster's topics, not the
    // replicas held here.
    let weak = Arc::downgrade(&broker);
    broker.groups.catalog().set(Arc::new(move || {
        let topics = weak.upgrade().map(|b| b.metadata.topics()).unwrap_or_default();
        TopicsView::new(
            topics
                .into_iter()
                .map(|t| (t.name, t.id, t.partitions.len() as i32, t.internal)),
        )
    }));
    let incarnation = crate::util::uuid::to_base64(&uuid::Uuid::new_v4());
    let me = registration(config, listeners, &incarnation);
    // A previous run's lease, still holding this id's key with the same
    // addresses (this broker killed and restarted): given up, so the key goes
    // now rather than at its expiry. A copy of this data directory elsewhere
    // registers other addresses, and does not get to take the id over.
    if let Some(lease) = std::fs::read_to_string(config.data_dir.join(LEASE_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
    {
        if let Ok(Some((held_by, current))) = store.registration(me.id).await {
            if held_by == lease && current.registration.listeners == me.listeners {
                let _ = store.revoke(lease).await;
            }
        }
    }
    let session = Duration::from_millis(config.cluster.session_timeout_ms);
    let ttl_secs = (config.cluster.session_timeout_ms as i64 + 999) / 1000;
    let patience = (session * 3).max(Duration::from_secs(10));
    let registered = register(&store, &config.data_dir, &me, ttl_secs, &shutdown, Some(patience)).await?;
    // ACLs, credentials, quotas and the default broker configs are the
    // cluster's from now on.
    broker.shared.set_store(Arc::new(store.clone()));
    // The cluster's metadata first, so Metadata answers for the cluster at once.
    match store.load().await {
        Ok(image) => {
            // Security state this broker cannot read would leave it open
            // (no ACLs) or shut (no users): it does not start. (A default
            // config it refuses only warns.)
            let mut refused = broker.install_shared(&image.documents).into_iter();
            if let Some((key, e)) = refused.find(|(k, _)| k != documents::BROKER_DEFAULT_CONFIGS) {
                return Err(Error::MetadataStore(format!(
                    "the cluster's {key} in etcd is not sound ({e}): fix or delete the key, then start again"
                )));
            }
            let image = Arc::new(image);
            apply(&broker, image.clone(), Vec::new(), true).await;
            broker.metadata.set_image(image);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the cluster's metadata yet"),
    }
    let watcher = tokio::spawn(follow_metadata(broker.clone(), store.clone()));
    let isr_keeper = tokio::spawn(super::isr::maintain_isr(broker.clone()));
    let id_reserver = tokio::spawn(reserve_producer_ids(broker.clone(), store.clone(), shutdown.clone()));
    let (lease_tx, lease_rx) = watch::channel(registered);
    let leaving = Leaving {
        broker: broker.clone(),
        store: store.clone(),
        me: me.clone(),
        registered: lease_tx.subscribe(),
    };
    let elector = tokio::spawn(elect_controller(broker.clone(), store.clone(), me.id, lease_rx));
    let interval = Duration::from_millis(config.cluster.heartbeat_interval_ms);
    let data_dir = config.data_dir.clone();
    let cluster_id = broker.metadata.cluster_id().to_string();
    // What the keys say is checked now and then, in a task of its own (its
    // calls may wait on a frozen etcd member; the lease renewals must not): a
    // registration or a cluster id deleted or overwritten by hand is put back.
    // The lease the check found gone: acted on only if it is still the one in
    // use (a broker resumed after a pause may have registered anew meanwhile).
    let (lost_tx, mut lost_rx) = tokio::sync::mpsc::channel::<i64>(1);
    let checker = {
        let (store, me, current, cluster_id) = (store.clone(), me.clone(), lease_tx.subscribe(), cluster_id.clone());
        let every = (interval * 5).max(Duration::from_secs(2));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let registered = *current.borrow();
                let checked = tokio::time::timeout(every, reconcile(&store, &me, registered, &cluster_id)).await;
                if checked == Ok(true) {
                    let _ = lost_tx.try_send(registered.lease);
                }
            }
        })
    };
    let task = tokio::spawn(async move {
        let mut shutdown = shutdown;
        let mut registered = registered;
        loop {
            let lost = tokio::select! {
                kept = store.keep_alive(registered.lease, interval) => match kept {
                    // The lease expired: for the cluster this broker was gone.
                    Ok(()) => {
                        tracing::warn!("the broker's lease expired; registering again");
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the broker's lease; retrying");
                        tokio::time::sleep(RETRY).await;
                        false
                    }
                },
                Some(lease) = lost_rx.recv() => lease == registered.lease,
                _ = shutdown.changed() => break,
            };
            if lost {
                // Registered again, with a new broker epoch.
                match register(&store, &data_dir, &me, ttl_secs, &shutdown, None).await {
                    Ok(r) => {
                        registered = r;
                        lease_tx.send_replace(r);
                    }
                    Err(_) => break,
                }
            }
        }
        watcher.abort();
        isr_keeper.abort();
        id_reserver.abort();
        elector.abort();
        checker.abort();
        // Gone at once for the others, rather than after the session timeout.
        match store.revoke(registered.lease).await {
            Ok(()) => {
                let _ = std::fs::remove_file(data_dir.join(LEASE_FILE));
                tracing::info!("left the cluster");
            }
            Err(e) => tracing::warn!(error = %e, "could not give the broker's lease up; it expires by itself"),
        }
    });
    Ok((task, leaving))
}

/// Whether this broker's registration is gone and must be made again; puts a
/// deleted cluster id back (so a new broker cannot found another cluster under
/// the same prefix).
async fn reconcile(store: &MetadataStore, me: &BrokerRegistration, registered: Registered, cluster_id: &str) -> bool {
    match store.cluster_id().await {
        Ok(None) => {
            tracing::warn!("the cluster id was deleted from etcd; writing it back");
            let _ = store.settle_cluster_id(cluster_id).await;
        }
        Ok(Some(id)) if id != cluster_id => {
            tracing::error!(ours = %cluster_id, theirs = %id, "etcd names another cluster id than this broker's");
        }
        _ => {}
    }
    match store.key_state(me.id).await {
        Ok(KeyState::Registered(lease, _)) if lease == registered.lease => false,
        // Registered again by this process (a newer lease than the one checked).
        Ok(KeyState::Registered(_, broker)) if broker.registration.incarnation == me.incarnation => false,
        Ok(KeyState::Registered(..)) => {
            tracing::error!(node_id = me.id, "another process registered this broker's node.id");
            false
        }
        // Overwritten by hand with something that is no registration: taken back.
        Ok(KeyState::Unsound(mod_revision)) => {
            tracing::warn!(
                node_id = me.id,
                "this broker's registration was overwritten; writing it back"
            );
            let _ = store.reclaim(me, registered.lease, mod_revision).await;
            false
        }
        Ok(KeyState::Absent) => {
            tracing::warn!(
                node_id = me.id,
                "this broker's registration disappeared from etcd; registering again"
            );
            // The old lease holds no key any more.
            let _ = store.revoke(registered.lease).await;
            true
        }
        Err(_) => false,
    }
}

/// Take part in controller elections for as long as this broker runs: when
/// there is no controller, campaign (under this broker's current lease, so the
/// controllership goes with the broker); keep the metadata cache's controller as
/// etcd has it. The controller's work (topics, leaders, ISR) is the next stage;
/// for now the election and its fencing epoch are what run.
async fn elect_controller(broker: Arc<Broker>, store: MetadataStore, me: i32, lease: watch::Receiver<Registered>) {
    // The controller's loop while this broker is the controller.
    let mut acting: Option<JoinHandle<()>> = None;
    let stop = |acting: &mut Option<JoinHandle<()>>| {
        if let Some(task) = acting.take() {
            task.abort();
        }
    };
    loop {
        let (current, revision) = match store.controller().await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the controller; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let current = match current {
            Some(c) => c,
            None => {
                let lease = lease.borrow().lease;
                match store.campaign(me, lease).await {
                    Ok(Some(session)) => {
                        tracing::info!(controller_epoch = session.epoch, "this broker is the active controller");
                        stop(&mut acting);
                        let ctx = ControllerContext {
                            store: store.clone(),
                            session,
                            me,
                            images: broker.metadata.subscribe(),
                            default_partitions: broker.config.num_partitions,
                            default_replication_factor: broker.config.cluster.default_replication_factor,
                            unclean_leader_election: broker.logs.base_config().unclean_leader_election_enable,
                            offsets_topic: (
                                broker.config.cluster.offsets_topic_num_partitions,
                                broker.config.cluster.offsets_topic_replication_factor,
                            ),
                            transaction_state_topic: (
                                broker.config.cluster.transaction_state_log_num_partitions,
                                broker.config.cluster.transaction_state_log_replication_factor,
                            ),
                            rebalance: broker.config.cluster.auto_leader_rebalance.then(|| {
                                let c = &broker.config.cluster;
                                (
                                    Duration::from_secs(c.leader_imbalance_check_interval_s),
                                    c.leader_imbalance_per_broker_percentage,
                                )
                            }),
                        };
                        let b = broker.clone();
                        acting = Some(tokio::spawn(async move { controller::run(ctx, &b.controller).await }));
                        ControllerRecord {
                            v: 1,
                            broker_id: me,
                            epoch: session.epoch,
                        }
                    }
                    // Another broker won: read who (not at once: a key
                    // that keeps the election from succeeding must not make
                    // this a busy loop).
                    Ok(None) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot campaign for controller; retrying");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
        };
        if current.broker_id != me {
            stop(&mut acting);
        }
        broker.metadata.set_controller(Some(current.broker_id));
        let mut watch = match store.watch_controller(revision + 1).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the controller; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            match watch.next().await {
                Ok(Some(c)) => {
                    if c != current {
                        stop(&mut acting);
                    }
                    broker.metadata.set_controller(Some(c.broker_id));
                }
                // No controller: campaign.
                Ok(None) => {
                    stop(&mut acting);
                    broker.metadata.set_controller(None);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the controller watch ended; reading it again");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

/// Keep a spare block of producer ids reserved in the cluster, so that
/// InitProducerId rarely waits (and never hands out another broker's ids).
async fn reserve_producer_ids(broker: Arc<Broker>, store: MetadataStore, mut shutdown: watch::Receiver<bool>) {
    let wanted = broker.producer_ids.use_cluster_blocks();
    loop {
        if broker.producer_ids.wants_block() {
            match store.reserve_producer_ids(BLOCK).await {
                Ok(start) => broker.producer_ids.add_block(start, start + BLOCK),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reserve producer ids; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
            continue;
        }
        tokio::select! {
            _ = wanted.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Keep this broker as the cluster's metadata says: load it, then take each
/// change a watch reports; load again whenever the watch ends. Each image is
/// shown in the metadata cache at once (the controller reads its own writes
/// there, and a broker's failover must not wait for file work) and handed to
/// the applier, which brings the replicas in line with the newest one.
async fn follow_metadata(broker: Arc<Broker>, store: MetadataStore) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let applier = tokio::spawn(apply_images(broker.clone(), rx));
    let publish = |image: &MetadataImage, deleted: Vec<String>| {
        // Shared state first: a broker that waits to see its own change of
        // it sees it in force once the image moves on.
        let _ = broker.install_shared(&image.documents);
        let image = Arc::new(image.clone());
        broker.metadata.set_image(image.clone());
        let _ = tx.send((image, deleted));
    };
    loop {
        let mut image = match store.load().await {
            Ok(image) => image,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster's metadata; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        publish(&image, Vec::new());
        let mut watch = match store.watch_all(image.revision + 1).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the cluster's metadata; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            match watch.next(&mut image).await {
                Ok(deleted) => publish(&image, deleted),
                Err(e) => {
                    tracing::warn!(error = %e, "the watch of the cluster's metadata ended; reading it again");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
        if applier.is_finished() {
            return;
        }
    }
}

/// Apply images as they come, skipping to the newest when several wait (the
/// topic deletions seen on the way are all kept).
async fn apply_images(
    broker: Arc<Broker>,
    mut images: tokio::sync::mpsc::UnboundedReceiver<(Arc<MetadataImage>, Vec<String>)>,
) {
    while let Some((mut image, mut deleted)) = images.recv().await {
        while let Ok((newer, more)) = images.try_recv() {
            image = newer;
            deleted.extend(more);
        }
        apply(&broker, image, deleted, false).await;
    }
}

/// Apply an image to this broker's replicas (file work, off the async
/// workers); the topics deleted here lose their committed offsets too.
async fn apply(broker: &Arc<Broker>, image: Arc<MetadataImage>, deleted: Vec<String>, starting: bool) {
    let b = broker.clone();
    let applied = image.clone();
    let removed = tokio::task::spawn_blocking(move || b.replicas.apply_image(&applied, &deleted, starting, now_ms()))
        .await
        .unwrap_or_default();
    broker.follow_coordinator_leadership(&image);
    for name in removed {
        if let Err(e) = broker.groups.topic_deleted(&name, now_ms()).await {
            tracing::warn!(topic = %name, error = %e, "cannot forget a deleted topic's offsets");
        }
        broker.metrics.topic_deleted(&name);
    }
}

//! The controller's loop, on the broker that won the election: one request or
//! one metadata change at a time (Kafka's QuorumController model), every
//! write conditioned on the election and on the revisions it read, and each
//! followed by waiting until this broker's image shows it.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, DeleteOptions, TxnOp};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::leadership::next_state;
use super::leadership::{alter_isr, preferred_elections, IsrChange};
use super::placement::{assign, check_assignments, Candidate};
use super::reassign;
use super::{ControllerChannel, ControllerRequest, Job, NewTopic, Reply};
use crate::cluster::etcd::{ControllerSession, MetadataStore};
use crate::cluster::image::{MetadataImage, PartitionRecord, TopicImage, TopicRecord};
use crate::error::{Error, Result};
use crate::log::manager::{
    is_internal_topic, offsets_topic_configs, transaction_state_configs, validate_topic_name, OFFSETS_TOPIC,
    TRANSACTION_STATE_TOPIC,
};

/// Partition keys written per transaction (etcd allows 128 operations in one).
const CHUNK: usize = 50;

/// How long the controller waits for its own write to show in its image.
const SEE_OWN_WRITE: Duration = Duration::from_secs(10);

/// What the controller works with.
pub struct ControllerContext {
    pub store: MetadataStore,
    pub session: ControllerSession,
    pub me: i32,
    /// This broker's images of the cluster's metadata, as its watch makes them.
    pub images: watch::Receiver<Option<Arc<MetadataImage>>>,
    /// `num.partitions`: a new topic's partition count when none is given.
    pub default_partitions: i32,
    /// `default.replication.factor`: its replicas when none is given.
    pub default_replication_factor: i16,
    /// The brokers' `unclean.leader.election.enable` (a topic may override it).
    pub unclean_leader_election: bool,
    /// `offsets.topic.num.partitions` and `offsets.topic.replication.factor`.
    pub offsets_topic: (i32, i16),
    /// `transaction.state.log.num.partitions` and `.replication.factor`.
    pub transaction_state_topic: (i32, i16),
    /// Preferred-leader election every this often, past this imbalance
    /// percentage (None: `auto.leader.rebalance.enable=false`).
    pub rebalance: Option<(Duration, u32)>,
}

/// Act as the controller until this broker no longer is (another broker's
/// election shows in the image, or a write finds the election gone). Requests
/// come through `channel`, open meanwhile.
pub async fn run(mut ctx: ControllerContext, channel: &ControllerChannel) {
    let (tx, mut rx) = mpsc::channel::<Job>(64);
    channel.open(tx);
    let guard = ctx.session.guard_revision;
    wait_for(&mut ctx.images, guard).await;
    tracing::info!(epoch = ctx.session.epoch, "controller started");
    let mut rebalanced = tokio::time::Instant::now();
    loop {
        let Some(image) = ctx.images.borrow_and_update().clone() else {
            break;
        };
        let deposed = image.revision >= guard
            && image
                .controller
                .is_none_or(|c| c.broker_id != ctx.me || c.epoch != ctx.session.epoch);
        if deposed {
            break;
        }
        match reconcile(&mut ctx, &image).await {
            Err(Error::NotController) => break,
            Err(e) => tracing::warn!(error = %e, "controller could not elect leaders yet; retrying"),
            Ok(()) => {}
        }
        if let Some((_, percentage)) = ctx.rebalance.filter(|(every, _)| rebalanced.elapsed() >= *every) {
            rebalanced = tokio::time::Instant::now();
            match rebalance(&mut ctx, &image, percentage).await {
                Err(Error::NotController) => break,
                Err(e) => tracing::warn!(error = %e, "controller could not move leaders back yet"),
                Ok(()) => {}
            }
        }
        tokio::select! {
            job = rx.recv() => {
                let Some((request, reply)) = job else { break };
                let done = handle(&mut ctx, request).await;
                let lost = matches!(done, Err(Error::NotController));
                let _ = reply.send(done);
                if lost {
                    break;
                }
            }
            changed = ctx.images.changed() => if changed.is_err() { break },
            // Failed writes are tried again even if nothing changes.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    channel.close();
    // Requests still queued are answered: this broker is not the controller.
    rx.close();
    while let Ok((_, reply)) = rx.try_recv() {
        let _ = reply.send(Err(Error::NotController));
    }
    tracing::info!(epoch = ctx.session.epoch, "controller stopped");
}

/// Wait until the image is as of `revision`.
async fn wait_for(images: &mut watch::Receiver<Option<Arc<MetadataImage>>>, revision: i64) -> bool {
    let seen = images.wait_for(|i| i.as_ref().is_some_and(|i| i.revision >= revision));
    let seen = matches!(tokio::time::timeout(SEE_OWN_WRITE, seen).await, Ok(Ok(_)));
    seen
}

impl ControllerContext {
    fn key(&self, rest: &str) -> String {
        self.store.prefixed(rest)
    }

    /// A guarded write; then wait to see it. None: what it was conditioned on
    /// changed (read again).
    async fn write(&mut self, compares: Vec<Compare>, ops: Vec<TxnOp>) -> Result<Option<i64>> {
        let written = self.store.guarded(&self.session, compares, ops).await?;
        if let Some(revision) = written {
            if !wait_for(&mut self.images, revision).await {
                return Err(Error::RequestTimedOut(
                    "the controller's write did not show in time".into(),
                ));
            }
        }
        Ok(written)
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone().unwrap_or_default()
    }
}

/// Elect leaders and trim ISRs as the running brokers now are; a partition
/// left with no running in-sync replica goes to a running out-of-sync one if
/// its topic allows it (`unclean.leader.election.enable`).
async fn reconcile(ctx: &mut ControllerContext, image: &MetadataImage) -> Result<()> {
    let mut changes = Vec::new();
    for topic in image.topics() {
        let unclean = topic
            .configs
            .get("unclean.leader.election.enable")
            .map_or(ctx.unclean_leader_election, |v| v.eq_ignore_ascii_case("true"));
        for (index, p) in &topic.partitions {
            let alive = |b| image.is_alive(b);
            let mut next = next_state(&p.record, alive);
            // A reassignment whose target is in sync now finishes.
            if let Some(done) = reassign::complete(next.as_ref().unwrap_or(&p.record), alive) {
                next = Some(done);
            }
            let now = next.as_ref().unwrap_or(&p.record);
            if unclean && now.leader == -1 {
                if let Ok(elected) = super::leadership::elect(now, false, alive) {
                    tracing::warn!(
                        topic = %topic.name, partition = index, leader = elected.leader,
                        "unclean leader election: an out-of-sync replica leads; records only the others had are lost"
                    );
                    next = Some(elected);
                }
            }
            if let Some(next) = next {
                tracing::info!(
                    topic = %topic.name, partition = index, leader = next.leader,
                    leader_epoch = next.leader_epoch, isr = ?next.isr, "partition changes"
                );
                changes.push((partition_key(&topic.name, *index), next, p.mod_revision));
            }
        }
    }
    write_partitions(ctx, changes).await
}

/// Give leadership back to preferred replicas (auto.leader.rebalance.enable).
async fn rebalance(ctx: &mut ControllerContext, image: &MetadataImage, percentage: u32) -> Result<()> {
    let partitions: Vec<((String, i64), PartitionRecord)> = image
        .topics()
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|(i, p)| ((partition_key(&t.name, *i), p.mod_revision), p.record.clone()))
        })
        .collect();
    let moves = preferred_elections(&partitions, percentage, |b| image.is_alive(b));
    if !moves.is_empty() {
        tracing::info!(partitions = moves.len(), "moving leadership back to preferred replicas");
    }
    let changes = moves.into_iter().map(|((key, rev), next)| (key, next, rev)).collect();
    write_partitions(ctx, changes).await
}

/// Write partition records, each conditioned on the revision it was read at.
async fn write_partitions(ctx: &mut ControllerContext, changes: Vec<(String, PartitionRecord, i64)>) -> Result<()> {
    for chunk in changes.chunks(CHUNK) {
        let compares = chunk
            .iter()
            .map(|(key, _, rev)| Compare::mod_revision(ctx.key(key), CompareOp::Equal, *rev))
            .collect();
        let ops = chunk
            .iter()
            .map(|(key, record, _)| TxnOp::put(ctx.key(key), record.to_json(), None))
            .collect();
        ctx.write(compares, ops).await?;
    }
    Ok(())
}

/// Change one partition as `change` decides from its record and the running
/// brokers (None: it stays as it is), written conditioned on the record it
/// was decided from. The partition as it is afterwards.
async fn change_partition(
    ctx: &mut ControllerContext,
    topic: &str,
    partition: i32,
    what: &str,
    change: impl FnOnce(&PartitionRecord, &dyn Fn(i32) -> bool) -> Result<Option<PartitionRecord>>,
) -> Result<PartitionRecord> {
    let image = ctx.image();
    let unknown = || Error::UnknownTopicOrPartition {
        topic: topic.to_string(),
        partition,
    };
    let entry = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&partition).cloned())
        .ok_or_else(unknown)?;
    let Some(next) = change(&entry.record, &|b| image.is_alive(b))? else {
        return Ok(entry.record);
    };
    let key = partition_key(topic, partition);
    let unchanged = Compare::mod_revision(ctx.key(&key), CompareOp::Equal, entry.mod_revision);
    match ctx
        .write(vec![unchanged], vec![TxnOp::put(ctx.key(&key), next.to_json(), None)])
        .await?
    {
        Some(_) => {
            tracing::info!(
                topic, partition, leader = next.leader, replicas = ?next.replicas,
                adding = ?next.adding, removing = ?next.removing, "{what}"
            );
            Ok(next)
        }
        None => Err(Error::RequestTimedOut(format!(
            "{topic}-{partition} changed meanwhile ({what}); retry"
        ))),
    }
}

fn partition_key(topic: &str, index: i32) -> String {
    format!("partitions/{topic}/{index}")
}

async fn handle(ctx: &mut ControllerContext, request: ControllerRequest) -> Result<Reply> {
    match request {
        ControllerRequest::CreateTopic(t) => create_topic(ctx, t).await.map(Reply::Topic),
        ControllerRequest::DeleteTopic { name } => delete_topic(ctx, &name).await.map(Reply::Topic),
        ControllerRequest::CreatePartitions {
            name,
            count,
            assignments,
        } => create_partitions(ctx, &name, count, assignments)
            .await
            .map(Reply::Topic),
        ControllerRequest::SetTopicConfigs { name, configs } => {
            set_topic_configs(ctx, &name, &configs).await.map(Reply::Topic)
        }
        ControllerRequest::AlterPartition(change) => alter_partition(ctx, change).await.map(Reply::Partition),
        ControllerRequest::ElectLeader {
            topic,
            partition,
            preferred,
        } => {
            let elect = |r: &PartitionRecord, alive: &dyn Fn(i32) -> bool| {
                super::leadership::elect(r, preferred, alive).map(Some)
            };
            let what = "leader elected on request";
            change_partition(ctx, &topic, partition, what, elect)
                .await
                .map(Reply::Partition)
        }
        ControllerRequest::Reassign {
            topic,
            partition,
            target,
        } => {
            let registered: std::collections::BTreeSet<i32> = ctx.image().brokers.keys().copied().collect();
            let reassign = |r: &PartitionRecord, alive: &dyn Fn(i32) -> bool| match &target {
                None => reassign::cancel(r, alive).map(Some),
                Some(target) => {
                    reassign::check_target(target, |b| registered.contains(&b))?;
                    reassign::start(r, target, alive)
                }
            };
            let what = if target.is_some() {
                "reassignment started"
            } else {
                "reassignment cancelled"
            };
            change_partition(ctx, &topic, partition, what, reassign)
                .await
                .map(Reply::Partition)
        }
    }
}

/// A leader's ISR change, checked as Kafka's controller checks it, written
/// conditioned on the record it was checked against.
async fn alter_partition(ctx: &mut ControllerContext, change: IsrChange) -> Result<PartitionRecord> {
    let image = ctx.image();
    let unknown = || Error::UnknownTopicOrPartition {
        topic: change.topic.clone(),
        partition: change.partition,
    };
    let topic = image.topic(&change.topic).ok_or_else(unknown)?;
    let entry = topic.partitions.get(&change.partition).ok_or_else(unknown)?;
    let next = alter_isr(&entry.record, &change, |b| image.is_alive(b))?;
    let key = partition_key(&change.topic, change.partition);
    let unchanged = Compare::mod_revision(ctx.key(&key), CompareOp::Equal, entry.mod_revision);
    let put = TxnOp::put(ctx.key(&key), next.to_json(), None);
    match ctx.write(vec![unchanged], vec![put]).await? {
        Some(_) => {
            tracing::info!(topic = %change.topic, partition = change.partition, isr = ?next.isr, "ISR changed");
            Ok(next)
        }
        // Changed meanwhile: the leader learns it from the metadata.
        None => Err(Error::InvalidUpdateVersion),
    }
}

/// The running brokers replicas can go to.
fn candidates(image: &MetadataImage) -> Vec<Candidate> {
    image
        .brokers
        .values()
        .filter(|b| image.is_alive(b.registration.id))
        .map(|b| Candidate {
            id: b.registration.id,
            rack: b.registration.rack.clone(),
        })
        .collect()
}

/// A random start for placement, so topics' leaders spread.
fn random_start() -> usize {
    (Uuid::new_v4().as_u128() % 1_000_003) as usize
}

/// Replicas for `count` new partitions from `first` on: as given, or placed.
fn replicas_for(
    image: &MetadataImage,
    given: Vec<Vec<i32>>,
    first: i32,
    count: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>> {
    let replicas = if given.is_empty() {
        assign(&candidates(image), first, count, replication_factor, random_start())?
    } else {
        let registered: Vec<i32> = image.brokers.keys().copied().collect();
        check_assignments(&given, &registered)?;
        given
    };
    Ok(replicas)
}

/// The first state of a partition with `replicas`: led by the first running one.
fn first_state(image: &MetadataImage, topic_id: &str, replicas: Vec<i32>) -> PartitionRecord {
    let isr: Vec<i32> = replicas.iter().copied().filter(|b| image.is_alive(*b)).collect();
    let isr = if isr.is_empty() { replicas[..1].to_vec() } else { isr };
    PartitionRecord {
        v: 1,
        topic_id: topic_id.to_string(),
        leader: replicas.iter().copied().find(|b| image.is_alive(*b)).unwrap_or(-1),
        replicas,
        isr,
        leader_epoch: 0,
        partition_epoch: 0,
        adding: Vec::new(),
        removing: Vec::new(),
    }
}

async fn create_topic(ctx: &mut ControllerContext, t: NewTopic) -> Result<Uuid> {
    validate_topic_name(&t.name)?;
    // The internal topics are made as this controller's settings say,
    // whoever asks (a broker finding a coordinator).
    let t = match t.name.as_str() {
        OFFSETS_TOPIC => NewTopic {
            partitions: ctx.offsets_topic.0,
            replication_factor: ctx.offsets_topic.1,
            assignments: Vec::new(),
            configs: offsets_topic_configs(),
            ..t
        },
        TRANSACTION_STATE_TOPIC => NewTopic {
            partitions: ctx.transaction_state_topic.0,
            replication_factor: ctx.transaction_state_topic.1,
            assignments: Vec::new(),
            configs: transaction_state_configs(),
            ..t
        },
        name if is_internal_topic(name) => return Err(Error::InvalidRequest(format!("{name} is internal"))),
        _ => t,
    };
    let image = ctx.image();
    if image.topic(&t.name).is_some() {
        return Err(Error::TopicAlreadyExists(t.name));
    }
    let (count, factor) = match t.assignments.len() {
        0 => (
            if t.partitions == -1 {
                ctx.default_partitions
            } else {
                t.partitions
            },
            if t.replication_factor == -1 {
                1
            } else {
                t.replication_factor
            },
        ),
        n => (n as i32, -1),
    };
    if count < 1 {
        return Err(Error::InvalidPartitions(count));
    }
    let replicas = replicas_for(&image, t.assignments, 0, count, factor)?;
    let id = Uuid::new_v4();
    let id64 = crate::util::uuid::to_base64(&id);
    let topic_key = ctx.key(&format!("topics/{}", t.name));
    let absent = || Compare::create_revision(topic_key.as_str(), CompareOp::Equal, 0);
    // Partition keys left by a creation that did not finish go first.
    let leftovers = ctx.key(&format!("partitions/{}/", t.name));
    let cleared = TxnOp::delete(leftovers, Some(DeleteOptions::new().with_prefix()));
    if ctx.write(vec![absent()], vec![cleared]).await?.is_none() {
        return Err(Error::TopicAlreadyExists(t.name));
    }
    let records: Vec<(String, PartitionRecord)> = replicas
        .into_iter()
        .enumerate()
        .map(|(i, r)| (partition_key(&t.name, i as i32), first_state(&image, &id64, r)))
        .collect();
    for chunk in records.chunks(CHUNK) {
        let ops = chunk
            .iter()
            .map(|(key, record)| TxnOp::put(ctx.key(key), record.to_json(), None))
            .collect();
        if ctx.write(vec![absent()], ops).await?.is_none() {
            return Err(Error::TopicAlreadyExists(t.name));
        }
    }
    // The topic key last: the topic exists once it does.
    let mut ops = vec![TxnOp::put(
        topic_key.as_str(),
        serde_json::to_vec(&TopicRecord { v: 1, id: id64 }).unwrap_or_default(),
        None,
    )];
    let configs_key = ctx.key(&format!("configs/topics/{}", t.name));
    ops.push(match t.configs.is_empty() {
        true => TxnOp::delete(configs_key, None),
        false => TxnOp::put(configs_key, serde_json::to_vec(&t.configs).unwrap_or_default(), None),
    });
    if ctx.write(vec![absent()], ops).await?.is_none() {
        return Err(Error::TopicAlreadyExists(t.name));
    }
    tracing::info!(topic = %t.name, partitions = count, "controller created topic");
    Ok(id)
}

fn existing(image: &MetadataImage, name: &str) -> Result<TopicImage> {
    image.topic(name).ok_or_else(|| Error::UnknownTopicOrPartition {
        topic: name.to_string(),
        partition: -1,
    })
}

async fn delete_topic(ctx: &mut ControllerContext, name: &str) -> Result<Uuid> {
    let topic = existing(&ctx.image(), name)?;
    let topic_key = ctx.key(&format!("topics/{name}"));
    let unchanged = Compare::mod_revision(topic_key.as_str(), CompareOp::Equal, topic.mod_revision);
    let ops = vec![
        TxnOp::delete(topic_key.as_str(), None),
        TxnOp::delete(
            ctx.key(&format!("partitions/{name}/")),
            Some(DeleteOptions::new().with_prefix()),
        ),
        TxnOp::delete(ctx.key(&format!("configs/topics/{name}")), None),
    ];
    match ctx.write(vec![unchanged], ops).await? {
        Some(_) => {
            tracing::info!(topic = name, "controller deleted topic");
            Ok(topic.id)
        }
        None => Err(Error::UnknownTopicOrPartition {
            topic: name.to_string(),
            partition: -1,
        }),
    }
}

async fn create_partitions(
    ctx: &mut ControllerContext,
    name: &str,
    count: i32,
    assignments: Vec<Vec<i32>>,
) -> Result<Uuid> {
    let image = ctx.image();
    let topic = existing(&image, name)?;
    let current = topic.partitions.keys().next_back().map_or(0, |last| last + 1);
    if count <= current {
        return Err(Error::InvalidPartitions(count));
    }
    if !assignments.is_empty() && assignments.len() as i32 != count - current {
        return Err(Error::InvalidReplicaAssignment(
            "one assignment per new partition".into(),
        ));
    }
    let factor = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.record.replicas.len() as i16);
    let replicas = replicas_for(&image, assignments, current, count - current, factor)?;
    let id64 = crate::util::uuid::to_base64(&topic.id);
    let topic_key = ctx.key(&format!("topics/{name}"));
    let records: Vec<(String, PartitionRecord)> = replicas
        .into_iter()
        .zip(current..)
        .map(|(r, i)| (partition_key(name, i), first_state(&image, &id64, r)))
        .collect();
    for chunk in records.chunks(CHUNK) {
        let mut compares = vec![Compare::mod_revision(
            topic_key.as_str(),
            CompareOp::Equal,
            topic.mod_revision,
        )];
        let mut ops = Vec::new();
        for (key, record) in chunk {
            compares.push(Compare::create_revision(ctx.key(key), CompareOp::Equal, 0));
            ops.push(TxnOp::put(ctx.key(key), record.to_json(), None));
        }
        if ctx.write(compares, ops).await?.is_none() {
            return Err(Error::InvalidRequest(format!("partitions of {name} are being changed")));
        }
    }
    tracing::info!(topic = name, partitions = count, "controller added partitions");
    Ok(topic.id)
}

async fn set_topic_configs(
    ctx: &mut ControllerContext,
    name: &str,
    configs: &std::collections::BTreeMap<String, String>,
) -> Result<Uuid> {
    let topic = existing(&ctx.image(), name)?;
    let topic_key = ctx.key(&format!("topics/{name}"));
    let unchanged = Compare::mod_revision(topic_key.as_str(), CompareOp::Equal, topic.mod_revision);
    let configs_key = ctx.key(&format!("configs/topics/{name}"));
    let op = match configs.is_empty() {
        true => TxnOp::delete(configs_key, None),
        false => TxnOp::put(configs_key, serde_json::to_vec(configs).unwrap_or_default(), None),
    };
    match ctx.write(vec![unchanged], vec![op]).await? {
        Some(_) => Ok(topic.id),
        None => Err(Error::UnknownTopicOrPartition {
            topic: name.to_string(),
            partition: -1,
        }),
    }
}

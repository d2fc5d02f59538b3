//! Transactions across a cluster's brokers: the transaction coordinator of an
//! id is the leader of its `__transaction_state` partition, writes its
//! decisions there as that leader ([`LedTxnLog`], copied by the in-sync
//! replicas before they count), writes markers to partitions led elsewhere
//! with Kafka's WriteTxnMarkers, and a partition's leader verifies a
//! transactional batch with the producer's coordinator wherever it runs.
//!
//! The coordinator's work runs on the blocking pool (it fsyncs), so waits
//! and calls to other brokers here block their thread, bounded by timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};

use super::Broker;
use crate::cluster::metadata_cache::MetadataCache;
use crate::config::cluster::InterBroker;
use crate::error::{Error, Result};
use crate::log::manager::TRANSACTION_STATE_TOPIC;
use crate::log::unified_log::UnifiedLog;
use crate::record::control::{Marker, MarkerType};
use crate::replica::replica_manager::ReplicaManager;
use crate::txn::coordinator::TxnVerifier;
use crate::txn::state::TopicPartition;
use crate::txn::state_manager::TxnStateLog;

/// How long a coordinator waits for replicas, or for another broker's answer.
pub const TXN_WAIT: Duration = Duration::from_secs(5);

/// Wait, blocking this thread, until `log`'s high watermark reaches `end`
/// (every in-sync replica has it): NOT_LEADER_OR_FOLLOWER if this broker
/// stops leading it, REQUEST_TIMED_OUT after `timeout`.
pub fn wait_replicated(replicas: &ReplicaManager, log: &UnifiedLog, end: i64, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if log.high_watermark() >= end {
            return Ok(());
        }
        if !replicas.leads(log) {
            return Err(Error::NotLeaderOrFollower {
                topic: log.topic.clone(),
                partition: log.index,
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::RequestTimedOut(format!(
                "{}-{}: in-sync replicas did not reach offset {end} in time",
                log.topic, log.index
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A `__transaction_state` partition this broker leads at `epoch`.
pub struct LedTxnLog {
    pub replicas: Arc<ReplicaManager>,
    pub log: Arc<UnifiedLog>,
    pub epoch: i32,
}

impl TxnStateLog for LedTxnLog {
    fn log(&self) -> &Arc<UnifiedLog> {
        &self.log
    }

    fn write(&self, batch: &[u8], durable: bool, now_ms: i64) -> Result<i64> {
        self.replicas
            .leader_log(TRANSACTION_STATE_TOPIC, self.log.index, self.epoch)
            .map_err(|_| Error::NotCoordinator)?;
        let end = self.log.append(batch, now_ms)?.log_end_offset;
        self.replicas.appended(&self.log);
        if durable {
            self.log.sync_active()?;
            wait_replicated(&self.replicas, &self.log, end, TXN_WAIT).map_err(|e| match e {
                Error::NotLeaderOrFollower { .. } => Error::NotCoordinator,
                _ => Error::CoordinatorNotAvailable("the transaction log's replicas did not follow in time"),
            })?;
        }
        Ok(end)
    }
}

/// The address another broker is reached at, between brokers (on the
/// inter-broker listener, inter.broker.listener.name).
fn address_of(metadata: &MetadataCache, node: i32, inter: &InterBroker) -> Result<String> {
    metadata
        .image()
        .and_then(|image| image.inter_broker_address(node, inter.listener.as_deref()))
        .ok_or(Error::CoordinatorNotAvailable("no address for the broker"))
}

/// Send `request` to the broker at `addr` on a kept connection, blocking this
/// (blocking-pool) thread, within [`TXN_WAIT`]; `failed` says what did not
/// answer.
fn call_broker<R: Request>(
    addr: &str,
    replicas: &ReplicaManager,
    version: i16,
    request: &R,
    failed: &'static str,
) -> Result<R::Response> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::CoordinatorNotAvailable("no runtime to reach another broker"))?;
    let call = replicas.connections().call(addr, version, request);
    match handle.block_on(async { tokio::time::timeout(TXN_WAIT, call).await }) {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) | Err(_) => Err(Error::CoordinatorNotAvailable(failed)),
    }
}

/// A marker written to a partition led by another broker, with WriteTxnMarkers.
pub fn write_remote_marker(
    metadata: &MetadataCache,
    partition: &TopicPartition,
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    replicas: &ReplicaManager,
) -> Result<()> {
    let leader = metadata
        .partition(&partition.0, partition.1)
        .ok_or_else(|| Error::UnknownTopicOrPartition {
            topic: partition.0.clone(),
            partition: partition.1,
        })?
        .leader;
    if leader < 0 {
        return Err(Error::CoordinatorNotAvailable(
            "the partition has no leader for the marker",
        ));
    }
    let addr = address_of(metadata, leader, replicas.inter_broker())?;
    let mut topic = WritableTxnMarkerTopic::default();
    topic.name = TopicName(StrBytes::from_string(partition.0.clone()));
    topic.partition_indexes = vec![partition.1];
    let mut m = WritableTxnMarker::default();
    m.producer_id = ProducerId(producer_id);
    m.producer_epoch = producer_epoch;
    m.transaction_result = marker.kind == MarkerType::Commit;
    m.topics = vec![topic];
    m.coordinator_epoch = marker.coordinator_epoch;
    let mut request = WriteTxnMarkersRequest::default();
    request.markers = vec![m];
    let answer = call_broker(&addr, replicas, 1, &request, "the marker's leader did not answer")?;
    let code = answer
        .markers
        .first()
        .and_then(|m| m.topics.first())
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.error_code);
    match code {
        0 => Ok(()),
        3 => Err(Error::UnknownTopicOrPartition {
            topic: partition.0.clone(),
            partition: partition.1,
        }),
        _ => Err(Error::CoordinatorNotAvailable(
            "the partition's leader did not write the marker",
        )),
    }
}

/// Whether a transactional batch may go in: asked of this broker's
/// coordinator, or (in a cluster) of the broker coordinating the id.
pub struct ClusterVerifier<'a> {
    pub broker: &'a Broker,
}

impl TxnVerifier for ClusterVerifier<'_> {
    fn verify(&self, transactional_id: &str, producer_id: i64, epoch: i16, partition: &TopicPartition) -> Result<()> {
        let transactions = &self.broker.transactions;
        match transactions.store().check(transactional_id) {
            Err(Error::NotCoordinator) if self.broker.metadata.is_cluster() => {}
            _ => return transactions.verify(transactional_id, producer_id, epoch, partition),
        }
        // The coordinator is another broker: DescribeTransactions tells the
        // transaction's producer, state and partitions.
        let index = transactions.store().partition_of(transactional_id);
        let leader = self
            .broker
            .metadata
            .partition(TRANSACTION_STATE_TOPIC, index)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
            .ok_or(Error::CoordinatorNotAvailable(
                "the transaction's coordinator is unknown",
            ))?;
        let replicas = &self.broker.replicas;
        let addr = address_of(&self.broker.metadata, leader, replicas.inter_broker())?;
        let mut request = DescribeTransactionsRequest::default();
        request.transactional_ids = vec![TransactionalId(StrBytes::from_string(transactional_id.to_string()))];
        let described = tokio::task::block_in_place(|| {
            call_broker(
                &addr,
                replicas,
                0,
                &request,
                "the transaction's coordinator did not answer",
            )
        })?;
        let d = described
            .transaction_states
            .into_iter()
            .next()
            .ok_or(Error::CoordinatorNotAvailable("an empty answer"))?;
        match d.error_code {
            0 => {}
            // TRANSACTIONAL_ID_NOT_FOUND
            105 => return Err(Error::InvalidProducerIdMapping(transactional_id.to_string())),
            _ => return Err(Error::CoordinatorNotAvailable("the transaction's coordinator refused")),
        }
        if d.producer_id.0 != producer_id {
            return Err(Error::InvalidProducerIdMapping(transactional_id.to_string()));
        }
        if d.producer_epoch != epoch {
            return Err(Error::ProducerFenced(transactional_id.to_string()));
        }
        let included = d
            .topics
            .iter()
            .any(|t| t.topic.as_str() == partition.0 && t.partitions.contains(&partition.1));
        if d.transaction_state.as_str() == "Ongoing" && included {
            return Ok(());
        }
        Err(Error::InvalidTxnState(format!(
            "{}-{} is not part of an ongoing transaction of {transactional_id}",
            partition.0, partition.1
        )))
    }
}

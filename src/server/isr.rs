//! A leader's side of the ISR (Kafka's AlterPartitionManager): the changes its
//! followers' progress calls for are asked of the active controller, in
//! process when this broker is it, else with AlterPartition over the wire.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::client::{Bootstrap, Client};
use crate::cluster::controller::leadership::IsrChange;
use crate::error::{Error, Result};
use crate::util::clock::now_ms;

/// As leader, ask the controller for the ISR changes the followers' progress
/// calls for (Kafka's AlterPartitionManager): a follower behind for
/// `replica.lag.time.max.ms` leaves, one that caught up joins. The controller
/// is this broker (its channel) or another (AlterPartition over the wire).
pub(super) async fn maintain_isr(broker: Arc<Broker>) {
    let lag = broker.config.cluster.replica_lag_time_max_ms as i64;
    let every = Duration::from_millis((lag / 4).clamp(100, 1000) as u64);
    let mut connection: Option<(String, Client)> = None;
    loop {
        let slept = std::time::Instant::now();
        tokio::time::sleep(every).await;
        // Woken much later than asked: this process was not running (SIGSTOP,
        // a stalled machine). Its followers' fetches are queued, not missing:
        // shrinking the ISRs now would leave only this broker electable.
        if slept.elapsed() > every * 2 + Duration::from_millis(500) {
            tracing::warn!("this broker was not running for a while; ISRs stay as they are for now");
            broker.replicas.forgive_pause(now_ms());
            continue;
        }
        for change in broker.replicas.isr_changes(now_ms(), lag) {
            tracing::info!(topic = %change.topic, partition = change.partition, isr = ?change.new_isr, "asking for an ISR change");
            let done = if broker.controller.is_active() {
                broker.controller.alter_partition(change.clone()).await.map(|_| ())
            } else {
                send_alter_partition(&broker, &mut connection, &change).await
            };
            if let Err(e) = done {
                tracing::debug!(topic = %change.topic, partition = change.partition, error = %e, "ISR change not made");
                broker.replicas.isr_change_failed(&change.topic, change.partition);
            }
        }
    }
}

/// AlterPartition v2 to the active controller.
async fn send_alter_partition(
    broker: &Broker,
    connection: &mut Option<(String, Client)>,
    change: &IsrChange,
) -> Result<()> {
    use kafka_protocol::messages::alter_partition_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{AlterPartitionRequest, BrokerId};
    let image = broker.metadata.image().ok_or(Error::NotController)?;
    let addr = image
        .inter_broker_address(
            broker.metadata.controller_id(),
            broker.config.cluster.inter_broker.listener.as_deref(),
        )
        .ok_or(Error::NotController)?;
    let topic_id = image
        .topic(&change.topic)
        .ok_or_else(|| Error::UnknownTopicOrPartition {
            topic: change.topic.clone(),
            partition: change.partition,
        })?
        .id;
    if connection.as_ref().is_none_or(|(a, _)| *a != addr) {
        let mut client = Client::connect(&Bootstrap::to_broker(&addr, &broker.config.cluster.inter_broker))
            .await
            .map_err(|e| Error::MetadataStore(e.to_string()))?;
        client.set_client_id("strom-alter-partition");
        *connection = Some((addr.clone(), client));
    }
    let Some((_, client)) = connection.as_mut() else {
        return Err(Error::NotController);
    };
    let mut p = PartitionData::default();
    p.partition_index = change.partition;
    p.leader_epoch = change.leader_epoch;
    p.partition_epoch = change.partition_epoch;
    p.new_isr = change.new_isr.iter().map(|b| BrokerId(*b)).collect();
    let mut t = TopicData::default();
    t.topic_id = topic_id;
    t.partitions = vec![p];
    let mut request = AlterPartitionRequest::default();
    request.broker_id = BrokerId(broker.node_id());
    request.broker_epoch = -1;
    request.topics = vec![t];
    let answer = tokio::time::timeout(Duration::from_secs(30), client.call(2, &request)).await;
    let response = match answer {
        Ok(Ok(r)) => r,
        _ => {
            *connection = None;
            return Err(Error::RequestTimedOut("no answer from the controller".into()));
        }
    };
    let code = match response.error_code {
        0 => response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .map_or(-1, |p| p.error_code),
        code => code,
    };
    match code {
        0 => Ok(()),
        code => Err(Error::InvalidRequest(format!(
            "AlterPartition answered error code {code}"
        ))),
    }
}

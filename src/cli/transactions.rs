//! `strom transactions list|describe` and `strom producers describe`: what the
//! transaction coordinator and each partition know of transactional and
//! idempotent producers (Kafka's kafka-transactions.sh). Like the other tools
//! these ask the bootstrap broker, which on one broker is every coordinator and
//! every partition's leader.

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::*;
use serde_json::json;

use super::{print_table, s, Output};
use crate::client::route::{Brokers, TRANSACTION};
use crate::client::{Bootstrap, ClientError};

/// `strom transactions list [--state S]… [--producer-id P]…`
pub async fn list(
    bootstrap: &Bootstrap,
    states: &[String],
    producer_ids: &[i64],
    out: Output,
) -> Result<(), ClientError> {
    // Each broker lists the ids it coordinates.
    let mut brokers = Brokers::connect(bootstrap).await?;
    let mut req = ListTransactionsRequest::default();
    req.state_filters = states.iter().map(|st| s(st)).collect();
    req.producer_id_filters = producer_ids.iter().map(|p| ProducerId(*p)).collect();
    req.duration_filter = -1;
    let mut rows: Vec<(String, i64, String)> = Vec::new();
    for node in brokers.node_ids() {
        let r = brokers.node(node).await?.call(1, &req).await?;
        ClientError::check(r.error_code, None)?;
        if !r.unknown_state_filters.is_empty() {
            let unknown: Vec<String> = r.unknown_state_filters.iter().map(|f| f.to_string()).collect();
            return Err(ClientError::Usage(format!(
                "unknown transaction state(s): {} (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence)",
                unknown.join(", ")
            )));
        }
        rows.extend(r.transaction_states.iter().map(|t| {
            (
                t.transactional_id.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        }));
    }
    rows.sort();
    if out.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(id, pid, st)| json!({"transactionalId": id, "producerId": pid, "state": st}))
            .collect();
        out.print_json(json!(v));
    } else {
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|(id, pid, st)| vec![id, pid.to_string(), st])
            .collect();
        print_table(&["TRANSACTIONAL-ID", "PRODUCER-ID", "STATE"], &rows);
    }
    Ok(())
}

/// `strom transactions describe ID`
pub async fn describe(bootstrap: &Bootstrap, transactional_id: &str, out: Output) -> Result<(), ClientError> {
    let mut brokers = Brokers::connect(bootstrap).await?;
    let client = brokers.coordinator(TRANSACTION, transactional_id).await?;
    let mut req = DescribeTransactionsRequest::default();
    req.transactional_ids = vec![TransactionalId(s(transactional_id))];
    let r = client.call(0, &req).await?;
    let t = r
        .transaction_states
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Protocol("no transaction in the answer".into()))?;
    ClientError::check(t.error_code, None)?;
    let partitions: Vec<(String, i32)> = t
        .topics
        .iter()
        .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.to_string(), *p)))
        .collect();
    let start = (t.transaction_start_time_ms >= 0).then_some(t.transaction_start_time_ms);
    if out.json {
        let parts: Vec<_> = partitions
            .iter()
            .map(|(topic, p)| json!({"topic": topic, "partition": p}))
            .collect();
        out.print_json(json!({
            "transactionalId": transactional_id,
            "producerId": t.producer_id.0,
            "producerEpoch": t.producer_epoch,
            "state": t.transaction_state.to_string(),
            "timeoutMs": t.transaction_timeout_ms,
            "startTimeMs": start,
            "partitions": parts,
        }));
    } else {
        let parts: Vec<String> = partitions.iter().map(|(topic, p)| format!("{topic}-{p}")).collect();
        let row = vec![
            transactional_id.to_string(),
            t.producer_id.0.to_string(),
            t.producer_epoch.to_string(),
            t.transaction_state.to_string(),
            t.transaction_timeout_ms.to_string(),
            start.map_or("-".into(), |ms| ms.to_string()),
            if parts.is_empty() { "-".into() } else { parts.join(",") },
        ];
        print_table(
            &[
                "TRANSACTIONAL-ID",
                "PRODUCER-ID",
                "EPOCH",
                "STATE",
                "TIMEOUT-MS",
                "START-TIME-MS",
                "PARTITIONS",
            ],
            &[row],
        );
    }
    Ok(())
}

/// `strom producers describe TOPIC PARTITION`: the partition's active producers,
/// with the first offset of each one's open transaction.
pub async fn describe_producers(
    bootstrap: &Bootstrap,
    topic: &str,
    partition: i32,
    out: Output,
) -> Result<(), ClientError> {
    // Asked of the partition's leader.
    let mut brokers = Brokers::connect(bootstrap).await?;
    let leader = brokers.leader_of(topic, partition).await?;
    let client = brokers.node(leader).await?;
    let mut t = TopicRequest::default();
    t.name = TopicName(s(topic));
    t.partition_indexes = vec![partition];
    let mut req = DescribeProducersRequest::default();
    req.topics = vec![t];
    let r = client.call(0, &req).await?;
    let p = r
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .next()
        .ok_or_else(|| ClientError::Protocol("no partition in the answer".into()))?;
    ClientError::check(p.error_code, p.error_message.as_deref())?;
    let producers = p.active_producers;
    if out.json {
        let v: Vec<_> = producers
            .iter()
            .map(|p| {
                json!({
                    "producerId": p.producer_id.0,
                    "producerEpoch": p.producer_epoch,
                    "lastSequence": p.last_sequence,
                    "lastTimestamp": p.last_timestamp,
                    "coordinatorEpoch": p.coordinator_epoch,
                    "currentTransactionStartOffset": (p.current_txn_start_offset >= 0).then_some(p.current_txn_start_offset),
                })
            })
            .collect();
        out.print_json(json!(v));
    } else {
        let rows: Vec<Vec<String>> = producers
            .iter()
            .map(|p| {
                vec![
                    p.producer_id.0.to_string(),
                    p.producer_epoch.to_string(),
                    p.last_sequence.to_string(),
                    p.last_timestamp.to_string(),
                    p.coordinator_epoch.to_string(),
                    if p.current_txn_start_offset >= 0 {
                        p.current_txn_start_offset.to_string()
                    } else {
                        "-".into()
                    },
                ]
            })
            .collect();
        print_table(
            &[
                "PRODUCER-ID",
                "EPOCH",
                "LAST-SEQUENCE",
                "LAST-TIMESTAMP",
                "COORDINATOR-EPOCH",
                "CURRENT-TXN-START-OFFSET",
            ],
            &rows,
        );
    }
    Ok(())
}

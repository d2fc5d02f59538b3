//! `strom produce` and `strom consume`: quick checks from a shell. Each
//! partition is written to and read from its leader.

use std::collections::BTreeMap;
use std::io::BufRead;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;

use super::partitioner::partition_for;
use super::{list_offsets, partitions_of, s};
use crate::client::route::Brokers;
use crate::client::{Bootstrap, ClientError};
use crate::record::batch;
use crate::record::records;
use crate::record::records::{build_batch, NewRecord};

/// Errors that mean the partition's leader moved: ask again where it is.
const LEADER_MOVED: [i16; 4] = [6, 74, 75, 5];

/// `strom produce TOPIC`: one record per line of standard input; with a key
/// separator, the text before it is the key (partitioned as Kafka's default
/// partitioner does), else records go round-robin.
pub async fn produce(
    bootstrap: &Bootstrap,
    topic: &str,
    key_separator: Option<&str>,
    partition: Option<i32>,
) -> Result<(), ClientError> {
    let mut brokers = Brokers::connect(bootstrap).await?;
    let partitions = partitions_of(brokers.any(), topic).await?;
    let count = partitions.len() as i32;
    // Records without a key go round-robin over the partitions that have a
    // leader now (Kafka's partitioner skips the unavailable ones).
    let available: Vec<i32> = brokers
        .by_leader(topic, &partitions)
        .await?
        .into_values()
        .flatten()
        .collect();
    let mut available = available;
    available.sort_unstable();
    let mut by_partition: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
    let now = crate::util::clock::now_ms();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        let (key, value) = match key_separator.and_then(|sep| line.split_once(sep)) {
            Some((k, v)) => (Some(Bytes::from(k.to_string())), Bytes::from(v.to_string())),
            None => (None, Bytes::from(line)),
        };
        let p = match (partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for(k, count),
            (None, None) if available.is_empty() => {
                return ClientError::check(5, Some(&format!("no partition of {topic} has a leader")))
            }
            (None, None) => available[n % available.len()],
        };
        by_partition.entry(p).or_default().push(NewRecord {
            key,
            value: Some(value),
            timestamp: now,
            headers: Vec::new(),
        });
    }
    // Every partition written to has a leader, or nothing is written.
    let mut leaders = BTreeMap::new();
    for p in by_partition.keys() {
        leaders.insert(*p, brokers.leader_of(topic, *p).await?);
    }
    let mut total = 0;
    for (p, recs) in by_partition {
        for chunk in recs.chunks(500) {
            let mut pd = PartitionProduceData::default();
            pd.index = p;
            pd.records = Some(Bytes::from(build_batch(chunk, None)));
            let mut td = TopicProduceData::default();
            td.name = TopicName(s(topic));
            td.partition_data = vec![pd];
            let mut req = ProduceRequest::default();
            req.acks = -1;
            req.timeout_ms = 30_000;
            req.topic_data = vec![td];
            let r = brokers.node(leaders[&p]).await?.call(9, &req).await?;
            let pr = &r.responses[0].partition_responses[0];
            ClientError::check(pr.error_code, pr.error_message.as_deref())?;
            total += chunk.len();
        }
    }
    eprintln!("Produced {total} record(s) to {topic}.");
    Ok(())
}

/// `strom consume TOPIC`: print records (values, or `key<sep>value`) from the
/// beginning or the end; stop at the end unless `follow`, or after `max` records.
pub async fn consume(
    bootstrap: &Bootstrap,
    topic: &str,
    partition: Option<i32>,
    from_beginning: bool,
    key_separator: Option<&str>,
    max: Option<usize>,
    follow: bool,
) -> Result<(), ClientError> {
    let mut brokers = Brokers::connect(bootstrap).await?;
    let partitions = match partition {
        Some(p) => vec![p],
        None => partitions_of(brokers.any(), topic).await?,
    };
    let mut positions = list_offsets(&mut brokers, topic, &partitions, if from_beginning { -2 } else { -1 }).await?;
    let ends = list_offsets(&mut brokers, topic, &partitions, -1).await?;
    let mut leaders = brokers.by_leader(topic, &partitions).await?;
    // A partition without a leader now is left out (it has no end to reach).
    let led: Vec<i32> = leaders.values().flatten().copied().collect();
    for p in partitions.iter().filter(|p| !led.contains(p)) {
        eprintln!("{topic}-{p} has no leader now: left out");
        positions.remove(p);
    }
    let mut printed = 0usize;
    loop {
        let done =
            |positions: &BTreeMap<i32, i64>| positions.iter().all(|(p, o)| ends.get(p).is_none_or(|end| *o >= *end));
        if max.is_some_and(|m| printed >= m) || (!follow && done(&positions)) {
            return Ok(());
        }
        let mut moved = false;
        // Each leader's partitions, sharing half a second of waiting.
        let wait = 500 / leaders.len().max(1) as i32;
        for (leader, led) in leaders.clone() {
            let mut ft = FetchTopic::default();
            ft.topic = TopicName(s(topic));
            ft.partitions = led
                .iter()
                .filter_map(|p| {
                    let mut fp = FetchPartition::default();
                    fp.partition = *p;
                    fp.fetch_offset = *positions.get(p)?;
                    fp.partition_max_bytes = 1 << 20;
                    Some(fp)
                })
                .collect();
            if ft.partitions.is_empty() {
                continue;
            }
            let mut req = FetchRequest::default();
            req.max_wait_ms = wait;
            req.min_bytes = 1;
            req.max_bytes = 50 << 20;
            req.topics = vec![ft];
            let r = brokers.node(leader).await?.call(12, &req).await?;
            for pd in r.responses.iter().flat_map(|t| t.partitions.iter()) {
                if LEADER_MOVED.contains(&pd.error_code) {
                    moved = true;
                    continue;
                }
                ClientError::check(pd.error_code, None)?;
                let data = pd.records.clone().unwrap_or_default();
                for (pos, h) in batch::Batches::new(&data) {
                    // Transaction markers are the broker's, never a record.
                    if h.is_control() {
                        positions.insert(pd.partition_index, h.last_offset() + 1);
                        continue;
                    }
                    let batch = data.slice(pos..pos + h.total_size());
                    let recs = records::records(&batch, &h).map_err(|e| ClientError::Protocol(e.to_string()))?;
                    for rec in recs {
                        let offset = h.base_offset + rec.offset_delta as i64;
                        if offset < positions[&pd.partition_index] || max.is_some_and(|m| printed >= m) {
                            continue;
                        }
                        let value = String::from_utf8_lossy(rec.value.as_deref().unwrap_or_default()).to_string();
                        let line = match key_separator {
                            Some(sep) => {
                                let key = String::from_utf8_lossy(rec.key.as_deref().unwrap_or_default()).to_string();
                                format!("{key}{sep}{value}")
                            }
                            None => value,
                        };
                        // A reader that went away (`| head`) ends the command quietly.
                        use std::io::Write;
                        match writeln!(std::io::stdout().lock(), "{line}") {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                            Err(e) => return Err(ClientError::Io(e)),
                        }
                        printed += 1;
                    }
                    positions.insert(pd.partition_index, h.last_offset() + 1);
                }
            }
        }
        if moved {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            leaders = brokers.by_leader(topic, &partitions).await?;
        }
    }
}

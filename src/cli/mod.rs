//! strom's command-line tools besides the broker itself. They speak the Kafka
//! protocol, so they work against Kafka as well.

pub mod cluster;
pub mod configs;
pub mod groups;
pub mod io;
pub mod partitioner;
pub mod partitions;
pub mod security;
pub mod security_args;
pub mod topics;
pub mod transactions;

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::client::route::Brokers;
use crate::client::{Client, ClientError};

/// Tables for people, or JSON for scripts (`--json`).
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn print_json(&self, v: serde_json::Value) {
        println!("{v}");
    }

    /// Report a finished action.
    pub fn done(&self, text: &str, v: serde_json::Value) {
        if self.json {
            self.print_json(v);
        } else {
            println!("{text}");
        }
    }
}

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Metadata of some topics (or all), without creating any.
pub async fn metadata(client: &mut Client, topics: Option<&[&str]>) -> Result<MetadataResponse, ClientError> {
    let mut req = MetadataRequest::default();
    req.allow_auto_topic_creation = false;
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                let mut mt = MetadataRequestTopic::default();
                mt.name = Some(TopicName(s(t)));
                mt
            })
            .collect()
    });
    client.call(12, &req).await
}

/// partition → offset for a ListOffsets query (−2 earliest, −1 latest, or a
/// timestamp; −1 when nothing matches a timestamp), asked of each partition's
/// leader.
pub async fn list_offsets(
    brokers: &mut Brokers,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, ClientError> {
    let mut out = BTreeMap::new();
    for (leader, ps) in brokers.by_leader(topic, partitions).await? {
        let client = brokers.node(leader).await?;
        out.extend(list_offsets_of(client, topic, &ps, timestamp).await?);
    }
    Ok(out)
}

/// [`list_offsets`] of partitions `client`'s broker leads.
async fn list_offsets_of(
    client: &mut Client,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, ClientError> {
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = partitions
        .iter()
        .map(|p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = *p;
            lp.timestamp = timestamp;
            lp
        })
        .collect();
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let r = client.call(5, &req).await?;
    let mut out = BTreeMap::new();
    for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
        ClientError::check(p.error_code, None)?;
        out.insert(p.partition_index, p.offset);
    }
    Ok(out)
}

/// The partition indexes of a topic.
pub async fn partitions_of(client: &mut Client, topic: &str) -> Result<Vec<i32>, ClientError> {
    let m = metadata(client, Some(&[topic])).await?;
    let t = m
        .topics
        .first()
        .ok_or_else(|| ClientError::Protocol("no topic in the answer".into()))?;
    ClientError::check(t.error_code, None)?;
    let mut ps: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    ps.sort_unstable();
    Ok(ps)
}

/// Print rows as a table with aligned columns.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Parse a time for --to-datetime: epoch milliseconds, or UTC
/// `YYYY-MM-DDTHH:MM:SS[.mmm][Z]`.
pub fn parse_time(v: &str) -> Result<i64, String> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("{v:?} is neither epoch milliseconds nor YYYY-MM-DDTHH:MM:SS[.mmm]Z");
    let v = v.trim_end_matches('Z');
    let (date, time) = v.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (hms, millis) = match time.split_once('.') {
        Some((hms, ms)) => (hms, format!("{ms:0<3}")[..3].parse::<i64>().map_err(|_| bad())?),
        None => (time, 0),
    };
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2023-11-14T22:13:20.5Z").unwrap(), 1_700_000_000_500);
        assert!(parse_time("yesterday").is_err());
    }
}

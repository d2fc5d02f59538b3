//! `strom groups list|describe`: consumer groups, their members and lag, asked of
//! any Kafka-compatible broker.

use std::collections::BTreeMap;

use bytes::Buf;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::print_table;
use crate::client::{Client, ClientError};

/// `strom groups list`
pub async fn list(bootstrap: &str) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let response = client.call(4, &ListGroupsRequest::default()).await?;
    let rows: Vec<Vec<String>> = response
        .groups
        .iter()
        .map(|g| {
            vec![
                g.group_id.to_string(),
                g.group_state.to_string(),
                g.protocol_type.to_string(),
            ]
        })
        .collect();
    print_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows);
    Ok(())
}

/// Partitions named in a consumer-protocol assignment.
fn assigned(assignment: &bytes::Bytes) -> Vec<(String, i32)> {
    let mut buf = assignment.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16();
    ConsumerProtocolAssignment::decode(&mut buf, version)
        .map(|a| {
            a.assigned_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
                .collect()
        })
        .unwrap_or_default()
}

/// `strom groups describe GROUP`: per partition, the committed offset, the log
/// end offset, the lag, and which member consumes it.
pub async fn describe(bootstrap: &str, group: &str) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let described = client.call(5, &req).await?;
    let g = described
        .groups
        .first()
        .ok_or_else(|| ClientError::Protocol("no group in the answer".into()))?;
    // partition -> (member id, host, client id)
    let mut owners: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for m in &g.members {
        for tp in assigned(&m.member_assignment) {
            owners.insert(
                tp,
                (
                    m.member_id.to_string(),
                    m.client_host.to_string(),
                    m.client_id.to_string(),
                ),
            );
        }
    }
    let mut fetch = OffsetFetchRequest::default();
    let mut fg = OffsetFetchRequestGroup::default();
    fg.group_id = GroupId(StrBytes::from_string(group.to_string()));
    fg.topics = None;
    fetch.groups = vec![fg];
    let committed = client.call(8, &fetch).await?;
    let mut rows: BTreeMap<(String, i32), Option<i64>> = owners.keys().map(|k| (k.clone(), None)).collect();
    for t in committed.groups.iter().flat_map(|g| g.topics.iter()) {
        for p in &t.partitions {
            let offset = (p.committed_offset >= 0).then_some(p.committed_offset);
            rows.insert((t.name.to_string(), p.partition_index), offset);
        }
    }
    // Log end offsets of every partition shown.
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in rows.keys() {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    let mut lo = ListOffsetsRequest::default();
    lo.replica_id = BrokerId(-1);
    lo.topics = by_topic
        .iter()
        .map(|(t, ps)| {
            let mut lt = ListOffsetsTopic::default();
            lt.name = TopicName(StrBytes::from_string(t.clone()));
            lt.partitions = ps
                .iter()
                .map(|p| {
                    let mut lp = ListOffsetsPartition::default();
                    lp.partition_index = *p;
                    lp.timestamp = -1;
                    lp
                })
                .collect();
            lt
        })
        .collect();
    let ends = client.call(5, &lo).await?;
    let end_of = |t: &str, p: i32| {
        ends.topics
            .iter()
            .filter(|x| x.name.as_str() == t)
            .flat_map(|x| x.partitions.iter())
            .find(|x| x.partition_index == p && x.error_code == 0)
            .map(|x| x.offset)
    };
    println!(
        "Group {group}: state {}, protocol {} {}, {} member(s)\n",
        g.group_state.as_str(),
        g.protocol_type.as_str(),
        g.protocol_data.as_str(),
        g.members.len()
    );
    let dash = || "-".to_string();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|((t, p), current)| {
            let end = end_of(t, *p);
            let lag = match (current, end) {
                (Some(c), Some(e)) => (e - c).max(0).to_string(),
                _ => dash(),
            };
            let (member, host, client_id) = owners
                .get(&(t.clone(), *p))
                .cloned()
                .unwrap_or_else(|| (dash(), dash(), dash()));
            vec![
                t.clone(),
                p.to_string(),
                current.map(|c| c.to_string()).unwrap_or_else(dash),
                end.map(|e| e.to_string()).unwrap_or_else(dash),
                lag,
                member,
                host,
                client_id,
            ]
        })
        .collect();
    print_table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &table,
    );
    Ok(())
}

//! `strom groups list|describe|delete|reset-offsets`: consumer groups, their
//! members and lag, asked of any Kafka-compatible broker.

use std::collections::BTreeMap;

use bytes::Buf;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use serde_json::json;

use super::{list_offsets, partitions_of, print_table, s, Output};
use crate::client::{Bootstrap, Client, ClientError};

/// `strom groups list`
pub async fn list(bootstrap: &Bootstrap, out: Output) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let response = client.call(4, &ListGroupsRequest::default()).await?;
    ClientError::check(response.error_code, None)?;
    let groups: Vec<(String, String, String)> = response
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.group_state.to_string(),
                g.protocol_type.to_string(),
            )
        })
        .collect();
    if out.json {
        let v: Vec<_> = groups
            .iter()
            .map(|(g, st, p)| json!({"group": g, "state": st, "protocolType": p}))
            .collect();
        out.print_json(json!(v));
    } else {
        let rows: Vec<Vec<String>> = groups.into_iter().map(|(a, b, c)| vec![a, b, c]).collect();
        print_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows);
    }
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

async fn describe_group(
    client: &mut Client,
    group: &str,
) -> Result<describe_groups_response::DescribedGroup, ClientError> {
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(s(group))];
    let described = client.call(5, &req).await?;
    let g = described
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Protocol("no group in the answer".into()))?;
    ClientError::check(g.error_code, g.error_message.as_deref())?;
    Ok(g)
}

/// Committed offsets of every partition of a group.
async fn committed(client: &mut Client, group: &str) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
    let mut fetch = OffsetFetchRequest::default();
    let mut fg = OffsetFetchRequestGroup::default();
    fg.group_id = GroupId(s(group));
    fg.topics = None;
    fetch.groups = vec![fg];
    let r = client.call(8, &fetch).await?;
    let mut out = BTreeMap::new();
    for g in &r.groups {
        ClientError::check(g.error_code, None)?;
        for t in &g.topics {
            for p in &t.partitions {
                out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// `strom groups describe GROUP`: per partition, the committed offset, the log
/// end offset, the lag, and which member consumes it.
pub async fn describe(bootstrap: &Bootstrap, group: &str, out: Output) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let g = describe_group(&mut client, group).await?;
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
    let mut rows: BTreeMap<(String, i32), Option<i64>> = owners.keys().map(|k| (k.clone(), None)).collect();
    for (tp, offset) in committed(&mut client, group).await? {
        rows.insert(tp, (offset >= 0).then_some(offset));
    }
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in rows.keys() {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (t, ps) in &by_topic {
        if let Ok(found) = list_offsets(&mut client, t, ps, -1).await {
            ends.extend(found.into_iter().map(|(p, o)| ((t.clone(), p), o)));
        }
    }
    let entries: Vec<_> = rows
        .iter()
        .map(|(tp, current)| {
            let end = ends.get(tp).copied();
            let lag = current.zip(end).map(|(c, e)| (e - c).max(0));
            (tp, *current, end, lag, owners.get(tp))
        })
        .collect();
    if out.json {
        let partitions: Vec<_> = entries
            .iter()
            .map(|((t, p), current, end, lag, owner)| {
                json!({"topic": t, "partition": p, "currentOffset": current, "logEndOffset": end,
                       "lag": lag, "consumerId": owner.map(|o| &o.0), "host": owner.map(|o| &o.1),
                       "clientId": owner.map(|o| &o.2)})
            })
            .collect();
        out.print_json(json!({
            "group": group, "state": g.group_state.as_str(), "protocolType": g.protocol_type.as_str(),
            "protocol": g.protocol_data.as_str(), "members": g.members.len(), "partitions": partitions,
        }));
        return Ok(());
    }
    println!(
        "Group {group}: state {}, protocol {} {}, {} member(s)\n",
        g.group_state.as_str(),
        g.protocol_type.as_str(),
        g.protocol_data.as_str(),
        g.members.len()
    );
    let dash = || "-".to_string();
    let table: Vec<Vec<String>> = entries
        .iter()
        .map(|((t, p), current, end, lag, owner)| {
            let (member, host, client_id) = owner.cloned().unwrap_or_else(|| (dash(), dash(), dash()));
            vec![
                t.clone(),
                p.to_string(),
                current.map(|c| c.to_string()).unwrap_or_else(dash),
                end.map(|e| e.to_string()).unwrap_or_else(dash),
                lag.map(|l| l.to_string()).unwrap_or_else(dash),
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

/// `strom groups delete GROUP`
pub async fn delete(bootstrap: &Bootstrap, group: &str, out: Output) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![GroupId(s(group))];
    let r = client.call(2, &req).await?;
    ClientError::check(r.results[0].error_code, None)?;
    out.done(
        &format!("Deleted group {group}."),
        json!({"group": group, "deleted": true}),
    );
    Ok(())
}

/// Where `reset-offsets` moves a group's position.
#[derive(Debug, Clone, Copy)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// The first offset at or after this time (epoch ms); the end if none.
    Time(i64),
    /// An offset, clamped to what the log holds.
    Offset(i64),
}

/// `strom groups reset-offsets`: a dry run unless `execute`, as kafka-consumer-groups.
pub async fn reset_offsets(
    bootstrap: &Bootstrap,
    group: &str,
    topic: &str,
    to: ResetTo,
    execute: bool,
    out: Output,
) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let g = describe_group(&mut client, group).await?;
    let state = g.group_state.as_str();
    if !matches!(state, "Empty" | "Dead") {
        return Err(ClientError::Usage(format!(
            "group {group} is {state}: offsets can only be reset while it has no members"
        )));
    }
    let partitions = partitions_of(&mut client, topic).await?;
    let low = list_offsets(&mut client, topic, &partitions, -2).await?;
    let high = list_offsets(&mut client, topic, &partitions, -1).await?;
    let targets: BTreeMap<i32, i64> = match to {
        ResetTo::Earliest => low.clone(),
        ResetTo::Latest => high.clone(),
        ResetTo::Time(ts) => list_offsets(&mut client, topic, &partitions, ts)
            .await?
            .into_iter()
            .map(|(p, o)| (p, if o < 0 { high[&p] } else { o }))
            .collect(),
        ResetTo::Offset(o) => partitions.iter().map(|p| (*p, o.clamp(low[p], high[p]))).collect(),
    };
    if execute {
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partitions = targets
            .iter()
            .map(|(p, o)| {
                let mut cp = OffsetCommitRequestPartition::default();
                cp.partition_index = *p;
                cp.committed_offset = *o;
                cp
            })
            .collect();
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(s(group));
        req.generation_id_or_member_epoch = -1;
        req.topics = vec![t];
        let r = client.call(8, &req).await?;
        for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
            ClientError::check(p.error_code, None)?;
        }
    }
    if out.json {
        let v: Vec<_> = targets
            .iter()
            .map(|(p, o)| json!({"topic": topic, "partition": p, "newOffset": o}))
            .collect();
        out.print_json(json!({"group": group, "executed": execute, "offsets": v}));
    } else {
        let rows: Vec<Vec<String>> = targets
            .iter()
            .map(|(p, o)| vec![group.to_string(), topic.to_string(), p.to_string(), o.to_string()])
            .collect();
        print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
        if !execute {
            println!("\nDry run: nothing was changed. Add --execute to commit these offsets.");
        }
    }
    Ok(())
}

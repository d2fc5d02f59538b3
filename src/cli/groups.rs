//! `strom groups list|describe|delete|reset-offsets`: consumer groups, their
//! members and lag, asked of any Kafka-compatible broker.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use serde_json::json;

use super::{list_offsets, partitions_of, print_table, s, Output};
use crate::client::route::{Brokers, GROUP};
use crate::client::{Bootstrap, Client, ClientError};

/// Every group: (id, state, protocol type, group type: "classic" or "consumer").
pub async fn list_groups(client: &mut Client) -> Result<Vec<(String, String, String, String)>, ClientError> {
    let response = client.call(5, &ListGroupsRequest::default()).await?;
    ClientError::check(response.error_code, None)?;
    Ok(response
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.group_state.to_string(),
                g.protocol_type.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect())
}

/// Every group of the cluster: each broker lists those it coordinates.
pub async fn list_all_groups(brokers: &mut Brokers) -> Result<Vec<(String, String, String, String)>, ClientError> {
    let mut all = BTreeMap::new();
    for id in brokers.node_ids() {
        for g in list_groups(brokers.node(id).await?).await? {
            all.insert(g.0.clone(), g);
        }
    }
    Ok(all.into_values().collect())
}

/// `strom groups list`
pub async fn list(bootstrap: &Bootstrap, out: Output) -> Result<(), ClientError> {
    let mut brokers = Brokers::connect(bootstrap).await?;
    let groups = list_all_groups(&mut brokers).await?;
    if out.json {
        let v: Vec<_> = groups
            .iter()
            .map(|(g, st, p, t)| json!({"group": g, "type": t, "state": st, "protocolType": p}))
            .collect();
        out.print_json(json!(v));
    } else {
        let rows: Vec<Vec<String>> = groups.into_iter().map(|(a, b, c, d)| vec![a, d, b, c]).collect();
        print_table(&["GROUP", "TYPE", "STATE", "PROTOCOL-TYPE"], &rows);
    }
    Ok(())
}

/// Partitions named in a consumer-protocol assignment.
fn assigned(assignment: &bytes::Bytes) -> Vec<(String, i32)> {
    crate::group::assignment::decode_assignment(assignment)
        .into_iter()
        .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
        .collect()
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

/// One partition of a group: its position, the end of the log, the lag and
/// the member that consumes it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionPosition {
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
    pub consumer_id: Option<String>,
    pub host: Option<String>,
    pub client_id: Option<String>,
}

/// A member of a group and what it was assigned.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<(String, i32)>,
    /// Consumer-protocol groups: the member's epoch, what the broker's target
    /// assignment gives it, and the protocol it speaks ("consumer" or "classic").
    pub member_epoch: Option<i32>,
    pub target_assignment: Option<Vec<(String, i32)>>,
    pub member_type: Option<String>,
}

/// A consumer group as `strom groups describe` and the console show it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub group: String,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: String,
    /// Consumer-protocol groups: the group and target-assignment epochs.
    pub group_epoch: Option<i32>,
    pub assignment_epoch: Option<i32>,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberView>,
    pub partitions: Vec<PartitionPosition>,
    pub total_lag: i64,
}

/// A consumer-protocol group (ConsumerGroupDescribe); None if the group is not
/// one, or the broker does not know the API.
async fn describe_consumer_group(
    client: &mut Client,
    group: &str,
) -> Option<consumer_group_describe_response::DescribedGroup> {
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![GroupId(s(group))];
    // v1 tells classic members (during a migration) from consumer ones.
    let g = client.call(1, &req).await.ok()?.groups.into_iter().next()?;
    (g.error_code == 0).then_some(g)
}

fn partitions_named(a: &consumer_group_describe_response::Assignment) -> Vec<(String, i32)> {
    a.topic_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_name.to_string(), *p)))
        .collect()
}

/// The parts of a view that depend on the group's protocol: (type, state,
/// protocol type, protocol or assignor, epochs, members).
type Described = (
    String,
    String,
    String,
    String,
    Option<i32>,
    Option<i32>,
    Vec<MemberView>,
);

async fn describe_any(client: &mut Client, group: &str) -> Result<Described, ClientError> {
    if let Some(g) = describe_consumer_group(client, group).await {
        let members = g
            .members
            .iter()
            .map(|m| MemberView {
                member_id: m.member_id.to_string(),
                group_instance_id: m.instance_id.as_ref().map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: partitions_named(&m.assignment),
                member_epoch: Some(m.member_epoch),
                target_assignment: Some(partitions_named(&m.target_assignment)),
                member_type: Some(if m.member_type == 0 { "classic" } else { "consumer" }.to_string()),
            })
            .collect();
        return Ok((
            "consumer".to_string(),
            g.group_state.to_string(),
            "consumer".to_string(),
            g.assignor_name.to_string(),
            Some(g.group_epoch),
            Some(g.assignment_epoch),
            members,
        ));
    }
    let g = describe_group(client, group).await?;
    let members = g
        .members
        .iter()
        .map(|m| MemberView {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assignment: assigned(&m.member_assignment),
            member_epoch: None,
            target_assignment: None,
            member_type: None,
        })
        .collect();
    Ok((
        "classic".to_string(),
        g.group_state.to_string(),
        g.protocol_type.to_string(),
        g.protocol_data.to_string(),
        None,
        None,
        members,
    ))
}

/// Describe a group: members, committed offsets (from its coordinator), log
/// ends (from the partitions' leaders) and lag.
pub async fn view(brokers: &mut Brokers, group: &str) -> Result<GroupView, ClientError> {
    let (group_type, state, protocol_type, protocol, group_epoch, assignment_epoch, members) =
        describe_any(brokers.coordinator(GROUP, group).await?, group).await?;
    let mut owners: BTreeMap<(String, i32), &MemberView> = BTreeMap::new();
    for m in &members {
        for tp in &m.assignment {
            owners.insert(tp.clone(), m);
        }
    }
    let mut rows: BTreeMap<(String, i32), Option<i64>> = owners.keys().map(|k| (k.clone(), None)).collect();
    for (tp, offset) in committed(brokers.coordinator(GROUP, group).await?, group).await? {
        rows.insert(tp, (offset >= 0).then_some(offset));
    }
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in rows.keys() {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (t, ps) in &by_topic {
        if let Ok(found) = list_offsets(brokers, t, ps, -1).await {
            ends.extend(found.into_iter().map(|(p, o)| ((t.clone(), p), o)));
        }
    }
    let partitions: Vec<PartitionPosition> = rows
        .iter()
        .map(|(tp, current)| {
            let end = ends.get(tp).copied();
            let owner = owners.get(tp);
            PartitionPosition {
                topic: tp.0.clone(),
                partition: tp.1,
                current_offset: *current,
                log_end_offset: end,
                lag: current.zip(end).map(|(c, e)| (e - c).max(0)),
                consumer_id: owner.map(|o| o.member_id.clone()),
                host: owner.map(|o| o.host.clone()),
                client_id: owner.map(|o| o.client_id.clone()),
            }
        })
        .collect();
    Ok(GroupView {
        group: group.to_string(),
        group_type,
        group_epoch,
        assignment_epoch,
        state,
        protocol_type,
        protocol,
        total_lag: partitions.iter().filter_map(|p| p.lag).sum(),
        members,
        partitions,
    })
}

/// `strom groups describe GROUP`: per partition, the committed offset, the log
/// end offset, the lag, and which member consumes it.
pub async fn describe(bootstrap: &Bootstrap, group: &str, out: Output) -> Result<(), ClientError> {
    let mut brokers = Brokers::connect(bootstrap).await?;
    let v = view(&mut brokers, group).await?;
    if out.json {
        out.print_json(json!({
            "group": group, "type": v.group_type, "state": v.state, "protocolType": v.protocol_type,
            "protocol": v.protocol, "groupEpoch": v.group_epoch, "assignmentEpoch": v.assignment_epoch,
            "members": v.members.len(), "memberDetails": v.members, "partitions": v.partitions,
            "totalLag": v.total_lag,
        }));
        return Ok(());
    }
    match (v.group_epoch, v.assignment_epoch) {
        (Some(epoch), Some(target)) => println!(
            "Group {group}: consumer protocol (KIP-848), state {}, epoch {epoch} (target assignment {target}), assignor {}, {} member(s), lag {}\n",
            v.state,
            v.protocol,
            v.members.len(),
            v.total_lag
        ),
        _ => println!(
            "Group {group}: classic protocol, state {}, protocol {} {}, {} member(s), lag {}\n",
            v.state,
            v.protocol_type,
            v.protocol,
            v.members.len(),
            v.total_lag
        ),
    }
    if v.group_epoch.is_some() && !v.members.is_empty() {
        let list = |a: &[(String, i32)]| {
            let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (t, p) in a {
                by_topic.entry(t).or_default().push(p.to_string());
            }
            let parts: Vec<String> = by_topic.iter().map(|(t, ps)| format!("{t}:{}", ps.join(","))).collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(" ")
            }
        };
        let rows: Vec<Vec<String>> = v
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    m.member_type.clone().unwrap_or_default(),
                    m.member_epoch.map(|e| e.to_string()).unwrap_or_default(),
                    list(&m.assignment),
                    list(m.target_assignment.as_deref().unwrap_or_default()),
                    m.group_instance_id.clone().unwrap_or_else(|| "-".to_string()),
                    m.client_id.clone(),
                    m.host.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "MEMBER-ID",
                "PROTOCOL",
                "EPOCH",
                "ASSIGNED",
                "TARGET",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
            ],
            &rows,
        );
        println!();
    }
    let dash = || "-".to_string();
    let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(dash);
    let table: Vec<Vec<String>> = v
        .partitions
        .into_iter()
        .map(|p| {
            vec![
                p.topic,
                p.partition.to_string(),
                number(p.current_offset),
                number(p.log_end_offset),
                number(p.lag),
                p.consumer_id.unwrap_or_else(dash),
                p.host.unwrap_or_else(dash),
                p.client_id.unwrap_or_else(dash),
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

/// Delete a group without members, with its committed offsets.
pub async fn delete_group(client: &mut Client, group: &str) -> Result<(), ClientError> {
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![GroupId(s(group))];
    let r = client.call(2, &req).await?;
    let result = r
        .results
        .first()
        .ok_or_else(|| ClientError::Protocol("no group in the answer".into()))?;
    ClientError::check(result.error_code, None)
}

/// `strom groups delete GROUP`
pub async fn delete(bootstrap: &Bootstrap, group: &str, out: Output) -> Result<(), ClientError> {
    let mut brokers = Brokers::connect(bootstrap).await?;
    delete_group(brokers.coordinator(GROUP, group).await?, group).await?;
    out.done(
        &format!("Deleted group {group}."),
        json!({"group": group, "deleted": true}),
    );
    Ok(())
}

/// Delete a group's committed offsets of one topic (OffsetDelete; Kafka
/// refuses while a member consumes the topic).
pub async fn delete_offsets(brokers: &mut Brokers, group: &str, topic: &str) -> Result<(), ClientError> {
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    let partitions = partitions_of(brokers.any(), topic).await?;
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = partitions
        .iter()
        .map(|p| {
            let mut dp = OffsetDeleteRequestPartition::default();
            dp.partition_index = *p;
            dp
        })
        .collect();
    let mut req = OffsetDeleteRequest::default();
    req.group_id = GroupId(s(group));
    req.topics = vec![t];
    let r = brokers.coordinator(GROUP, group).await?.call(0, &req).await?;
    ClientError::check(r.error_code, None)?;
    for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
        ClientError::check(p.error_code, None)?;
    }
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

/// One partition's move in a reset: from the committed offset (if any) to
/// the new one.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OffsetMove {
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub new_offset: i64,
}

/// Work out where a reset moves a group on `topic`, and commit it when
/// `execute`: only while the group has no members, as kafka-consumer-groups.
pub async fn reset(
    brokers: &mut Brokers,
    group: &str,
    topic: &str,
    to: ResetTo,
    execute: bool,
) -> Result<Vec<OffsetMove>, ClientError> {
    let g = describe_group(brokers.coordinator(GROUP, group).await?, group).await?;
    let state = g.group_state.as_str();
    if !matches!(state, "Empty" | "Dead") {
        return Err(ClientError::Usage(format!(
            "group {group} is {state}: offsets can only be reset while it has no members"
        )));
    }
    let partitions = partitions_of(brokers.any(), topic).await?;
    let low = list_offsets(brokers, topic, &partitions, -2).await?;
    let high = list_offsets(brokers, topic, &partitions, -1).await?;
    let bounds = |p: &i32| (low.get(p).copied().unwrap_or(0), high.get(p).copied().unwrap_or(0));
    let targets: BTreeMap<i32, i64> = match to {
        ResetTo::Earliest => low.clone(),
        ResetTo::Latest => high.clone(),
        ResetTo::Time(ts) => list_offsets(brokers, topic, &partitions, ts)
            .await?
            .into_iter()
            .map(|(p, o)| (p, if o < 0 { bounds(&p).1 } else { o }))
            .collect(),
        ResetTo::Offset(o) => partitions
            .iter()
            .map(|p| {
                let (lo, hi) = bounds(p);
                (*p, o.clamp(lo, hi.max(lo)))
            })
            .collect(),
    };
    let client = brokers.coordinator(GROUP, group).await?;
    let current = committed(client, group).await?;
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
    Ok(targets
        .into_iter()
        .map(|(p, o)| OffsetMove {
            topic: topic.to_string(),
            partition: p,
            current_offset: current.get(&(topic.to_string(), p)).copied().filter(|&c| c >= 0),
            new_offset: o,
        })
        .collect())
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
    let mut brokers = Brokers::connect(bootstrap).await?;
    let moves = reset(&mut brokers, group, topic, to, execute).await?;
    if out.json {
        let v: Vec<_> = moves
            .iter()
            .map(|m| json!({"topic": topic, "partition": m.partition, "newOffset": m.new_offset}))
            .collect();
        out.print_json(json!({"group": group, "executed": execute, "offsets": v}));
    } else {
        let rows: Vec<Vec<String>> = moves
            .iter()
            .map(|m| {
                vec![
                    group.to_string(),
                    topic.to_string(),
                    m.partition.to_string(),
                    m.new_offset.to_string(),
                ]
            })
            .collect();
        print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
        if !execute {
            println!("\nDry run: nothing was changed. Add --execute to commit these offsets.");
        }
    }
    Ok(())
}

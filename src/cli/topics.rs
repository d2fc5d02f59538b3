//! `strom topics list|create|describe|alter|delete`, over the Kafka protocol.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::*;

use serde_json::json;

use super::{list_offsets, metadata, print_table, s, Output};
use crate::client::route::Brokers;
use crate::client::{Bootstrap, Client, ClientError};

pub async fn list(bootstrap: &Bootstrap, out: Output) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let m = metadata(&mut client, None).await?;
    let mut topics: Vec<(String, usize, String)> = m
        .topics
        .iter()
        .filter(|t| !t.is_internal)
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.partitions.len(),
                crate::util::uuid::to_base64(&t.topic_id),
            )
        })
        .collect();
    topics.sort();
    if out.json {
        let v: Vec<_> = topics
            .iter()
            .map(|(n, p, id)| json!({"name": n, "partitions": p, "topicId": id}))
            .collect();
        out.print_json(json!(v));
    } else {
        let rows: Vec<Vec<String>> = topics
            .into_iter()
            .map(|(n, p, id)| vec![n, p.to_string(), id])
            .collect();
        print_table(&["TOPIC", "PARTITIONS", "TOPIC-ID"], &rows);
    }
    Ok(())
}

/// CreateTopics for one topic; its partition count as created.
pub async fn create_topic(
    client: &mut Client,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> Result<i32, ClientError> {
    let mut t = CreatableTopic::default();
    t.name = TopicName(s(name));
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = s(k);
            c.value = Some(s(v));
            c
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let r = client.call(5, &req).await?;
    let t = r
        .topics
        .first()
        .ok_or_else(|| ClientError::Protocol("no topic in the answer".into()))?;
    ClientError::check(t.error_code, t.error_message.as_deref())?;
    Ok(t.num_partitions)
}

pub async fn create(
    bootstrap: &Bootstrap,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
    out: Output,
) -> Result<(), ClientError> {
    let mut client = crate::client::route::controller(bootstrap).await?;
    let created = create_topic(&mut client, name, partitions, replication_factor, configs).await?;
    out.done(
        &format!("Created topic {name} with {created} partition(s)."),
        json!({"name": name, "partitions": created}),
    );
    Ok(())
}

pub async fn describe(bootstrap: &Bootstrap, name: &str, out: Output) -> Result<(), ClientError> {
    let mut brokers = Brokers::connect(bootstrap).await?;
    let m = metadata(brokers.any(), Some(&[name])).await?;
    let t = &m.topics[0];
    ClientError::check(t.error_code, None)?;
    let mut partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    partitions.sort_unstable();
    let earliest = list_offsets(&mut brokers, name, &partitions, -2).await?;
    let latest = list_offsets(&mut brokers, name, &partitions, -1).await?;
    let client = brokers.any();
    let mut req = DescribeConfigsRequest::default();
    let mut res = DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = s(name);
    req.resources = vec![res];
    let configs = client.call(1, &req).await?;
    let result = &configs.results[0];
    ClientError::check(result.error_code, result.error_message.as_deref())?;
    // Overrides only (source 1: DYNAMIC_TOPIC_CONFIG), as kafka-topics --describe shows.
    let overrides: Vec<(String, String)> = result
        .configs
        .iter()
        .filter(|c| c.config_source == 1)
        .map(|c| (c.name.to_string(), c.value.as_deref().unwrap_or("").to_string()))
        .collect();
    let leader_of = |p: i32| {
        t.partitions
            .iter()
            .find(|x| x.partition_index == p)
            .map(|x| x.leader_id.0)
            .unwrap_or(-1)
    };
    if out.json {
        let parts: Vec<_> = partitions
            .iter()
            .map(|p| {
                json!({"partition": p, "leader": leader_of(*p), "logStartOffset": earliest.get(p), "logEndOffset": latest.get(p)})
            })
            .collect();
        let cfg: serde_json::Map<String, serde_json::Value> =
            overrides.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        out.print_json(json!({
            "name": name,
            "topicId": crate::util::uuid::to_base64(&t.topic_id),
            "partitions": parts,
            "configs": cfg,
        }));
        return Ok(());
    }
    let cfg = overrides
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "Topic: {name}\tTopicId: {}\tPartitionCount: {}\tConfigs: {cfg}\n",
        crate::util::uuid::to_base64(&t.topic_id),
        partitions.len()
    );
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|p| {
            vec![
                p.to_string(),
                leader_of(*p).to_string(),
                earliest.get(p).map(|o| o.to_string()).unwrap_or_default(),
                latest.get(p).map(|o| o.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["PARTITION", "LEADER", "LOG-START-OFFSET", "LOG-END-OFFSET"], &rows);
    Ok(())
}

pub async fn alter(
    bootstrap: &Bootstrap,
    name: &str,
    partitions: Option<i32>,
    set: &[(String, String)],
    delete: &[String],
    out: Output,
) -> Result<(), ClientError> {
    if partitions.is_none() && set.is_empty() && delete.is_empty() {
        return Err(ClientError::Usage(
            "nothing to alter: give --partitions, --config or --delete-config".into(),
        ));
    }
    let mut client = crate::client::route::controller(bootstrap).await?;
    if let Some(count) = partitions {
        let mut t = CreatePartitionsTopic::default();
        t.name = TopicName(s(name));
        t.count = count;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 30_000;
        let r = client.call(1, &req).await?;
        ClientError::check(r.results[0].error_code, r.results[0].error_message.as_deref())?;
    }
    if !set.is_empty() || !delete.is_empty() {
        super::configs::incremental_alter(&mut client, 2, name, set, delete).await?;
    }
    out.done(
        &format!("Altered topic {name}."),
        json!({"name": name, "altered": true}),
    );
    Ok(())
}

/// DeleteTopics for one topic, by name.
pub async fn delete_topic(client: &mut Client, name: &str) -> Result<(), ClientError> {
    let mut state = DeleteTopicState::default();
    state.name = Some(TopicName(s(name)));
    let mut req = DeleteTopicsRequest::default();
    req.topics = vec![state];
    req.timeout_ms = 30_000;
    let r = client.call(6, &req).await?;
    let t = r
        .responses
        .first()
        .ok_or_else(|| ClientError::Protocol("no topic in the answer".into()))?;
    ClientError::check(t.error_code, t.error_message.as_deref())
}

pub async fn delete(bootstrap: &Bootstrap, name: &str, out: Output) -> Result<(), ClientError> {
    let mut client = crate::client::route::controller(bootstrap).await?;
    delete_topic(&mut client, name).await?;
    out.done(
        &format!("Deleted topic {name}."),
        json!({"name": name, "deleted": true}),
    );
    Ok(())
}

/// Parse `key=value` (for --config).
pub fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

//! `strom cluster status`: the cluster as a broker sees it — its id, the active
//! controller, the brokers with their addresses and racks, and the partitions
//! that are offline (no leader) or under-replicated (fewer in sync than
//! replicas). On a single broker: itself, controlling itself.

use kafka_protocol::messages::{DescribeClusterRequest, MetadataResponse};
use serde_json::json;

use super::{metadata, print_table, Output};
use crate::client::{Bootstrap, Client, ClientError};

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers (address, rack), offline and
    /// under-replicated partitions.
    Status,
}

impl ClusterCommand {
    pub async fn run(self, bootstrap: &Bootstrap, out: Output) -> Result<(), ClientError> {
        match self {
            ClusterCommand::Status => status(bootstrap, out).await,
        }
    }
}

/// (offline, under-replicated) partitions as `topic-partition` names.
fn unhealthy(m: &MetadataResponse) -> (Vec<String>, Vec<String>) {
    let mut offline = Vec::new();
    let mut under = Vec::new();
    for t in &m.topics {
        let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        for p in &t.partitions {
            let tp = format!("{name}-{}", p.partition_index);
            if p.leader_id.0 < 0 {
                offline.push(tp);
            } else if p.isr_nodes.len() < p.replica_nodes.len() {
                under.push(tp);
            }
        }
    }
    (offline, under)
}

pub async fn status(bootstrap: &Bootstrap, out: Output) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let d = client.call(1, &DescribeClusterRequest::default()).await?;
    ClientError::check(d.error_code, d.error_message.as_deref())?;
    let mut topics = metadata(&mut client, None).await?;
    // Internal topics too: their partitions are as much the cluster's health.
    let internal = metadata(&mut client, Some(&["__consumer_offsets", "__transaction_state"])).await?;
    let listed: Vec<_> = topics.topics.iter().map(|t| t.name.clone()).collect();
    topics.topics.extend(
        internal
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0 && !listed.contains(&t.name)),
    );
    let (offline, under) = unhealthy(&topics);
    let controller = d.controller_id.0;
    let mut brokers: Vec<(i32, String, String)> = d
        .brokers
        .iter()
        .map(|b| {
            (
                b.broker_id.0,
                format!("{}:{}", b.host, b.port),
                b.rack.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    brokers.sort();
    if out.json {
        let list: Vec<_> = brokers
            .iter()
            .map(|(id, address, rack)| {
                json!({"id": id, "address": address, "rack": rack, "controller": *id == controller})
            })
            .collect();
        out.print_json(json!({
            "clusterId": d.cluster_id.to_string(),
            "controller": controller,
            "brokers": list,
            "offlinePartitions": offline,
            "underReplicatedPartitions": under,
        }));
        return Ok(());
    }
    println!("cluster {}  controller {}", d.cluster_id, controller);
    let rows: Vec<Vec<String>> = brokers
        .into_iter()
        .map(|(id, address, rack)| {
            let role = if id == controller { "controller" } else { "" };
            vec![id.to_string(), address, rack, role.to_string()]
        })
        .collect();
    print_table(&["BROKER", "ADDRESS", "RACK", "ROLE"], &rows);
    for (what, partitions) in [("offline", &offline), ("under-replicated", &under)] {
        let named = match partitions.is_empty() {
            true => String::new(),
            false => format!(" ({})", partitions.join(", ")),
        };
        println!("{what} partitions: {}{named}", partitions.len());
    }
    Ok(())
}

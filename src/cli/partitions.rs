//! `strom partitions reassign`: Kafka's `kafka-reassign-partitions` for a
//! cluster — move partitions' replicas to other brokers (`--execute`, the
//! default), see the moves under way (`--list`), check whether they are done
//! (`--verify`) or cancel them (`--cancel`). The moves come from Kafka's
//! reassignment JSON file (`{"version":1,"partitions":[{"topic":"t",
//! "partition":0,"replicas":[2,3,4]}]}`) or from `--topic/--partition/--replicas`.

use clap::Subcommand;
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use serde_json::json;

use super::{metadata, print_table, s, Output};
use crate::client::{Bootstrap, Client, ClientError};

#[derive(Subcommand)]
pub enum PartitionsCommand {
    /// Move partitions' replicas (KIP-455): start, list, verify or cancel.
    Reassign(ReassignArgs),
}

#[derive(clap::Args)]
pub struct ReassignArgs {
    /// Kafka's reassignment JSON: {"version":1,"partitions":[{"topic":…,"partition":…,"replicas":[…]}]}
    #[arg(long, conflicts_with_all = ["topic", "list"])]
    pub reassignment_json_file: Option<std::path::PathBuf>,
    #[arg(long, requires = "partition", conflicts_with = "list")]
    pub topic: Option<String>,
    #[arg(long, requires = "topic")]
    pub partition: Option<i32>,
    /// The target replicas, preferred leader first: 2,3,4
    #[arg(long, value_delimiter = ',')]
    pub replicas: Vec<i32>,
    /// List the moves under way.
    #[arg(long, conflicts_with_all = ["cancel", "verify"])]
    pub list: bool,
    /// Say whether each move is done.
    #[arg(long, conflicts_with = "cancel")]
    pub verify: bool,
    /// Cancel the moves (back to the replicas they started from).
    #[arg(long)]
    pub cancel: bool,
}

/// One partition's target: (topic, partition, replicas; empty for a cancel).
type Move = (String, i32, Vec<i32>);

impl PartitionsCommand {
    pub async fn run(self, bootstrap: &Bootstrap, out: Output) -> Result<(), ClientError> {
        let PartitionsCommand::Reassign(args) = self;
        let mut client = crate::client::route::controller(bootstrap).await?;
        if args.list {
            return list(&mut client, out).await;
        }
        let moves = args.moves()?;
        if args.verify {
            return verify(&mut client, &moves, out).await;
        }
        execute(&mut client, &moves, args.cancel, out).await
    }
}

impl ReassignArgs {
    fn moves(&self) -> Result<Vec<Move>, ClientError> {
        let usage = |m: String| ClientError::Usage(m);
        if let Some(path) = &self.reassignment_json_file {
            let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
            return parse_json(&text).map_err(usage);
        }
        match (&self.topic, self.partition) {
            (Some(t), Some(p)) if self.cancel || !self.replicas.is_empty() => {
                Ok(vec![(t.clone(), p, self.replicas.clone())])
            }
            (Some(_), Some(_)) => Err(usage("--replicas is needed (or --cancel)".into())),
            _ => Err(usage(
                "give --reassignment-json-file, or --topic, --partition and --replicas, or --list".into(),
            )),
        }
    }
}

/// Kafka's reassignment JSON (version 1; `log_dirs` may be there and is
/// ignored: strom has one log directory).
pub fn parse_json(text: &str) -> Result<Vec<Move>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("version").is_some_and(|x| x.as_i64() != Some(1)) {
        return Err("only version 1 of the reassignment JSON is known".into());
    }
    let partitions = v
        .get("partitions")
        .and_then(|p| p.as_array())
        .filter(|p| !p.is_empty())
        .ok_or("expected {\"version\":1,\"partitions\":[…]} with at least one partition")?;
    let moves = partitions
        .iter()
        .map(|p| {
            let topic = p
                .get("topic")
                .and_then(|t| t.as_str())
                .ok_or("a partition without \"topic\"")?;
            let partition = p
                .get("partition")
                .and_then(|x| x.as_i64())
                .and_then(|x| i32::try_from(x).ok())
                .ok_or("a partition without a \"partition\" number")?;
            let replicas = match p.get("replicas") {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(r) => r
                    .as_array()
                    .ok_or("\"replicas\" is not a list")?
                    .iter()
                    .map(|b| {
                        b.as_i64()
                            .and_then(|b| i32::try_from(b).ok())
                            .ok_or("a replica that is not a broker id")
                    })
                    .collect::<Result<Vec<i32>, _>>()?,
            };
            Ok((topic.to_string(), partition, replicas))
        })
        .collect::<Result<Vec<Move>, &str>>()
        .map_err(str::to_string)?;
    // Kafka's tool refuses a partition named twice (which would win?).
    let mut seen = std::collections::HashSet::new();
    if let Some((t, p, _)) = moves.iter().find(|(t, p, _)| !seen.insert((t.clone(), *p))) {
        return Err(format!("{t}-{p} appears more than once"));
    }
    Ok(moves)
}

/// NOT_CONTROLLER: the controller is changing; asked again meanwhile.
const NOT_CONTROLLER: i16 = 41;

async fn execute(client: &mut Client, moves: &[Move], cancel: bool, out: Output) -> Result<(), ClientError> {
    let mut pending: Vec<&Move> = moves.iter().collect();
    let mut results = Vec::new();
    let mut failed = 0;
    for attempt in 0.. {
        let response = client.call(0, &request(&pending, cancel)).await?;
        let retry_all = response.error_code == NOT_CONTROLLER && attempt < 30;
        if !retry_all {
            ClientError::check(response.error_code, response.error_message.as_deref())?;
        }
        let mut again = Vec::new();
        for t in &response.responses {
            for p in &t.partitions {
                let asked = pending
                    .iter()
                    .find(|(topic, partition, _)| topic == t.name.as_str() && *partition == p.partition_index);
                if p.error_code == NOT_CONTROLLER && attempt < 30 {
                    again.extend(asked);
                    continue;
                }
                let tp = format!("{}-{}", t.name.as_str(), p.partition_index);
                let outcome = ClientError::check(p.error_code, p.error_message.as_deref());
                let verb = if cancel { "cancelled" } else { "started" };
                match &outcome {
                    Ok(()) if !out.json => println!("Reassignment of {tp} {verb}"),
                    Err(e) if !out.json => eprintln!("Reassignment of {tp} failed: {e}"),
                    _ => {}
                }
                failed += usize::from(outcome.is_err());
                results.push(json!({"partition": tp, "error": outcome.err().map(|e| e.to_string())}));
            }
        }
        if retry_all {
            again = pending.clone();
        }
        if again.is_empty() {
            break;
        }
        pending = again;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    if out.json {
        out.print_json(json!({ "partitions": results }));
    }
    match failed {
        0 => Ok(()),
        n => Err(ClientError::Usage(format!(
            "{n} of {} reassignments failed",
            moves.len()
        ))),
    }
}

fn request(moves: &[&Move], cancel: bool) -> AlterPartitionReassignmentsRequest {
    let mut request = AlterPartitionReassignmentsRequest::default();
    request.timeout_ms = 30_000;
    for (topic, partition, replicas) in moves {
        let mut p = ReassignablePartition::default();
        p.partition_index = *partition;
        p.replicas = (!cancel).then(|| replicas.iter().copied().map(BrokerId).collect());
        match request.topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = ReassignableTopic::default();
                t.name = TopicName(s(topic));
                t.partitions.push(p);
                request.topics.push(t);
            }
        }
    }
    request
}

/// The moves under way: (topic, partition, replicas, adding, removing).
async fn ongoing(client: &mut Client) -> Result<Vec<(String, i32, Vec<i32>, Vec<i32>, Vec<i32>)>, ClientError> {
    let mut request = ListPartitionReassignmentsRequest::default();
    request.timeout_ms = 30_000;
    request.topics = None;
    let response = client.call(0, &request).await?;
    ClientError::check(response.error_code, response.error_message.as_deref())?;
    let ids = |b: &[BrokerId]| b.iter().map(|b| b.0).collect::<Vec<i32>>();
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect())
}

fn joined(b: &[i32]) -> String {
    b.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

async fn list(client: &mut Client, out: Output) -> Result<(), ClientError> {
    let moves = ongoing(client).await?;
    if out.json {
        let list: Vec<_> = moves
            .iter()
            .map(|(t, p, r, a, d)| json!({"topic": t, "partition": p, "replicas": r, "adding": a, "removing": d}))
            .collect();
        out.print_json(json!({ "reassignments": list }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = moves
        .iter()
        .map(|(t, p, r, a, d)| vec![t.clone(), p.to_string(), joined(r), joined(a), joined(d)])
        .collect();
    print_table(&["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"], &rows);
    Ok(())
}

/// Done: no move under way and the replicas are the target (Kafka's --verify).
async fn verify(client: &mut Client, moves: &[Move], out: Output) -> Result<(), ClientError> {
    let under_way = ongoing(client).await?;
    let topics: Vec<&str> = moves.iter().map(|(t, ..)| t.as_str()).collect();
    let m = metadata(client, Some(&topics)).await?;
    let mut results = Vec::new();
    for (topic, partition, target) in moves {
        let moving = under_way.iter().any(|(t, p, ..)| t == topic && p == partition);
        let replicas: Option<Vec<i32>> = m
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
            .and_then(|t| t.partitions.iter().find(|p| p.partition_index == *partition))
            .map(|p| p.replica_nodes.iter().map(|b| b.0).collect());
        let state = match replicas {
            None => "unknown partition",
            Some(_) if moving => "still in progress",
            Some(r) if r == *target => "complete",
            Some(_) => "not as asked (no move under way)",
        };
        if !out.json {
            println!("Reassignment of {topic}-{partition} is {state}");
        }
        results.push(json!({"topic": topic, "partition": partition, "state": state}));
    }
    if out.json {
        out.print_json(json!({ "partitions": results }));
    }
    // As Kafka's --verify: the states are the answer, the exit status 0.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_reassignment_json() {
        let text = r#"{"version":1,"partitions":[
            {"topic":"orders","partition":0,"replicas":[2,3,4],"log_dirs":["any","any","any"]},
            {"topic":"orders","partition":1,"replicas":[3,4,1]}]}"#;
        assert_eq!(
            parse_json(text).unwrap(),
            vec![
                ("orders".to_string(), 0, vec![2, 3, 4]),
                ("orders".to_string(), 1, vec![3, 4, 1])
            ]
        );
        for bad in [
            "",
            "{}",
            r#"{"version":2,"partitions":[]}"#,
            r#"{"partitions":[{"partition":0,"replicas":[1]}]}"#,
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":["x"]}]}"#,
            r#"{"partitions":[{"topic":"t","partition":99999999999,"replicas":[1]}]}"#,
            r#"{"version":"1","partitions":[{"topic":"t","partition":0,"replicas":[1]}]}"#,
            r#"{"version":1,"partitions":[]}"#,
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#,
        ] {
            assert!(parse_json(bad).is_err(), "{bad}");
        }
    }
}

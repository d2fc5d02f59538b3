//! The console's JSON API. What changes something (topics, configs, produce,
//! offsets, groups) goes through the broker's own request handlers as Kafka
//! requests, over an in-process connection ([`crate::server::connect_in_process`]):
//! the console is a Kafka client like any other — it shows up in the protocol
//! trace and the metrics, and Kafka's checks and error codes apply to it. What
//! only reads the broker's state (overview, partitions, records) reads it
//! directly.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, App, Ready};
use crate::cli::configs::Target;
use crate::cli::groups::{self, ResetTo};
use crate::client::route::Brokers;
use crate::client::{Client, ClientError};
use crate::log::browse::{self, Query as Browse, Start};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/info", get(info))
        .route("/overview", get(overview))
        .route("/topics", get(topics).post(create_topic))
        .route("/topics/{name}", get(topic).delete(delete_topic))
        .route("/topics/{name}/configs", put(alter_configs))
        .route("/topics/{name}/records", get(records).post(produce))
        .route("/topics/{name}/tail", get(super::live::tail))
        .route("/groups", get(list_groups))
        .route("/groups/{id}", get(group).delete(delete_group))
        .route("/groups/{id}/reset", post(reset_offsets))
        .route("/groups/{id}/offsets/{topic}", delete(delete_offsets))
        .route("/trace", get(super::live::trace_state).put(super::live::set_trace))
        .route("/trace/stream", get(super::live::trace_stream))
}

pub(super) type ApiResult = Result<Json<Value>, ApiError>;

pub(super) fn error(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
    ApiError(status, message.to_string())
}

/// A Kafka error from the broker: 404 for what does not exist, 400 otherwise.
fn client_error(e: ClientError) -> ApiError {
    let status = match &e {
        ClientError::Kafka { code: 3 | 69 | 100, .. } => StatusCode::NOT_FOUND,
        ClientError::Kafka { .. } | ClientError::Usage(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    error(status, e)
}

/// The broker, and an in-process Kafka client acting for `peer`.
fn connect(app: &App, peer: SocketAddr) -> Result<(&Ready, Client), ApiError> {
    let ready = app.ready()?;
    let client = crate::server::connect_in_process(
        &ready.broker,
        &ready.limits,
        peer,
        crate::security::Principal::internal("console"),
        "strom-console",
    );
    Ok((ready, client))
}

async fn info(State(app): State<App>) -> ApiResult {
    let ready = app.ready()?;
    Ok(Json(json!({
        "readOnly": app.0.read_only,
        "version": env!("CARGO_PKG_VERSION"),
        "nodeId": ready.broker.node_id(),
        "clusterId": ready.broker.metadata.cluster_id(),
    })))
}

async fn overview(State(app): State<App>) -> ApiResult {
    let ready = app.ready()?;
    let b = &ready.broker;
    let config = &b.config;
    let listeners: Vec<Value> = b
        .metadata
        .listeners()
        .iter()
        .map(|l| {
            let protocol = config
                .listener_security_protocols
                .get(&l.name)
                .map_or("PLAINTEXT", |p| p.name());
            json!({"name": l.name, "securityProtocol": protocol, "bound": l.bound.to_string(),
                   "advertised": format!("{}:{}", l.advertised_host, l.advertised_port)})
        })
        .collect();
    let apis: Vec<Value> = crate::handlers::APIS
        .iter()
        .map(|s| json!({"name": format!("{:?}", s.key), "key": s.key as i16, "minVersion": s.min, "maxVersion": s.max}))
        .collect();
    let clients: Vec<Value> = b
        .metrics
        .clients()
        .into_iter()
        .map(|(name, version, n)| json!({"software": name, "version": version, "connections": n}))
        .collect();
    let topics = b.logs.topics();
    let started = b.metrics.started();
    let uptime = started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    let started_ms = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(Json(json!({
        "nodeId": b.node_id(),
        "clusterId": b.metadata.cluster_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "startedMs": started_ms,
        "uptimeSeconds": uptime,
        "listeners": listeners,
        "apis": apis,
        "connections": b.metrics.totals.connections.load(std::sync::atomic::Ordering::Relaxed),
        "clients": clients,
        "topics": topics.iter().filter(|t| !crate::broker::is_internal_topic(&t.name)).count(),
        "partitions": topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
        "groups": b.groups.list().len(),
        "samples": ready.samples.recent(),
        "readOnly": app.0.read_only,
    })))
}

async fn topics(State(app): State<App>) -> ApiResult {
    let ready = app.ready()?;
    let b = ready.broker.clone();
    let list = tokio::task::spawn_blocking(move || {
        let mut topics = b.logs.topics();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
            .iter()
            .map(|t| {
                let size: u64 = t.partitions.iter().map(|p| p.size_bytes()).sum();
                let messages: i64 = t
                    .partitions
                    .iter()
                    .map(|p| p.high_watermark() - p.log_start_offset())
                    .sum();
                (t.name.clone(), t.id.to_string(), t.partitions.len(), size, messages)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let out: Vec<Value> = list
        .into_iter()
        .map(|(name, id, partitions, size, messages)| {
            json!({"name": name, "topicId": id, "internal": crate::broker::is_internal_topic(&name), "partitions": partitions,
                   "sizeBytes": size, "messages": messages, "messagesPerSec": ready.samples.topic_rate(&name)})
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewTopic {
    name: String,
    #[serde(default = "one")]
    partitions: i32,
    #[serde(default = "minus_one")]
    replication_factor: i16,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

fn one() -> i32 {
    1
}

fn minus_one() -> i16 {
    -1
}

async fn create_topic(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(t): Json<NewTopic>,
) -> ApiResult {
    let (_, mut client) = connect(&app, peer)?;
    let configs: Vec<(String, String)> = t.configs.into_iter().collect();
    let created = crate::cli::topics::create_topic(&mut client, &t.name, t.partitions, t.replication_factor, &configs)
        .await
        .map_err(client_error)?;
    Ok(Json(json!({"name": t.name, "partitions": created})))
}

async fn delete_topic(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> ApiResult {
    let (_, mut client) = connect(&app, peer)?;
    crate::cli::topics::delete_topic(&mut client, &name)
        .await
        .map_err(client_error)?;
    Ok(Json(json!({"name": name, "deleted": true})))
}

pub(super) fn unknown_topic(name: &str) -> ApiError {
    error(StatusCode::NOT_FOUND, format!("topic {name} does not exist"))
}

async fn topic(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> ApiResult {
    let (ready, mut client) = connect(&app, peer)?;
    let t = ready.broker.logs.topic(&name).ok_or_else(|| unknown_topic(&name))?;
    let leader = ready.broker.node_id();
    let (t2, partitions) = (
        t.clone(),
        tokio::task::spawn_blocking(move || {
            t.partitions
                .iter()
                .map(|p| {
                    json!({"partition": p.index, "leader": leader, "logStartOffset": p.log_start_offset(),
                       "highWatermark": p.high_watermark(), "lastStableOffset": p.last_stable_offset(),
                       "logEndOffset": p.log_end_offset(), "sizeBytes": p.size_bytes(), "segments": p.segment_count()})
                })
                .collect::<Vec<_>>()
        }),
    );
    let partitions = partitions
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let configs = crate::cli::configs::entries(&mut client, &Target::Topic(name.clone()), true)
        .await
        .map_err(client_error)?;
    Ok(Json(json!({
        "name": name,
        "topicId": t2.id.to_string(),
        "internal": crate::broker::is_internal_topic(&name),
        "partitions": partitions,
        "configs": configs,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

async fn alter_configs(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    Json(change): Json<ConfigChange>,
) -> ApiResult {
    if change.set.is_empty() && change.delete.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "nothing to change: give set or delete"));
    }
    let (_, mut client) = connect(&app, peer)?;
    let set: Vec<(String, String)> = change.set.into_iter().collect();
    crate::cli::configs::incremental_alter(&mut client, 2, &name, &set, &change.delete)
        .await
        .map_err(client_error)?;
    Ok(Json(json!({"name": name, "altered": true})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordsQuery {
    partition: Option<i32>,
    /// earliest | newest | offset | timestamp
    from: Option<String>,
    offset: Option<i64>,
    timestamp: Option<i64>,
    /// PARTITION:OFFSET,… (a previous page's next positions)
    positions: Option<String>,
    limit: Option<usize>,
    q: Option<String>,
    scan_limit: Option<u64>,
}

fn start_of(q: &RecordsQuery) -> Result<Start, ApiError> {
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, m);
    Ok(match q.from.as_deref().unwrap_or("newest") {
        "earliest" => Start::Earliest,
        "newest" | "latest" => Start::Newest,
        "offset" => Start::Offset(q.offset.ok_or_else(|| bad("from=offset needs offset"))?),
        "timestamp" => Start::Timestamp(q.timestamp.ok_or_else(|| bad("from=timestamp needs timestamp"))?),
        other => return Err(bad(&format!("from={other}: earliest, newest, offset or timestamp"))),
    })
}

async fn records(State(app): State<App>, Path(name): Path<String>, Query(q): Query<RecordsQuery>) -> ApiResult {
    let ready = app.ready()?;
    let topic = ready.broker.logs.topic(&name).ok_or_else(|| unknown_topic(&name))?;
    let query = Browse {
        partition: q.partition,
        start: start_of(&q)?,
        positions: browse::parse_positions(q.positions.as_deref().unwrap_or(""))
            .map_err(|e| error(StatusCode::BAD_REQUEST, e))?,
        limit: q.limit.unwrap_or(50),
        search: q.q.as_deref().map(str::to_lowercase).filter(|s| !s.is_empty()),
        scan_limit: q.scan_limit.unwrap_or(10_000),
    };
    let _turn = app.heavy_work().await;
    let stopping = ready.broker.shutting_down.clone();
    let page = tokio::task::spawn_blocking(move || browse::browse(&topic, &query, &|| *stopping.borrow()))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Ok(Json(serde_json::to_value(page).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRecord {
    partition: Option<i32>,
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    headers: Vec<Header>,
}

/// Produce one record (acks=all): to its partition, else by the key's hash as
/// Kafka's default partitioner, else to a partition in turn.
async fn produce(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    Json(r): Json<NewRecord>,
) -> ApiResult {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    let (ready, mut client) = connect(&app, peer)?;
    let topic = ready.broker.logs.topic(&name).ok_or_else(|| unknown_topic(&name))?;
    let count = topic.partitions.len() as i32;
    let partition = match (r.partition, &r.key) {
        (Some(p), _) => p,
        (None, Some(k)) => crate::cli::partitioner::partition_for(k.as_bytes(), count),
        (None, None) => {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            (NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % count.max(1) as u32) as i32
        }
    };
    let record = crate::record::records::NewRecord {
        key: r.key.map(bytes::Bytes::from),
        value: r.value.map(bytes::Bytes::from),
        timestamp: crate::util::clock::now_ms(),
        headers: r
            .headers
            .into_iter()
            .map(|h| (h.key, h.value.map(bytes::Bytes::from)))
            .collect(),
    };
    let batch = crate::record::records::build_batch(&[record], None);
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(batch.into());
    let mut t = TopicProduceData::default();
    t.name = TopicName(crate::cli::s(&name));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![t];
    let response = client.call(9, &req).await.map_err(client_error)?;
    let answer = response
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| error(StatusCode::BAD_GATEWAY, "no partition in the answer"))?;
    ClientError::check(answer.error_code, answer.error_message.as_deref()).map_err(client_error)?;
    Ok(Json(
        json!({"topic": name, "partition": partition, "offset": answer.base_offset}),
    ))
}

async fn list_groups(State(app): State<App>) -> ApiResult {
    let ready = app.ready()?;
    let b = &ready.broker;
    let ends: BTreeMap<(String, i32), i64> = b
        .logs
        .topics()
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.clone(), p.index), p.high_watermark()))
        })
        .collect();
    let shards = b.groups.shards();
    let out: Vec<Value> = shards
        .iter()
        .flat_map(|shard| shard.list().into_iter().map(move |g| (shard, g)))
        .map(|(shard, (id, protocol_type, state))| {
            let members = shard.describe(&id).members.len();
            let lag: i64 = shard
                .fetch_offsets(&id, None, false)
                .into_iter()
                .filter_map(|(tp, c)| Some((ends.get(&tp)? - c.ok()??.offset).max(0)))
                .sum();
            json!({"group": id, "state": state, "protocolType": protocol_type, "members": members, "totalLag": lag})
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

async fn group(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> ApiResult {
    let (_, client) = connect(&app, peer)?;
    let view = groups::view(&mut Brokers::single(client), &id)
        .await
        .map_err(client_error)?;
    // DescribeGroups answers Dead for a group that does not exist.
    if view.state == "Dead" && view.partitions.is_empty() {
        return Err(error(StatusCode::NOT_FOUND, format!("group {id} does not exist")));
    }
    Ok(Json(serde_json::to_value(view).unwrap_or(Value::Null)))
}

async fn delete_group(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> ApiResult {
    let (_, mut client) = connect(&app, peer)?;
    groups::delete_group(&mut client, &id).await.map_err(client_error)?;
    Ok(Json(json!({"group": id, "deleted": true})))
}

async fn delete_offsets(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, topic)): Path<(String, String)>,
) -> ApiResult {
    let (_, client) = connect(&app, peer)?;
    groups::delete_offsets(&mut Brokers::single(client), &id, &topic)
        .await
        .map_err(client_error)?;
    Ok(Json(json!({"group": id, "topic": topic, "deleted": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    topic: String,
    /// earliest | latest | timestamp | offset
    to: String,
    value: Option<i64>,
    #[serde(default)]
    execute: bool,
}

/// Where a group's offsets on a topic would go (`execute: false`, the dry run)
/// or go: only while the group is empty.
async fn reset_offsets(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Json(r): Json<Reset>,
) -> ApiResult {
    let need = |what: &str| error(StatusCode::BAD_REQUEST, format!("to={what} needs a value"));
    let to = match r.to.as_str() {
        "earliest" => ResetTo::Earliest,
        "latest" => ResetTo::Latest,
        "timestamp" => ResetTo::Time(r.value.ok_or_else(|| need("timestamp"))?),
        "offset" => ResetTo::Offset(r.value.ok_or_else(|| need("offset"))?),
        other => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("to={other}: earliest, latest, timestamp or offset"),
            ))
        }
    };
    let (_, client) = connect(&app, peer)?;
    let moves = groups::reset(&mut Brokers::single(client), &id, &r.topic, to, r.execute)
        .await
        .map_err(client_error)?;
    Ok(Json(json!({"group": id, "executed": r.execute, "offsets": moves})))
}

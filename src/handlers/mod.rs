//! Request handlers, one file per Kafka API, and THE table of what this broker
//! implements. The table below declares each handler module, the versions
//! advertised in ApiVersions and the versions served, and routes requests: adding
//! an API is one line there plus its file.
//!
//! A handler is `async fn handle(&Arc<Broker>, &RequestContext, Request) ->
//! Response`: it decodes nothing and encodes nothing. What it returns becomes the
//! response through [`Respond`]: a message is encoded as is, a [`Spliced`] one
//! carries file ranges sent by `sendfile`, and an [`Unanswered`] one may send
//! nothing at all (Produce with acks=0).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::cluster::metadata_cache::ListenerInfo;
pub use crate::protocol::codec::CodecError;
use crate::protocol::codec::{self, decode};
use crate::protocol::header::Request;
use crate::protocol::legacy;
use crate::protocol::response::{ResponseFrame, Spliced, Splices};
use crate::trace::describe::Message;

mod acls;
mod forward;
mod leader_hints;
mod observe;

/// An implemented API and the versions it is advertised and served with.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    /// Lowest version served (and advertised in ApiVersions).
    pub min: i16,
    pub max: i16,
}

/// Decode a request of one API, run its handler up to its first wait, frame what
/// it returns.
type Serve = fn(&Arc<Broker>, &RequestContext, Bytes) -> Result<Reply, CodecError>;

/// The table: `Key min..=max => module;` declares the module, its [`ApiSpec`] in
/// [`APIS`] and its route in [`SERVE`], in the same order. Versions below what the
/// codec knows are rewritten to the oldest it does ([`legacy`]).
macro_rules! apis {
    ($( $key:ident $min:literal ..= $max:literal => $module:ident; )*) => {
        $( mod $module; )*

        /// Every API strom implements, with the versions it serves.
        pub const APIS: &[ApiSpec] = &[$(
            ApiSpec {
                key: ApiKey::$key,
                min: $min,
                max: $max,
            },
        )*];

        /// Each API's route, in the order of [`APIS`].
        const SERVE: &[Serve] = &[$(
            |broker, ctx, body| {
                let (version, body) = legacy::upgrade_request(ApiKey::$key, ctx.api_version, body)
                    .ok_or_else(|| CodecError::malformed(ApiKey::$key, ctx.api_version))?;
                let size = body.len();
                let request = decode(ApiKey::$key, version, body)?;
                let (broker, ctx) = (broker.clone(), RequestContext { api_version: version, ..ctx.clone() });
                let seen = observe::Observation::start(&broker, &ctx, (ApiKey::$key, stringify!($key)), size, &request);
                run(async move {
                    let response = $module::handle(&broker, &ctx, request).await;
                    seen.finish(&broker, &ctx, response)
                })
            },
        )*];
    };
}

apis! {
    // Kafka 3.9's lowest versions throughout (v0), for the clients Kafka 4 left
    // behind; librdkafka before 2.11.1 also needs Produce v0 advertised to compress.
    Produce 0..=10 => produce;
    Fetch 0..=17 => fetch;
    ListOffsets 0..=9 => list_offsets;
    // v2–4 as Kafka 4; clients validate positions with it after a leader change.
    OffsetForLeaderEpoch 2..=4 => offset_for_leader_epoch;
    Metadata 0..=12 => metadata;
    ApiVersions 0..=4 => api_versions;
    CreateTopics 0..=7 => create_topics;
    DeleteTopics 0..=6 => delete_topics;
    InitProducerId 0..=5 => init_producer_id;
    AddPartitionsToTxn 0..=3 => add_partitions_to_txn;
    AddOffsetsToTxn 0..=4 => add_offsets_to_txn;
    EndTxn 0..=4 => end_txn;
    TxnOffsetCommit 0..=4 => txn_offset_commit;
    DescribeProducers 0..=0 => describe_producers;
    DescribeTransactions 0..=0 => describe_transactions;
    ListTransactions 0..=1 => list_transactions;
    FindCoordinator 0..=4 => find_coordinator;
    JoinGroup 0..=9 => join_group;
    SyncGroup 0..=5 => sync_group;
    Heartbeat 0..=4 => heartbeat;
    LeaveGroup 0..=5 => leave_group;
    OffsetCommit 0..=9 => offset_commit;
    OffsetFetch 0..=9 => offset_fetch;
    DescribeGroups 0..=6 => describe_groups;
    ListGroups 0..=5 => list_groups;
    DeleteGroups 0..=2 => delete_groups;
    OffsetDelete 0..=0 => offset_delete;
    // KIP-848: librdkafka's group.protocol=consumer needs v1 (regex subscriptions).
    ConsumerGroupHeartbeat 0..=1 => consumer_group_heartbeat;
    ConsumerGroupDescribe 0..=1 => consumer_group_describe;
    DescribeConfigs 0..=4 => describe_configs;
    AlterConfigs 0..=2 => alter_configs;
    IncrementalAlterConfigs 0..=1 => incremental_alter_configs;
    CreatePartitions 0..=3 => create_partitions;
    DeleteRecords 0..=2 => delete_records;
    DescribeCluster 0..=1 => describe_cluster;
    // Between brokers of a cluster: a leader asks the controller to change an ISR.
    AlterPartition 2..=3 => alter_partition;
    ElectLeaders 0..=2 => elect_leaders;
    // kafka-reassign-partitions (KIP-455); v1 (KIP-860) may refuse a new replication factor.
    AlterPartitionReassignments 0..=1 => alter_partition_reassignments;
    ListPartitionReassignments 0..=0 => list_partition_reassignments;
    // Between brokers of a cluster: a transaction coordinator's markers.
    WriteTxnMarkers 1..=1 => write_txn_markers;
    DescribeLogDirs 0..=4 => describe_log_dirs;
    // v0: the login's tokens follow as bare frames (server::sasl); Kafka 4
    // still serves it, and older librdkafka (kcat 1.7: 2.0.2) needs it advertised.
    SaslHandshake 0..=1 => sasl_handshake;
    SaslAuthenticate 0..=2 => sasl_authenticate;
    // v1–3 as Kafka 4 (v0, literal patterns only, went with Kafka 3.9).
    DescribeAcls 1..=3 => describe_acls;
    CreateAcls 1..=3 => create_acls;
    DeleteAcls 1..=3 => delete_acls;
    DescribeClientQuotas 0..=1 => describe_client_quotas;
    AlterClientQuotas 0..=1 => alter_client_quotas;
    DescribeUserScramCredentials 0..=0 => describe_user_scram_credentials;
    AlterUserScramCredentials 0..=0 => alter_user_scram_credentials;
}

pub fn spec(api_key: i16) -> Option<&'static ApiSpec> {
    APIS.iter().find(|s| s.key as i16 == api_key)
}

/// What a handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub peer: std::net::SocketAddr,
    /// The version the request is decoded and answered at: the client's, or for
    /// versions the codec no longer knows, the oldest it does ([`legacy`]).
    pub api_version: i16,
    /// The version the client sent, for what the rewrite cannot express (message
    /// formats v0/v1 in Produce v0–2 and Fetch v0–3).
    pub wire_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub listener: Arc<ListenerInfo>,
    /// Who sent the request (User:ANONYMOUS without authentication).
    pub principal: Arc<crate::security::Principal>,
    /// The connection's mute for quota violations (KIP-219).
    pub throttle: Arc<Throttle>,
}

/// Until when (ms since the epoch) a connection reads nothing more: set by
/// handlers whose client went over a quota, honoured before the connection's
/// next read.
#[derive(Debug, Default)]
pub struct Throttle {
    until_ms: std::sync::atomic::AtomicI64,
}

impl Throttle {
    pub fn mute_for(&self, ms: u64, now_ms: i64) {
        let until = now_ms.saturating_add(ms.min(i64::MAX as u64) as i64);
        self.until_ms.fetch_max(until, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn until_ms(&self) -> i64 {
        self.until_ms.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Count `value` of `kind` against the client's quota: the throttle time its
/// response carries, with the connection muted for as long.
pub fn charge(broker: &Broker, ctx: &RequestContext, kind: crate::quota::Kind, value: f64) -> i32 {
    let now = crate::util::clock::now_ms();
    let client = ctx.client_id.as_deref().unwrap_or("");
    let ms = broker.quotas.record(kind, &ctx.principal.name, client, value, now);
    if ms > 0 {
        ctx.throttle.mute_for(ms, now);
    }
    ms.min(i32::MAX as u64) as i32
}

/// What a handler's result becomes on the wire.
pub trait Respond: Send + 'static {
    /// The frame to send, or `None` for no response at all.
    fn respond(self, api: ApiKey, ctx: &RequestContext) -> Result<Option<ResponseFrame>, CodecError>;

    /// The response message, for metrics and the trace (None: no response).
    fn message(&self) -> Option<&dyn Message>;

    /// The file ranges the message's records stand in for.
    fn splices(&self) -> Option<&Splices> {
        None
    }
}

impl<T: Encodable + Message> Respond for T {
    fn respond(self, api: ApiKey, ctx: &RequestContext) -> Result<Option<ResponseFrame>, CodecError> {
        frame(api, ctx, &self, Splices::default()).map(Some)
    }

    fn message(&self) -> Option<&dyn Message> {
        Some(self)
    }
}

/// The response frame in the client's version: encoded as is, or for an old
/// version encoded at the bridge version and rewritten down.
fn frame<T: Encodable>(
    api: ApiKey,
    ctx: &RequestContext,
    message: &T,
    splices: Splices,
) -> Result<ResponseFrame, CodecError> {
    if ctx.wire_version == ctx.api_version {
        return codec::encode(api, ctx.api_version, ctx.correlation_id, message, splices);
    }
    codec::encode_downgraded(
        api,
        ctx.api_version,
        ctx.wire_version,
        ctx.correlation_id,
        message,
        splices,
    )
}

impl<T: Encodable + Message> Respond for Spliced<T> {
    fn respond(self, api: ApiKey, ctx: &RequestContext) -> Result<Option<ResponseFrame>, CodecError> {
        frame(api, ctx, &self.message, self.splices).map(Some)
    }

    fn message(&self) -> Option<&dyn Message> {
        Some(&self.message)
    }

    fn splices(&self) -> Option<&Splices> {
        Some(&self.splices)
    }
}

/// A response the client may not want: `None` sends nothing (acks=0 produce).
pub struct Unanswered<T>(pub Option<T>);

impl<T: Encodable + Message> Respond for Unanswered<T> {
    fn respond(self, api: ApiKey, ctx: &RequestContext) -> Result<Option<ResponseFrame>, CodecError> {
        match self.0 {
            Some(message) => message.respond(api, ctx),
            None => Ok(None),
        }
    }

    fn message(&self) -> Option<&dyn Message> {
        self.0.as_ref().map(|m| m as &dyn Message)
    }
}

/// What the connection sends back for one request, in request order.
pub enum Reply {
    /// Nothing at all (acks=0 produce).
    Nothing,
    Now(ResponseFrame),
    /// A response still being produced (a long poll, a rebalance, an fsync). The
    /// connection goes on reading and handling later requests meanwhile, and writes
    /// this one in its turn.
    Later(JoinHandle<Result<Option<ResponseFrame>, CodecError>>),
}

/// Run a handler up to its first wait, right here, in request order: everything it
/// does before waiting (appending, joining a group, committing) happens before the
/// next request of the connection is looked at. If it then has to wait, it goes on
/// in its own task and the connection moves on.
fn run<F>(handler: F) -> Result<Reply, CodecError>
where
    F: Future<Output = Result<Option<ResponseFrame>, CodecError>> + Send + 'static,
{
    let mut handler = Box::pin(handler);
    // Polling with a no-op waker is sound: tokio's futures register the waker of
    // their latest poll, which will be the task's once spawned.
    match handler.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(Some(bytes))) => Ok(Reply::Now(bytes)),
        Poll::Ready(Ok(None)) => Ok(Reply::Nothing),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(Reply::Later(tokio::spawn(handler))),
    }
}

/// Decode and handle one request.
pub async fn dispatch(broker: &Arc<Broker>, ctx: &RequestContext, request: Request) -> Result<Reply, CodecError> {
    let served = APIS
        .iter()
        .position(|s| s.key as i16 == request.api_key && (s.min..=s.max).contains(&request.api_version));
    if let Some(i) = served {
        return SERVE[i](broker, ctx, request.body);
    }
    tracing::info!(
        api_key = request.api_key,
        api_version = request.api_version,
        client_id = ?ctx.client_id,
        "unsupported API or version"
    );
    if request.api_key == ApiKey::ApiVersions as i16 {
        // KIP-511: answer in the v0 layout with the full table.
        let v0 = RequestContext {
            api_version: 0,
            wire_version: 0,
            ..ctx.clone()
        };
        let response = api_versions::table(kafka_protocol::error::ResponseError::UnsupportedVersion.code());
        return Ok(response
            .respond(ApiKey::ApiVersions, &v0)?
            .map_or(Reply::Nothing, Reply::Now));
    }
    Ok(Reply::Now(codec::unsupported(ctx.correlation_id)))
}

/// Wait for `fut`, unless the broker shuts down first: then NOT_COORDINATOR, which
/// sends the client looking for a coordinator again (after the restart).
pub async fn unless_shutting_down<T>(
    broker: &Broker,
    fut: impl Future<Output = crate::error::Result<T>>,
) -> crate::error::Result<T> {
    let mut shutdown = broker.shutting_down.clone();
    tokio::select! {
        r = fut => r,
        _ = shutdown.wait_for(|stop| *stop) => Err(crate::error::Error::NotCoordinator),
    }
}

/// The error code and message of a failed partition, group or resource, as
/// every response that carries both sets them.
pub fn error_message(e: &crate::error::Error) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    (e.wire_code(), Some(str_bytes(&e.to_string())))
}

/// `e`'s code for a request of `version`, where PRODUCER_FENCED exists from
/// version `since` on and INVALID_PRODUCER_EPOCH stands for it before.
pub fn fenced_for(version: i16, since: i16, e: &crate::error::Error) -> i16 {
    match e {
        crate::error::Error::ProducerFenced(_) if version < since => {
            kafka_protocol::error::ResponseError::InvalidProducerEpoch.code()
        }
        e => e.wire_code(),
    }
}

/// The error code of each partition of a per-partition result list (the first
/// result of a partition named twice), to answer in request order in linear
/// time: one request may name tens of thousands of partitions.
pub fn partition_codes(
    results: &[((String, i32), crate::error::Result<()>)],
    code: impl Fn(&crate::error::Error) -> i16,
) -> std::collections::HashMap<(&str, i32), i16> {
    let mut codes = std::collections::HashMap::with_capacity(results.len());
    for ((topic, partition), r) in results {
        codes
            .entry((topic.as_str(), *partition))
            .or_insert_with(|| r.as_ref().err().map_or(0, &code));
    }
    codes
}

/// The cluster resource's name in ACLs.
pub const CLUSTER: &str = "kafka-cluster";

/// Whether the request's principal, from its address, may do `operation` on
/// the resource (always, when no authorizer is configured).
pub fn allowed(
    broker: &Broker,
    ctx: &RequestContext,
    operation: crate::security::acl::Operation,
    resource_type: crate::security::acl::ResourceType,
    name: &str,
) -> bool {
    broker
        .authorizer
        .authorize(&ctx.principal, ctx.peer.ip(), operation, resource_type, name)
}

/// DESCRIBE_CONFIGS or ALTER_CONFIGS (`operation`) on a config resource: a
/// topic (type 2), or the cluster for broker and logger resources (4, 8).
pub fn may_configure(
    broker: &Broker,
    ctx: &RequestContext,
    operation: crate::security::acl::Operation,
    resource_type: i8,
    name: &str,
) -> crate::error::Result<()> {
    use crate::security::acl::ResourceType;
    match resource_type {
        2 if !allowed(broker, ctx, operation, ResourceType::Topic, name) => {
            Err(crate::error::Error::TopicAuthorizationFailed(name.to_string()))
        }
        4 | 8 if !allowed(broker, ctx, operation, ResourceType::Cluster, CLUSTER) => {
            Err(crate::error::Error::ClusterAuthorizationFailed)
        }
        _ => Ok(()),
    }
}

/// The topics of `names` the principal may READ (a request's partitions of the
/// others are refused alone, TOPIC_AUTHORIZATION_FAILED).
pub fn readable_topics<'a>(
    broker: &Broker,
    ctx: &RequestContext,
    names: impl Iterator<Item = &'a str>,
) -> std::collections::HashSet<String> {
    use crate::security::acl::{Operation, ResourceType};
    names
        .filter(|t| allowed(broker, ctx, Operation::Read, ResourceType::Topic, t))
        .map(String::from)
        .collect()
}

/// The outcome of file work done on the blocking pool, its failure as text.
pub fn blocking_outcome<T>(done: Result<std::io::Result<T>, tokio::task::JoinError>) -> Result<T, String> {
    match done {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Change shared state (ACLs, credentials, quotas): on one broker `local`
/// saves it in this broker's file, off the async workers; in a cluster
/// `in_cluster` makes etcd's new document from its current one
/// ([`Broker::change_shared`]). A failure: its error code and message
/// (KAFKA_STORAGE_ERROR when a file could not be written).
pub async fn change_shared<R: Send + 'static>(
    broker: &Arc<Broker>,
    key: &str,
    local: impl FnOnce(&Broker) -> std::io::Result<R> + Send + 'static,
    mut in_cluster: impl FnMut(Option<&[u8]>) -> Result<(Option<Vec<u8>>, R), String>,
) -> Result<R, (i16, String)> {
    if broker.shares_state() {
        let change = |document: Option<&[u8]>| {
            in_cluster(document).map_err(|e| {
                crate::error::Error::MetadataStore(format!(
                    "the cluster's {key} in etcd is not sound ({e}); fix it, or delete the key for the brokers to write back what they have"
                ))
            })
        };
        broker
            .change_shared(key, change)
            .await
            .map_err(|e| (e.wire_code(), e.to_string()))
    } else {
        let b = broker.clone();
        let done = tokio::task::spawn_blocking(move || local(&b)).await;
        blocking_outcome(done).map_err(|m| (kafka_protocol::error::ResponseError::KafkaStorageError.code(), m))
    }
}

/// A response string from a Rust one.
pub fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_within_what_the_codec_can_encode() {
        for s in APIS {
            let codec = s.key.valid_versions();
            let lowest = legacy::bridge(s.key).map_or(codec.min, |bridge| bridge.min(s.min));
            assert!(s.min >= lowest && s.max <= codec.max, "{:?}", s.key);
        }
    }

    #[test]
    fn every_api_has_its_route() {
        assert_eq!(APIS.len(), SERVE.len());
        let mut keys: Vec<i16> = APIS.iter().map(|s| s.key as i16).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), APIS.len(), "an API listed twice");
    }

    #[test]
    fn kafka_3_9s_lowest_versions_are_served() {
        for key in [
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::OffsetCommit,
            ApiKey::DescribeConfigs,
        ] {
            assert_eq!(spec(key as i16).unwrap().min, 0, "{key:?}");
        }
        assert!(spec(9999).is_none());
    }
}

//! A raw Kafka protocol client for tests that need exact control of the bytes.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use strom::record::records::{build_batch, NewRecord, ProducerIds};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Wire {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Wire {
    pub async fn connect(addr: SocketAddr) -> Wire {
        Wire::over(TcpStream::connect(addr).await.unwrap())
    }

    pub fn over(stream: TcpStream) -> Wire {
        Wire {
            stream,
            next_correlation: 1,
        }
    }

    pub async fn send_frame(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        out.put_i32(payload.len() as i32);
        out.put_slice(payload);
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next response frame, or None when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(body.into())
    }

    pub fn header(&mut self, key: ApiKey, version: i16) -> (RequestHeader, i32) {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let mut h = RequestHeader::default();
        h.request_api_key = key as i16;
        h.request_api_version = version;
        h.correlation_id = correlation;
        h.client_id = Some(StrBytes::from_static_str("strom-wire-test"));
        (h, correlation)
    }

    /// Encode a request of `version`; returns its correlation id.
    pub async fn send<R: Request>(&mut self, version: i16, request: &R) -> i32 {
        let key = ApiKey::try_from(R::KEY).unwrap();
        let (h, correlation) = self.header(key, version);
        let mut buf = BytesMut::new();
        h.encode(&mut buf, key.request_header_version(version)).unwrap();
        request.encode(&mut buf, version).unwrap();
        self.send_frame(&buf).await;
        correlation
    }

    pub async fn receive<R: Request>(&mut self, version: i16, correlation: i32) -> R::Response {
        let key = ApiKey::try_from(R::KEY).unwrap();
        let mut frame = self.read_frame().await.expect("a response");
        let h = ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        assert_eq!(h.correlation_id, correlation);
        let response = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "{key:?} v{version}: trailing bytes");
        response
    }

    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        let correlation = self.send(version, request).await;
        self.receive::<R>(version, correlation).await
    }
}

/// A record batch as a client would build it.
pub fn batch(count: i32, producer_id: i64, first_sequence: i32, timestamp: i64) -> Bytes {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            timestamp: timestamp + i as i64,
            headers: Vec::new(),
        })
        .collect();
    let producer = (producer_id >= 0).then_some(ProducerIds {
        id: producer_id,
        epoch: 0,
        first_sequence,
    });
    Bytes::from(build_batch(&records, producer))
}

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub fn metadata_request(topics: &[&str]) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = Some(
        topics
            .iter()
            .map(|t| {
                let mut mt = MetadataRequestTopic::default();
                mt.name = Some(name(t));
                mt
            })
            .collect(),
    );
    r
}

pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = name(topic);
    td.partition_data = vec![pd];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 5000;
    r.topic_data = vec![td];
    r
}

pub fn fetch_request(topic: &str, id: uuid::Uuid, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let mut fp = FetchPartition::default();
    fp.partition = 0;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    let mut ft = FetchTopic::default();
    ft.topic = name(topic);
    ft.topic_id = id;
    ft.partitions = vec![fp];
    let mut r = FetchRequest::default();
    r.max_wait_ms = max_wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 50 << 20;
    r.topics = vec![ft];
    r
}

/// What an idempotent (not transactional) producer sends.
pub fn idempotent_init() -> InitProducerIdRequest {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = None;
    r
}

pub async fn create(wire: &mut Wire, topic: &str, partitions: i32) -> uuid::Uuid {
    let m = wire.call(12, &metadata_request(&[topic])).await;
    assert_eq!(m.topics[0].error_code, 0);
    assert_eq!(m.topics[0].partitions.len(), partitions as usize);
    m.topics[0].topic_id
}

/// Produce one batch to one partition: (error code, base offset).
pub async fn produce(wire: &mut Wire, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let r = wire.call(9, &produce_request(topic, partition, records, -1)).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// ListOffsets latest (−1) or earliest (−2) of one partition.
pub async fn list_offset(wire: &mut Wire, topic: &str, partition: i32, timestamp: i64) -> (i16, i64) {
    list_offset_isolated(wire, topic, partition, timestamp, 0).await
}

/// The last stable offset of one partition (ListOffsets latest, read_committed).
pub async fn last_stable_offset(wire: &mut Wire, topic: &str, partition: i32) -> i64 {
    let (code, offset) = list_offset_isolated(wire, topic, partition, -1, 1).await;
    assert_eq!(code, 0, "ListOffsets error");
    offset
}

async fn list_offset_isolated(
    wire: &mut Wire,
    topic: &str,
    partition: i32,
    timestamp: i64,
    isolation: i8,
) -> (i16, i64) {
    let mut lp = list_offsets_request::ListOffsetsPartition::default();
    lp.partition_index = partition;
    lp.timestamp = timestamp;
    let mut lt = list_offsets_request::ListOffsetsTopic::default();
    lt.name = name(topic);
    lt.partitions = vec![lp];
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.isolation_level = isolation;
    r.topics = vec![lt];
    let resp = wire.call(7, &r).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// CreateTopics for one topic with `configs`; returns its id (the error code must be 0).
pub async fn create_topic(wire: &mut Wire, topic: &str, partitions: i32, configs: &[(&str, &str)]) -> uuid::Uuid {
    create_replicated_topic(wire, topic, partitions, 1, configs).await
}

/// [`create_topic`] with `replicas` replicas of each partition.
pub async fn create_replicated_topic(
    wire: &mut Wire,
    topic: &str,
    partitions: i32,
    replicas: i16,
    configs: &[(&str, &str)],
) -> uuid::Uuid {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = replicas;
    for (k, v) in configs {
        let mut c = create_topics_request::CreatableTopicConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.value = Some(StrBytes::from_string(v.to_string()));
        t.configs.push(c);
    }
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 30_000;
    let created = wire.call(5, &r).await;
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0].error_message);
    created.topics[0].topic_id
}

/// IncrementalAlterConfigs (v1) on one resource (2 topic, 4 broker) with
/// (name, operation, value) triples (0 set, 1 delete, 2 append, 3 subtract);
/// returns the resource's error code and message.
pub async fn incremental_alter(
    wire: &mut Wire,
    resource_type: i8,
    resource: &str,
    configs: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut r = AlterConfigsResource::default();
    r.resource_type = resource_type;
    r.resource_name = StrBytes::from_string(resource.to_string());
    for (name, op, value) in configs {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(name.to_string());
        c.config_operation = *op;
        c.value = value.map(|v| StrBytes::from_string(v.to_string()));
        r.configs.push(c);
    }
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![r];
    let resp = wire.call(1, &req).await;
    let r = &resp.responses[0];
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}

/// (value, source, read_only) of each config of a resource (2 topic, 4 broker).
pub async fn describe_configs(
    w: &mut Wire,
    resource_type: i8,
    name: &str,
) -> std::collections::HashMap<String, (String, i8, bool)> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::DescribeConfigsRequest;
    use kafka_protocol::protocol::StrBytes;
    let mut r = DescribeConfigsResource::default();
    r.resource_type = resource_type;
    r.resource_name = StrBytes::from_string(name.to_string());
    r.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![r];
    req.include_synonyms = true;
    let resp = w.call(4, &req).await;
    assert_eq!(resp.results[0].error_code, 0, "{:?}", resp.results[0].error_message);
    resp.results[0]
        .configs
        .iter()
        .map(|c| {
            let value = c.value.as_deref().unwrap_or_default().to_string();
            (c.name.to_string(), (value, c.config_source, c.read_only))
        })
        .collect()
}

/// Create or replace a SCRAM user over the wire, as an admin client does.
pub async fn upsert_scram_user(
    addr: SocketAddr,
    user: &str,
    password: &str,
    mechanism: strom::security::scram::ScramMechanism,
) -> i16 {
    let mut w = Wire::connect(addr).await;
    let salt = b"a salt for tests".to_vec();
    let mut up = kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
    up.name = StrBytes::from_string(user.into());
    up.mechanism = mechanism.code();
    up.iterations = 8192;
    up.salted_password = mechanism.salted_password(password.as_bytes(), &salt, 8192).into();
    up.salt = salt.into();
    let mut request = AlterUserScramCredentialsRequest::default();
    request.upsertions.push(up);
    let response = w.call(0, &request).await;
    response.results[0].error_code
}

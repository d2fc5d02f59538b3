//! The protocol at the byte level: every advertised version, bad input, errors.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::wire::*;
use common::TestBroker;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

#[tokio::test]
async fn every_advertised_version_of_every_api_answers() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let versions = w.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(versions.error_code, 0);
    // The versions the codec still encodes; the older ones Kafka 3.9 served are
    // sent as hand-built bytes in tests/old_versions.rs.
    let range = |key: ApiKey| {
        let v = versions.api_keys.iter().find(|k| k.api_key == key as i16).unwrap();
        v.min_version.max(key.valid_versions().min)..=v.max_version
    };
    for v in range(ApiKey::ApiVersions) {
        let r = w.call(v, &ApiVersionsRequest::default()).await;
        assert_eq!(r.api_keys.len(), versions.api_keys.len());
    }
    let id = create(&mut w, "all-versions", 1).await;
    for v in range(ApiKey::Metadata) {
        let r = w.call(v, &metadata_request(&["all-versions"])).await;
        assert_eq!(r.brokers.len(), 1, "v{v}");
        assert_eq!(r.topics[0].partitions.len(), 1, "v{v}");
    }
    let mut produced = 0i64;
    for v in range(ApiKey::Produce) {
        let r = w
            .call(v, &produce_request("all-versions", 0, batch(2, -1, 0, 1000), 1))
            .await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, produced), "v{v}");
        produced += 2;
    }
    for v in range(ApiKey::Fetch) {
        let r = w.call(v, &fetch_request("all-versions", id, 0, 0)).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{v}");
        assert_eq!(p.high_watermark, produced, "v{v}");
        assert!(!p.records.as_ref().unwrap().is_empty(), "v{v}");
    }
    for v in range(ApiKey::ListOffsets) {
        let mut q = ListOffsetsPartition::default();
        q.timestamp = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = name("all-versions");
        t.partitions = vec![q];
        let mut req = ListOffsetsRequest::default();
        req.topics = vec![t];
        let r = w.call(v, &req).await;
        assert_eq!(r.topics[0].partitions[0].offset, produced, "v{v}");
    }
    for v in range(ApiKey::InitProducerId) {
        let r = w.call(v, &idempotent_init()).await;
        assert_eq!(r.error_code, 0, "v{v}");
        assert!(r.producer_id.0 >= 0);
    }
    for v in range(ApiKey::CreateTopics) {
        let mut t = CreatableTopic::default();
        t.name = name(&format!("created-v{v}"));
        t.num_partitions = 2;
        t.replication_factor = 1;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        let r = w.call(v, &req).await;
        assert_eq!(r.topics[0].error_code, 0, "v{v}");
    }
    for v in range(ApiKey::DeleteTopics) {
        let mut req = DeleteTopicsRequest::default();
        let topic = format!("created-v{}", v + 1);
        if v >= 6 {
            let mut s = DeleteTopicState::default();
            s.name = Some(name(&topic));
            req.topics = vec![s];
        } else {
            req.topic_names = vec![name(&topic)];
        }
        let r = w.call(v, &req).await;
        assert_eq!(r.responses[0].error_code, 0, "v{v}");
    }
}

#[tokio::test]
async fn unsupported_apis_and_versions_get_an_answer_and_the_connection_keeps_serving() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    // An API key no Kafka has.
    let mut raw = BytesMut::new();
    raw.put_i16(9999);
    raw.put_i16(0);
    raw.put_i32(77);
    raw.put_i16(-1);
    w.send_frame(&raw).await;
    let answer = w.read_frame().await.expect("an answer");
    assert_eq!(&answer[..4], &77i32.to_be_bytes());
    assert_eq!(&answer[4..6], &35i16.to_be_bytes());
    // Produce v99: a version no Kafka has.
    let (h, corr) = w.header(ApiKey::Produce, 99);
    let mut raw = BytesMut::new();
    h.encode(&mut raw, 1).unwrap();
    raw.put_slice(&[0, 1, 0, 0, 0x13, 0x88, 0, 0, 0, 0]);
    w.send_frame(&raw).await;
    let answer = w.read_frame().await.expect("an answer");
    assert_eq!(&answer[..4], &corr.to_be_bytes());
    assert_eq!(&answer[4..6], &35i16.to_be_bytes());
    // ApiVersions of a future version: v0 layout, UNSUPPORTED_VERSION, full table.
    let (h, corr) = w.header(ApiKey::ApiVersions, 9);
    let mut raw = BytesMut::new();
    h.encode(&mut raw, 2).unwrap();
    raw.put_slice(b"future body that must not be parsed");
    w.send_frame(&raw).await;
    let mut answer = w.read_frame().await.expect("an answer");
    let header = ResponseHeader::decode(&mut answer, 0).unwrap();
    assert_eq!(header.correlation_id, corr);
    let v0 = ApiVersionsResponse::decode(&mut answer, 0).unwrap();
    assert_eq!(v0.error_code, 35);
    assert!(v0.api_keys.iter().any(|k| k.api_key == 0 && k.min_version == 0));
    // Still serving on this connection.
    let r = w.call(4, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
}

use kafka_protocol::protocol::Decodable;

#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let broker = TestBroker::start_with(|c| c.socket_request_max_bytes = 1024).await;
    // Larger than socket.request.max.bytes.
    let mut w = Wire::connect(broker.addr()).await;
    w.send_frame(&vec![0u8; 2048]).await;
    assert!(w.read_frame().await.is_none(), "oversized frame closes the connection");
    // A known API whose body does not decode.
    let mut w = Wire::connect(broker.addr()).await;
    let (h, _) = w.header(ApiKey::Metadata, 12);
    let mut raw = BytesMut::new();
    h.encode(&mut raw, 2).unwrap();
    raw.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
    w.send_frame(&raw).await;
    assert!(w.read_frame().await.is_none(), "undecodable body closes the connection");
    // A header too short to hold a correlation id.
    let mut w = Wire::connect(broker.addr()).await;
    w.send_frame(&[0, 3]).await;
    assert!(w.read_frame().await.is_none());
    // Everyone else is unaffected.
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(w.call(3, &ApiVersionsRequest::default()).await.error_code, 0);
}

#[tokio::test]
async fn produce_rejects_bad_batches_per_partition() {
    let broker = TestBroker::start_with(|c| c.log.message_max_bytes = 2000).await;
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "strict", 1).await;
    let mut corrupt = BytesMut::from(&batch(3, -1, 0, 0)[..]);
    let n = corrupt.len();
    corrupt[n - 2] ^= 0x40;
    let r = w.call(9, &produce_request("strict", 0, corrupt.freeze(), -1)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 2, "CORRUPT_MESSAGE");
    let r = w.call(9, &produce_request("strict", 0, batch(200, -1, 0, 0), -1)).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 10,
        "MESSAGE_TOO_LARGE"
    );
    let r = w.call(9, &produce_request("strict", 7, batch(1, -1, 0, 0), -1)).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let r = w.call(9, &produce_request("nope", 0, batch(1, -1, 0, 0), -1)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 3);
    let r = w.call(9, &produce_request("strict", 0, batch(1, -1, 0, 0), 5)).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );
    // Nothing bad reached the log; a good batch lands at offset 0.
    let r = w.call(9, &produce_request("strict", 0, batch(1, -1, 0, 0), -1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
}

#[tokio::test]
async fn acks_zero_gets_no_response() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "fire", 1).await;
    w.send(9, &produce_request("fire", 0, batch(1, -1, 0, 0), 0)).await;
    // The next response on the connection is the ApiVersions one.
    let r = w.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
    let mut q = ListOffsetsPartition::default();
    q.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = name("fire");
    t.partitions = vec![q];
    let mut req = ListOffsetsRequest::default();
    req.topics = vec![t];
    assert_eq!(w.call(7, &req).await.topics[0].partitions[0].offset, 1);
}

#[tokio::test]
async fn idempotent_duplicates_get_their_original_offsets() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "idem", 1).await;
    let pid = w.call(4, &idempotent_init()).await.producer_id.0;
    let send = |seq: i32| produce_request("idem", 0, batch(3, pid, seq, 0), -1);
    let first = w.call(9, &send(0)).await;
    assert_eq!(first.responses[0].partition_responses[0].base_offset, 0);
    let second = w.call(9, &send(3)).await;
    assert_eq!(second.responses[0].partition_responses[0].base_offset, 3);
    let retry = w.call(9, &send(0)).await;
    let p = &retry.responses[0].partition_responses[0];
    assert_eq!(
        (p.error_code, p.base_offset),
        (0, 0),
        "a retry is acknowledged with its offset"
    );
    let gap = w.call(9, &send(9)).await;
    assert_eq!(
        gap.responses[0].partition_responses[0].error_code, 45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    // An idempotent producer asking to go on with its id gets a new one, as
    // from Kafka: no one can bump (and so fence) another producer's epoch.
    let mut bump = idempotent_init();
    bump.producer_id = ProducerId(pid);
    bump.producer_epoch = 0;
    let r = w.call(4, &bump).await;
    assert_eq!(r.error_code, 0);
    assert_ne!(r.producer_id.0, pid);
    assert_eq!(r.producer_epoch, 0);
}

#[tokio::test]
async fn metadata_errors_and_auto_creation() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let r = w.call(12, &metadata_request(&["bad name!"])).await;
    assert_eq!(r.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    let mut no_create = metadata_request(&["absent"]);
    no_create.allow_auto_topic_creation = false;
    let r = w.call(12, &no_create).await;
    assert_eq!(r.topics[0].error_code, 3);
    let r = w.call(1, &metadata_request(&["auto"])).await;
    assert_eq!(r.topics[0].error_code, 0);
    // All topics: null list (v1+).
    let mut all = MetadataRequest::default();
    all.topics = None;
    let r = w.call(12, &all).await;
    let user: Vec<_> = r.topics.iter().filter(|t| !t.is_internal).collect();
    assert_eq!(user.len(), 1, "auto, and the internal topics flagged");
    assert_eq!(r.cluster_id.as_ref().map(|c| c.len()), Some(22));
    // Ids are stable across restarts.
    let id = user[0].topic_id;
    drop(w);
    let mut broker = broker;
    broker.restart(|c| c.auto_create_topics = false).await;
    let mut w = Wire::connect(broker.addr()).await;
    let r = w.call(12, &metadata_request(&["auto", "other"])).await;
    assert_eq!(r.topics[0].topic_id, id);
    assert_eq!(r.topics[1].error_code, 3, "auto-creation disabled");
}

/// Clients that start together make the same topics at once (the shop's
/// services do): while one request creates a topic, another's auto-creating
/// Metadata gets LEADER_NOT_AVAILABLE, which clients retry, never
/// UNKNOWN_TOPIC_OR_PARTITION (on which kafkajs's subscribe gives up).
#[tokio::test(flavor = "multi_thread")]
async fn a_topic_being_created_is_not_unknown_to_another_client() {
    let broker = TestBroker::start().await;
    for round in 0..20 {
        let topic = format!("together-{round}");
        let askers = (0..6).map(|_| {
            let (addr, topic) = (broker.addr(), topic.clone());
            tokio::spawn(async move {
                let mut w = Wire::connect(addr).await;
                w.call(12, &metadata_request(&[&topic])).await.topics[0].error_code
            })
        });
        for code in futures_util::future::join_all(askers).await {
            let code = code.unwrap();
            assert!(code == 0 || code == 5, "{topic}: error {code}");
        }
    }
}

#[tokio::test]
async fn fetch_long_polls_until_data_arrives() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let id = create(&mut w, "poll", 1).await;
    // Nothing to read and a short wait: empty records, never null.
    let r = w.call(12, &fetch_request("poll", id, 0, 100)).await;
    assert_eq!(r.responses[0].partitions[0].records.as_ref().map(|b| b.len()), Some(0));
    // A long wait that new data cuts short.
    let started = Instant::now();
    let corr = w.send(12, &fetch_request("poll", id, 0, 30_000)).await;
    let addr = broker.addr();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut other = Wire::connect(addr).await;
        other.call(9, &produce_request("poll", 0, batch(2, -1, 0, 0), 1)).await;
    });
    let r = w.receive::<FetchRequest>(12, corr).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "woken by the append, not the timeout"
    );
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 2);
    assert!(!p.records.as_ref().unwrap().is_empty());
    // Out of range.
    let r = w.call(12, &fetch_request("poll", id, 99, 0)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 1, "OFFSET_OUT_OF_RANGE");
    // v13+ names topics by id.
    let r = w.call(13, &fetch_request("", uuid::Uuid::new_v4(), 0, 0)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 100, "UNKNOWN_TOPIC_ID");
}

#[tokio::test]
async fn create_and_delete_topics_report_kafkas_errors() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let topic = |n: &str, partitions: i32, rf: i16| {
        let mut t = CreatableTopic::default();
        t.name = name(n);
        t.num_partitions = partitions;
        t.replication_factor = rf;
        t
    };
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![
        topic("ok", 3, 1),
        topic("zero", 0, 1),
        topic("rf3", 1, 3),
        topic("bad/name", 1, 1),
        topic("defaults", -1, -1),
    ];
    let r = w.call(7, &req).await;
    let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, 37, 38, 17, 0]);
    assert_eq!(r.topics[4].num_partitions, 1);
    let again = w.call(7, &req).await;
    assert_eq!(again.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");
    let mut dry = CreateTopicsRequest::default();
    dry.topics = vec![topic("dry", 2, 1)];
    dry.validate_only = true;
    assert_eq!(w.call(7, &dry).await.topics[0].error_code, 0);
    let mut meta = metadata_request(&["dry"]);
    meta.allow_auto_topic_creation = false;
    assert_eq!(
        w.call(12, &meta).await.topics[0].error_code,
        3,
        "validate_only creates nothing"
    );

    let ok_id = r.topics[0].topic_id;
    let mut del = DeleteTopicsRequest::default();
    let mut by_id = DeleteTopicState::default();
    by_id.topic_id = ok_id;
    let mut missing = DeleteTopicState::default();
    missing.name = Some(name("missing"));
    del.topics = vec![by_id, missing];
    let r = w.call(6, &del).await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        r.responses[0].name.as_ref().map(|n| n.as_str().to_string()),
        Some("ok".into())
    );
    assert_eq!(r.responses[1].error_code, 3);
    assert!(!broker.data_dir().join("ok-0").exists());
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let id = create(&mut w, "pipe", 1).await;
    // A long-polling fetch first, then quick requests behind it, all sent before
    // reading anything: responses must come back in the order of the requests.
    let mut sent = Vec::new();
    sent.push(w.send(12, &fetch_request("pipe", id, 0, 300)).await);
    for i in 0..5 {
        sent.push(w.send(9, &produce_request("pipe", 0, batch(1, -1, 0, i), 1)).await);
        sent.push(w.send(3, &ApiVersionsRequest::default()).await);
    }
    let fetch = w.receive::<FetchRequest>(12, sent[0]).await;
    assert_eq!(fetch.responses[0].partitions[0].error_code, 0);
    for (i, pair) in sent[1..].chunks(2).enumerate() {
        let p = w.receive::<ProduceRequest>(9, pair[0]).await;
        assert_eq!(p.responses[0].partition_responses[0].base_offset, i as i64);
        w.receive::<ApiVersionsRequest>(3, pair[1]).await;
    }
}

#[tokio::test]
async fn fetch_honours_byte_limits_but_always_returns_a_whole_batch() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let id = create(&mut w, "limits", 1).await;
    let one = batch(10, -1, 0, 0);
    for _ in 0..5 {
        w.call(9, &produce_request("limits", 0, one.clone(), 1)).await;
    }
    let records = |r: &FetchResponse| r.responses[0].partitions[0].records.clone().unwrap();
    // A partition limit smaller than one batch still gets one whole batch.
    let mut req = fetch_request("limits", id, 0, 0);
    req.topics[0].partitions[0].partition_max_bytes = 10;
    assert_eq!(records(&w.call(12, &req).await).len(), one.len());
    // Room for two and a half batches: two whole batches.
    req.topics[0].partitions[0].partition_max_bytes = (one.len() * 5 / 2) as i32;
    assert_eq!(records(&w.call(12, &req).await).len(), one.len() * 2);
    // The response limit applies too.
    req.topics[0].partitions[0].partition_max_bytes = 1 << 20;
    req.max_bytes = (one.len() * 3) as i32;
    assert_eq!(records(&w.call(12, &req).await).len(), one.len() * 3);
    // An offset inside a batch returns that whole batch, from its base offset.
    let mut req = fetch_request("limits", id, 25, 0);
    req.topics[0].partitions[0].partition_max_bytes = 10;
    let got = records(&w.call(12, &req).await);
    assert_eq!(i64::from_be_bytes(got[..8].try_into().unwrap()), 20);
}

#[tokio::test]
async fn each_listener_advertises_its_own_address() {
    // The docker-compose topology: containers reach strom as strom:29092 through
    // INTERNAL, the host as localhost through EXTERNAL.
    let broker = TestBroker::start_with(|c| {
        c.listeners =
            strom::config::parse_listeners("listeners", "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0").unwrap();
        c.advertised_listeners =
            strom::config::parse_listeners("advertised.listeners", "INTERNAL://strom:29092").unwrap();
    })
    .await;
    let listeners = &broker.running.as_ref().unwrap().listeners;
    let mut internal = Wire::connect(listeners[0].bound).await;
    let r = internal.call(12, &metadata_request(&[])).await;
    assert_eq!((r.brokers[0].host.as_str(), r.brokers[0].port), ("strom", 29092));
    let mut external = Wire::connect(listeners[1].bound).await;
    let r = external.call(12, &metadata_request(&[])).await;
    assert_eq!(
        (r.brokers[0].host.as_str(), r.brokers[0].port),
        ("127.0.0.1", listeners[1].bound.port() as i32)
    );
}

#[tokio::test]
async fn requests_sent_before_a_half_close_are_all_served() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "halfclose", 1).await;
    // 500 acks=0 produces, pipelined, then the client shuts its sending side.
    let mut sender = Wire::connect(broker.addr()).await;
    for _ in 0..500 {
        sender
            .send(9, &produce_request("halfclose", 0, batch(1, -1, 0, 0), 0))
            .await;
    }
    tokio::io::AsyncWriteExt::shutdown(&mut sender.stream).await.unwrap();
    assert!(
        sender.read_frame().await.is_none(),
        "acks=0: no response, then the close"
    );
    let mut end = 0;
    for _ in 0..100 {
        end = list_offset(&mut w, "halfclose", 0, -1).await.1;
        if end == 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(end, 500, "every request sent before the FIN was appended");
}

#[tokio::test]
async fn a_half_closed_client_still_gets_its_acks_all_responses() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "halfclose-all", 1).await;
    let mut sender = Wire::connect(broker.addr()).await;
    let mut sent = Vec::new();
    for _ in 0..200 {
        sent.push(
            sender
                .send(9, &produce_request("halfclose-all", 0, batch(1, -1, 0, 0), -1))
                .await,
        );
    }
    tokio::io::AsyncWriteExt::shutdown(&mut sender.stream).await.unwrap();
    for correlation in sent {
        let r = sender.receive::<ProduceRequest>(9, correlation).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    assert_eq!(list_offset(&mut w, "halfclose-all", 0, -1).await.1, 200);
}

#[tokio::test]
async fn a_long_poll_abandoned_by_its_client_frees_the_connection() {
    let broker = TestBroker::start_with(|c| c.max_connections = 2).await;
    let mut w = Wire::connect(broker.addr()).await;
    let id = create(&mut w, "abandoned", 1).await;
    // The second (last) connection sends more 30 s long polls than the
    // connection queues, then its client goes away.
    let mut poller = Wire::connect(broker.addr()).await;
    for _ in 0..40 {
        poller.send(12, &fetch_request("abandoned", id, 0, 30_000)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(poller);
    // Its slot is free long before the poll would have ended.
    let started = Instant::now();
    let mut again = Wire::connect(broker.addr()).await;
    let r = again.call(12, &metadata_request(&["abandoned"])).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "served at once, not after the poll"
    );
}

#[tokio::test]
async fn list_offsets_answers_earliest_local_and_latest_tiered_as_kafka_without_tiered_storage() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "tiers", 1, &[]).await;
    produce(&mut w, "tiers", 0, batch(3, -1, 0, 1000)).await;
    let query = |timestamp: i64| {
        let mut q = ListOffsetsPartition::default();
        q.timestamp = timestamp;
        let mut t = ListOffsetsTopic::default();
        t.name = name("tiers");
        t.partitions = vec![q];
        let mut req = ListOffsetsRequest::default();
        req.topics = vec![t];
        req
    };
    // −4: the first offset on local disk, which is the log start here.
    let r = w.call(9, &query(-4)).await;
    assert_eq!(
        (r.topics[0].partitions[0].error_code, r.topics[0].partitions[0].offset),
        (0, 0)
    );
    // −5: the last tiered offset: nothing is tiered.
    let r = w.call(9, &query(-5)).await;
    assert_eq!(
        (r.topics[0].partitions[0].error_code, r.topics[0].partitions[0].offset),
        (0, -1)
    );
}

#[tokio::test]
async fn fetch_and_list_offsets_report_the_last_stable_offset_by_isolation_level() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let id = create_topic(&mut w, "iso", 1, &[]).await;
    produce(&mut w, "iso", 0, batch(3, -1, 0, 1000)).await;
    for (isolation, aborted_list) in [(0i8, false), (1, true)] {
        let mut f = fetch_request("iso", id, 0, 0);
        f.isolation_level = isolation;
        let r = w.call(12, &f).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.high_watermark, p.last_stable_offset), (3, 3));
        // read_committed gets a list of aborted transactions (none here),
        // read_uncommitted none at all, as Kafka answers.
        assert_eq!(p.aborted_transactions.is_some(), aborted_list, "isolation {isolation}");
        assert!(p.aborted_transactions.as_ref().is_none_or(|a| a.is_empty()));
        let mut q = ListOffsetsPartition::default();
        q.timestamp = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = name("iso");
        t.partitions = vec![q];
        let mut req = ListOffsetsRequest::default();
        req.isolation_level = isolation;
        req.topics = vec![t];
        assert_eq!(w.call(7, &req).await.topics[0].partitions[0].offset, 3);
    }
}

/// KIP-320: a request naming a leader epoch is checked against the partition's
/// (0 on a single broker): older is FENCED_LEADER_EPOCH, newer
/// UNKNOWN_LEADER_EPOCH, −1 (kafkajs, old versions) skips the check.
#[tokio::test]
async fn leader_epochs_in_requests_are_checked() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let id = create(&mut w, "epochs", 1).await;
    let m = w.call(12, &metadata_request(&["epochs"])).await;
    let p = &m.topics[0].partitions[0];
    assert_eq!((p.leader_epoch, p.leader_id.0), (0, 0), "one broker leads at epoch 0");
    assert_eq!((p.replica_nodes.len(), p.isr_nodes.len()), (1, 1));
    produce(&mut w, "epochs", 0, batch(3, -1, 0, 0)).await;
    for (epoch, code) in [(-1, 0), (0, 0), (1, 75), (-2, 74)] {
        let mut f = fetch_request("epochs", id, 0, 0);
        f.topics[0].partitions[0].current_leader_epoch = epoch;
        let r = w.call(12, &f).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, code, "fetch at epoch {epoch}");
        assert_eq!(p.high_watermark, if code == 0 { 3 } else { -1 });
        let mut q = ListOffsetsPartition::default();
        q.partition_index = 0;
        q.timestamp = -1;
        q.current_leader_epoch = epoch;
        let mut t = ListOffsetsTopic::default();
        t.name = name("epochs");
        t.partitions = vec![q];
        let mut l = ListOffsetsRequest::default();
        l.replica_id = BrokerId(-1);
        l.topics = vec![t];
        let r = w.call(7, &l).await;
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, code, "list offsets at epoch {epoch}");
        assert_eq!(p.offset, if code == 0 { 3 } else { -1 });
    }
    // Before v9 a fetch carries no epoch: never refused for one.
    let r = w.call(8, &fetch_request("epochs", id, 0, 0)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    // OffsetForLeaderEpoch: epoch 0 ends at the log end; an epoch newer than any,
    // or −1, is undefined; the current epoch is checked as above; an unknown
    // partition is named.
    for version in 2..=4 {
        for (epoch, current, expected) in [
            (0, -1, (0, 0, 3)),
            (0, 0, (0, 0, 3)),
            (1, -1, (0, -1, -1)),
            (-1, -1, (0, -1, -1)),
            (0, 1, (75, -1, -1)),
            (0, -3, (74, -1, -1)),
        ] {
            let r = w.call(version, &epoch_request("epochs", 0, current, epoch)).await;
            let p = &r.topics[0].partitions[0];
            let got = (p.error_code, p.leader_epoch, p.end_offset);
            assert_eq!(got, expected, "v{version} epoch {epoch} at current {current}");
        }
    }
    let r = w.call(4, &epoch_request("epochs", 9, -1, 0)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // ListOffsets names the epoch of the offset's writer (v4+), −1 for none.
    create(&mut w, "epochs-empty", 1).await;
    for (topic, expected) in [("epochs", 0), ("epochs-empty", -1)] {
        let mut q = ListOffsetsPartition::default();
        q.timestamp = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = name(topic);
        t.partitions = vec![q];
        let mut l = ListOffsetsRequest::default();
        l.replica_id = BrokerId(-1);
        l.topics = vec![t];
        let r = w.call(7, &l).await;
        assert_eq!(r.topics[0].partitions[0].leader_epoch, expected, "{topic}");
    }
}

fn epoch_request(topic: &str, partition: i32, current: i32, epoch: i32) -> OffsetForLeaderEpochRequest {
    let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
    p.partition = partition;
    p.current_leader_epoch = current;
    p.leader_epoch = epoch;
    let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut r = OffsetForLeaderEpochRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    r
}

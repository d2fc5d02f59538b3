//! Transactions with librdkafka: a transactional producer's commits and aborts,
//! as read_committed and read_uncommitted consumers see them.

mod common;

use std::time::Duration;

use common::wire::last_stable_offset;
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// Every value in partition 0 of `topic` with `isolation`, until `end` offsets.
fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let c = common::isolated_reader(bootstrap, isolation);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return values,
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    panic!("no end of partition within 20 s; read {values:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_transactions_as_each_isolation_level_sees_them() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let topic = "txn-orders";
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, topic, 1, &[]).await;
    let bs = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let p = common::transactional_producer(&bs, "orders-service");
        p.init_transactions(Duration::from_secs(30)).expect("init_transactions");
        for (round, (n, commit)) in [(10, true), (5, false), (3, true)].into_iter().enumerate() {
            p.begin_transaction().unwrap();
            for i in 0..n {
                let v = format!("r{round}-{i}");
                p.send(BaseRecord::<(), _>::to(topic).partition(0).payload(&v)).unwrap();
            }
            p.flush(Duration::from_secs(30)).unwrap();
            if commit {
                p.commit_transaction(Duration::from_secs(30)).expect("commit");
            } else {
                p.abort_transaction(Duration::from_secs(30)).expect("abort");
            }
        }
    })
    .await
    .unwrap();
    let bs = bootstrap.clone();
    let (committed, uncommitted) = tokio::task::spawn_blocking(move || {
        (
            read_all(&bs, topic, "read_committed"),
            read_all(&bs, topic, "read_uncommitted"),
        )
    })
    .await
    .unwrap();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("r0-{i}"))
        .chain((0..3).map(|i| format!("r2-{i}")))
        .collect();
    assert_eq!(committed, expected, "read_committed: the committed records only");
    assert_eq!(uncommitted.len(), 18, "read_uncommitted: aborted ones too");
    assert!(uncommitted.contains(&"r1-4".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let broker = TestBroker::start().await;
    let bs = broker.bootstrap();
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, "fenced", 1, &[]).await;
    tokio::task::spawn_blocking(move || {
        let first = common::transactional_producer(&bs, "zombie");
        first.init_transactions(Duration::from_secs(30)).unwrap();
        first.begin_transaction().unwrap();
        first
            .send(BaseRecord::<(), _>::to("fenced").partition(0).payload("old"))
            .unwrap();
        first.flush(Duration::from_secs(30)).unwrap();
        let second = common::transactional_producer(&bs, "zombie");
        second
            .init_transactions(Duration::from_secs(30))
            .expect("the new producer takes over");
        // The zombie's commit fails: its epoch is fenced.
        assert!(first.commit_transaction(Duration::from_secs(30)).is_err());
        second.begin_transaction().unwrap();
        second
            .send(BaseRecord::<(), _>::to("fenced").partition(0).payload("new"))
            .unwrap();
        second.commit_transaction(Duration::from_secs(30)).unwrap();
        assert_eq!(read_all(&bs, "fenced", "read_committed"), vec!["new".to_string()]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_topics_cannot_join_a_transaction() {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let mut broker = TestBroker::start().await;
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, "plain", 1, &[]).await;
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(StrBytes::from_static_str("x")));
    init.transaction_timeout_ms = 60_000;
    let r = w.call(4, &init).await;
    assert_eq!(r.error_code, 0);
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = TransactionalId(StrBytes::from_static_str("x"));
    add.v3_and_below_producer_id = r.producer_id;
    add.v3_and_below_producer_epoch = r.producer_epoch;
    for topic in ["__consumer_offsets", "plain"] {
        let mut t = AddPartitionsToTxnTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions = vec![0];
        add.v3_and_below_topics.push(t);
    }
    let added = w.call(3, &add).await;
    let codes: Vec<i16> = added
        .results_by_topic_v3_and_below
        .iter()
        .map(|t| t.results_by_partition[0].partition_error_code)
        .collect();
    assert_eq!(codes, [29, 55], "TOPIC_AUTHORIZATION_FAILED, OPERATION_NOT_ATTEMPTED");
    // Nothing was added: the broker restarts cleanly.
    broker.restart(|_| {}).await;
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    assert_eq!(w.call(4, &init).await.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_listed_and_described() {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let broker = TestBroker::start().await;
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, "listed", 2, &[]).await;
    let id = |s: &str| TransactionalId(StrBytes::from_string(s.to_string()));
    let mut pids = Vec::new();
    for name in ["idle", "busy"] {
        let mut init = InitProducerIdRequest::default();
        init.transactional_id = Some(id(name));
        init.transaction_timeout_ms = 60_000;
        let r = w.call(4, &init).await;
        assert_eq!(r.error_code, 0);
        pids.push((r.producer_id, r.producer_epoch));
    }
    // "busy" opens a transaction on both partitions.
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = id("busy");
    (add.v3_and_below_producer_id, add.v3_and_below_producer_epoch) = pids[1];
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = TopicName(StrBytes::from_static_str("listed"));
    t.partitions = vec![0, 1];
    add.v3_and_below_topics = vec![t];
    w.call(3, &add).await;
    let list = |states: &[&str]| {
        let mut r = ListTransactionsRequest::default();
        r.state_filters = states.iter().map(|s| StrBytes::from_string(s.to_string())).collect();
        r
    };
    let all = w.call(1, &list(&[])).await;
    let names: Vec<(&str, &str)> = all
        .transaction_states
        .iter()
        .map(|t| (t.transactional_id.as_str(), t.transaction_state.as_str()))
        .collect();
    assert_eq!(names, [("busy", "Ongoing"), ("idle", "Empty")]);
    let ongoing = w.call(1, &list(&["Ongoing", "Bogus"])).await;
    assert_eq!(ongoing.transaction_states.len(), 1);
    assert_eq!(ongoing.unknown_state_filters[0].as_str(), "Bogus");
    let mut describe = DescribeTransactionsRequest::default();
    describe.transactional_ids = vec![id("busy"), id("nobody")];
    let d = w.call(0, &describe).await;
    let busy = &d.transaction_states[0];
    assert_eq!((busy.error_code, busy.transaction_state.as_str()), (0, "Ongoing"));
    assert_eq!(busy.producer_id, pids[1].0);
    assert_eq!(busy.topics[0].partitions, [0, 1]);
    assert!(busy.transaction_start_time_ms > 0);
    assert_eq!(d.transaction_states[1].error_code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_producers_shows_each_partitions_producers() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let broker = TestBroker::start().await;
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, "produced", 1, &[]).await;
    let pid = w.call(4, &common::wire::idempotent_init()).await.producer_id.0;
    let batch = common::wire::batch(3, pid, 0, strom::util::clock::now_ms());
    assert_eq!(common::wire::produce(&mut w, "produced", 0, batch).await.0, 0);
    let mut t = TopicRequest::default();
    t.name = TopicName(StrBytes::from_static_str("produced"));
    t.partition_indexes = vec![0, 9];
    let mut req = DescribeProducersRequest::default();
    req.topics = vec![t];
    let r = w.call(0, &req).await;
    let p0 = &r.topics[0].partitions[0];
    assert_eq!(p0.error_code, 0);
    assert_eq!(p0.active_producers.len(), 1);
    let p = &p0.active_producers[0];
    assert_eq!(
        (
            p.producer_id.0,
            p.producer_epoch,
            p.last_sequence,
            p.current_txn_start_offset
        ),
        (pid, 0, 2, -1)
    );
    assert_eq!(r.topics[0].partitions[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
}

/// Poll `c` (a group member) until `n` more records arrive.
fn take(c: &BaseConsumer, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} records in 30 s",
            got.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    got
}

/// Consume-transform-produce, as librdkafka's exactly-once examples do it: the
/// consumer's offsets are committed by the producer, inside its transaction
/// (AddOffsetsToTxn + TxnOffsetCommit v3 with the consumer's group metadata). A
/// committed transaction moves the group's offset with the output; an aborted one
/// moves neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_committed_in_a_transaction_move_with_its_output() {
    let broker = TestBroker::start().await;
    let bs = broker.bootstrap();
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, "ctp-in", 1, &[]).await;
    common::wire::create_topic(&mut w, "ctp-out", 1, &[]).await;
    tokio::task::spawn_blocking(move || {
        let input: ThreadedProducer<DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &bs).create().unwrap();
        for i in 0..20 {
            let v = format!("in-{i}");
            input
                .send(BaseRecord::<(), _>::to("ctp-in").partition(0).payload(&v))
                .unwrap();
        }
        input.flush(Duration::from_secs(30)).unwrap();

        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", "ctp")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        consumer.subscribe(&["ctp-in"]).unwrap();
        let producer = common::transactional_producer(&bs, "ctp-processor");
        producer.init_transactions(Duration::from_secs(30)).unwrap();

        for (round, (n, commit)) in [(10, true), (5, false)].into_iter().enumerate() {
            let records = take(&consumer, n);
            producer.begin_transaction().unwrap();
            for r in &records {
                let v = format!("{r}-out");
                producer
                    .send(BaseRecord::<(), _>::to("ctp-out").partition(0).payload(&v))
                    .unwrap();
            }
            // (An abort drops what is still queued: flush, so the aborted
            // records are in the log for read_uncommitted to see.)
            producer.flush(Duration::from_secs(30)).unwrap();
            let mut offsets = TopicPartitionList::new();
            let next = if round == 0 { 10 } else { 15 };
            offsets.add_partition_offset("ctp-in", 0, Offset::Offset(next)).unwrap();
            let meta = consumer.group_metadata().expect("group metadata");
            producer
                .send_offsets_to_transaction(&offsets, &meta, Duration::from_secs(30))
                .expect("send_offsets_to_transaction");
            if commit {
                producer.commit_transaction(Duration::from_secs(30)).expect("commit");
            } else {
                producer.abort_transaction(Duration::from_secs(30)).expect("abort");
            }
        }

        // The group's offset is the committed transaction's (a read_committed
        // lookup, require_stable, gets it without waiting: nothing is pending).
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition("ctp-in", 0);
        let committed = consumer
            .committed_offsets(wanted, Duration::from_secs(10))
            .expect("committed offsets");
        let ours = committed.find_partition("ctp-in", 0).unwrap();
        assert_eq!(
            ours.offset(),
            Offset::Offset(10),
            "the aborted transaction's offset is gone"
        );
        let out = read_all(&bs, "ctp-out", "read_committed");
        let expected: Vec<String> = (0..10).map(|i| format!("in-{i}-out")).collect();
        assert_eq!(out, expected);
        assert_eq!(read_all(&bs, "ctp-out", "read_uncommitted").len(), 15);
    })
    .await
    .unwrap();
}

/// The wire rules around offsets in a transaction: TxnOffsetCommit before
/// AddOffsetsToTxn is refused (INVALID_TXN_STATE, TRANSACTION_ABORTABLE from
/// v4); a pending offset is UNSTABLE_OFFSET_COMMIT for require_stable fetches
/// and invisible to the others; EndTxn's marker makes it the group's offset,
/// also after a restart; a fenced epoch gets INVALID_PRODUCER_EPOCH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_offset_commit_over_the_wire() {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let mut broker = TestBroker::start().await;
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, "src", 1, &[]).await;
    let id = TransactionalId(StrBytes::from_static_str("offsets-txn"));
    let group = GroupId(StrBytes::from_static_str("offsets-group"));
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(id.clone());
    init.transaction_timeout_ms = 60_000;
    let r = w.call(4, &init).await;
    assert_eq!(r.error_code, 0);
    let (pid, epoch) = (r.producer_id, r.producer_epoch);

    let commit_request = |offset: i64, epoch: i16| {
        let mut p = TxnOffsetCommitRequestPartition::default();
        p.partition_index = 0;
        p.committed_offset = offset;
        let mut t = TxnOffsetCommitRequestTopic::default();
        t.name = TopicName(StrBytes::from_static_str("src"));
        t.partitions = vec![p];
        let mut c = TxnOffsetCommitRequest::default();
        c.transactional_id = id.clone();
        c.group_id = group.clone();
        c.producer_id = pid;
        c.producer_epoch = epoch;
        c.topics = vec![t];
        c
    };
    let code = |r: &TxnOffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(
        code(&w.call(3, &commit_request(7, epoch)).await),
        48,
        "INVALID_TXN_STATE"
    );
    assert_eq!(
        code(&w.call(4, &commit_request(7, epoch)).await),
        120,
        "TRANSACTION_ABORTABLE"
    );

    let mut add = AddOffsetsToTxnRequest::default();
    add.transactional_id = id.clone();
    add.producer_id = pid;
    add.producer_epoch = epoch;
    add.group_id = group.clone();
    assert_eq!(w.call(0, &add).await.error_code, 0);
    assert_eq!(w.call(0, &add).await.error_code, 0, "a repeated add is a no-op");
    assert_eq!(code(&w.call(3, &commit_request(7, epoch)).await), 0);
    assert_eq!(
        code(&w.call(0, &commit_request(7, epoch - 1)).await),
        47,
        "INVALID_PRODUCER_EPOCH"
    );

    let fetch = |stable: bool| {
        let mut t = OffsetFetchRequestTopic::default();
        t.name = TopicName(StrBytes::from_static_str("src"));
        t.partition_indexes = vec![0];
        let mut f = OffsetFetchRequest::default();
        f.group_id = group.clone();
        f.topics = Some(vec![t]);
        f.require_stable = stable;
        f
    };
    let fetched = |r: &OffsetFetchResponse| {
        (
            r.topics[0].partitions[0].error_code,
            r.topics[0].partitions[0].committed_offset,
        )
    };
    assert_eq!(
        fetched(&w.call(7, &fetch(true)).await),
        (88, -1),
        "UNSTABLE_OFFSET_COMMIT"
    );
    assert_eq!(fetched(&w.call(7, &fetch(false)).await), (0, -1), "not committed yet");

    let mut end = EndTxnRequest::default();
    assert_eq!(w.call(3, &end).await.error_code, 42, "an empty id is INVALID_REQUEST");
    end.transactional_id = id.clone();
    end.producer_id = pid;
    end.producer_epoch = epoch;
    end.committed = true;
    assert_eq!(w.call(3, &end).await.error_code, 0);
    // The markers follow EndTxn's answer; the offset is visible once they land.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fetched(&w.call(7, &fetch(true)).await) != (0, 7) {
        assert!(
            std::time::Instant::now() < deadline,
            "the commit marker never made the offset visible"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.restart(|_| {}).await;
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    assert_eq!(
        fetched(&w.call(7, &fetch(true)).await),
        (0, 7),
        "replayed after a restart"
    );
}

fn state_of(broker: &TestBroker, id: &str) -> Option<strom::txn::state::TransactionState> {
    let running = broker.running.as_ref().unwrap();
    running.broker.transactions.metadata(id).ok().flatten().map(|m| m.state)
}

/// A producer that goes quiet with a transaction open: past its
/// transaction.timeout.ms the broker aborts it (ABORT marker, epoch bump), the
/// LSO moves past its records, and the producer, back, is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_past_its_timeout_is_aborted_by_the_broker() {
    use strom::txn::state::TransactionState;
    let broker = TestBroker::start_with(|c| c.transaction_abort_interval_ms = 100).await;
    let bs = broker.bootstrap();
    let topic = "txn-forgotten";
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, topic, 1, &[]).await;
    let b = bs.clone();
    let p = tokio::task::spawn_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("transactional.id", "forgetful")
            .set("transaction.timeout.ms", "3000")
            .set("message.timeout.ms", "3000")
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p.begin_transaction().unwrap();
        for i in 0..4 {
            let v = format!("left-{i}");
            p.send(BaseRecord::<(), _>::to(topic).partition(0).payload(&v)).unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
        p
    })
    .await
    .unwrap();
    assert_eq!(
        last_stable_offset(&mut w, topic, 0).await,
        0,
        "open: the LSO is its first offset"
    );
    common::group::eventually(20, "the broker aborts the timed-out transaction", || {
        state_of(&broker, "forgetful") == Some(TransactionState::CompleteAbort)
    })
    .await;
    assert_eq!(
        last_stable_offset(&mut w, topic, 0).await,
        5,
        "the LSO is past the four records and the ABORT marker"
    );
    let b = bs.clone();
    let values = tokio::task::spawn_blocking(move || read_all(&b, topic, "read_committed"))
        .await
        .unwrap();
    assert!(values.is_empty(), "aborted records are not read: {values:?}");
    let uncommitted = tokio::task::spawn_blocking(move || read_all(&bs, topic, "read_uncommitted"))
        .await
        .unwrap();
    assert_eq!(uncommitted.len(), 4);
    // The producer, back, finds its epoch bumped: it cannot commit.
    let committed = tokio::task::spawn_blocking(move || p.commit_transaction(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(committed.is_err(), "a fenced producer's commit must fail");
}

/// A crash between the coordinator's decision (PrepareCommit / PrepareAbort in
/// `__transaction_state`) and its markers: the next start writes the markers
/// and completes both transactions. The crash is reproduced on disk exactly: two
/// producers leave transactions open, the broker stops, and the decision
/// records the coordinator would have written are appended to its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_made_before_a_crash_get_their_markers_at_start() {
    use strom::txn::state::TransactionState;
    use strom::txn::state_manager::TransactionStateManager;
    let mut broker = TestBroker::start().await;
    let topic = "txn-decided";
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, topic, 1, &[]).await;
    let bs = broker.bootstrap();
    tokio::task::spawn_blocking(move || {
        for (id, n) in [("to-commit", 5), ("to-abort", 3)] {
            let p = common::transactional_producer(&bs, id);
            p.init_transactions(Duration::from_secs(30)).unwrap();
            p.begin_transaction().unwrap();
            for i in 0..n {
                let v = format!("{id}-{i}");
                p.send(BaseRecord::<(), _>::to(topic).partition(0).payload(&v)).unwrap();
            }
            p.flush(Duration::from_secs(30)).unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(state_of(&broker, "to-commit"), Some(TransactionState::Ongoing));
    broker.stop().await;
    {
        let logs = std::sync::Arc::new(
            strom::log::manager::LogManager::open(&broker.data_dir(), Default::default(), 0).unwrap(),
        );
        let store = TransactionStateManager::open(logs).unwrap();
        for (id, decision) in [
            ("to-commit", TransactionState::PrepareCommit),
            ("to-abort", TransactionState::PrepareAbort),
        ] {
            let decided = store.get(id).unwrap().transition(decision, 1).unwrap();
            store.write(id, Some(&decided), 1).unwrap();
        }
    }
    broker.restart(|_| {}).await;
    assert_eq!(state_of(&broker, "to-commit"), Some(TransactionState::CompleteCommit));
    assert_eq!(state_of(&broker, "to-abort"), Some(TransactionState::CompleteAbort));
    let bs = broker.bootstrap();
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    assert_eq!(
        last_stable_offset(&mut w, topic, 0).await,
        10,
        "8 records and 2 markers, all stable"
    );
    let values = tokio::task::spawn_blocking(move || read_all(&bs, topic, "read_committed"))
        .await
        .unwrap();
    let expected: Vec<String> = (0..5).map(|i| format!("to-commit-{i}")).collect();
    assert_eq!(values, expected, "the committed transaction only");
}

/// Transactional records need a transactional id (Kafka answers
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED); a producer id the coordinator never
/// gave this id is refused (INVALID_PRODUCER_ID_MAPPING) and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_records_need_their_producers_transaction() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use strom::record::batch::{encode_batch, BatchHeader, BATCH_HEADER_LEN, TRANSACTIONAL_BIT};
    let broker = TestBroker::start().await;
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    common::wire::create_topic(&mut w, "guarded", 1, &[]).await;
    let transactional = |pid: i64| {
        let b = common::wire::batch(2, pid, 0, 1_000);
        let mut h = BatchHeader::parse(&b).unwrap();
        h.attributes |= TRANSACTIONAL_BIT;
        bytes::Bytes::from(encode_batch(&h, &b[BATCH_HEADER_LEN..]))
    };
    let (code, _) = common::wire::produce(&mut w, "guarded", 0, transactional(5)).await;
    assert_eq!(code, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED");
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(StrBytes::from_static_str("real")));
    init.transaction_timeout_ms = 60_000;
    assert_eq!(w.call(4, &init).await.error_code, 0);
    for pid in 1_000..1_010 {
        let mut r = common::wire::produce_request("guarded", 0, transactional(pid), -1);
        r.transactional_id = Some(TransactionalId(StrBytes::from_static_str("real")));
        let answer = w.call(9, &r).await;
        assert_eq!(answer.responses[0].partition_responses[0].error_code, 49);
    }
    assert_eq!(common::wire::list_offset(&mut w, "guarded", 0, -1).await, (0, 0));
}

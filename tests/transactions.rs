//! Transactions with librdkafka: a transactional producer's commits and aborts,
//! as read_committed and read_uncommitted consumers see them.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

fn transactional_producer(bootstrap: &str, id: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer")
}

/// Every value in partition 0 of `topic` with `isolation`, until `end` offsets.
fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
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
        let p = transactional_producer(&bs, "orders-service");
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
        let first = transactional_producer(&bs, "zombie");
        first.init_transactions(Duration::from_secs(30)).unwrap();
        first.begin_transaction().unwrap();
        first
            .send(BaseRecord::<(), _>::to("fenced").partition(0).payload("old"))
            .unwrap();
        first.flush(Duration::from_secs(30)).unwrap();
        let second = transactional_producer(&bs, "zombie");
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

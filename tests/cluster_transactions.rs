//! Transactions across a cluster (issue 17, stage 8): the coordinator of a
//! transactional id is the leader of its `__transaction_state` partition;
//! a transaction writes to partitions led by all three brokers, and to a
//! group's offsets on yet another coordinator; markers reach every leader
//! (WriteTxnMarkers); read_committed sees exactly the committed
//! transactions, across kill -9 of the transaction coordinator's broker.
//! Three strom processes on 127.0.1.1–3 and etcd on 127.0.2.1–3.
#![cfg(feature = "cluster")]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::etcd::Etcd;
use common::wire::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;
const T: Duration = Duration::from_secs(30);

/// Every value of `topic` with `isolation`, once each partition's end is reached.
fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> BTreeSet<String> {
    let c = common::isolated_reader(bootstrap, isolation);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut values = BTreeSet::new();
    let mut ended = BTreeSet::new();
    let deadline = Instant::now() + T;
    while ended.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "{isolation}: partitions {ended:?} ended within 30 s (a stuck last stable offset?)"
        );
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                assert!(values.insert(value.clone()), "{value} read twice");
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => eprintln!("{isolation}: {e}"),
            None => {}
        }
    }
    values
}

/// `rounds` transactions of one record per partition; even rounds commit,
/// odd ones abort. Returns the values committed.
fn transact(producer: &ThreadedProducer<DefaultProducerContext>, tag: &str, rounds: usize) -> BTreeSet<String> {
    let mut committed = BTreeSet::new();
    for round in 0..rounds {
        producer.begin_transaction().unwrap();
        let values: Vec<String> = (0..PARTITIONS).map(|p| format!("{tag}-{round}-{p}")).collect();
        for (p, v) in values.iter().enumerate() {
            producer
                .send(BaseRecord::<(), _>::to("ledger").partition(p as i32).payload(v))
                .unwrap();
        }
        producer.flush(T).unwrap();
        if round % 2 == 0 {
            producer.commit_transaction(T).expect("commit");
            committed.extend(values);
        } else {
            producer.abort_transaction(T).expect("abort");
        }
    }
    committed
}

/// (error code, node) of FindCoordinator for a transactional id, asked of `node`.
async fn transaction_coordinator(c: &Cluster, node: i32, id: &str) -> (i16, i32) {
    let mut w = Wire::connect(c.addr(node)).await;
    let mut r = kafka_protocol::messages::FindCoordinatorRequest::default();
    r.key = kafka_protocol::protocol::StrBytes::from_string(id.to_string());
    r.key_type = 1;
    let answer = w.call(3, &r).await;
    (answer.error_code, answer.node_id.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_span_the_brokers_and_survive_their_coordinator() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let settings = [
        "--override",
        "transaction.state.log.num.partitions=6",
        "--override",
        "offsets.topic.num.partitions=6",
    ];
    let (mut c, _) = ready_with(&etcd, "txn", 3, &settings).await;
    let all = bootstrap(&c, &[1, 2, 3]);
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "ledger", PARTITIONS, 3, &[]).await;
    let told = until_told(&c, &[1, 2, 3], "ledger", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == PARTITIONS as usize && ps.values().all(|p| p.isr.len() == 3))
    })
    .await;
    let leaders: BTreeSet<i32> = told.unwrap().values().map(|p| p.leader).collect();
    assert_eq!(leaders.len(), 3, "the transaction writes to partitions of every broker");

    // Ten transactions through all three brokers' partitions.
    let bs = all.clone();
    let (producer, mut committed) = tokio::task::spawn_blocking(move || {
        let producer = common::transactional_producer(&bs, "ledger-writer");
        producer.init_transactions(T).expect("init_transactions");
        let committed = transact(&producer, "a", 10);
        (producer, committed)
    })
    .await
    .unwrap();
    let bs = all.clone();
    let (read_committed, read_uncommitted) = tokio::task::spawn_blocking(move || {
        (
            read_all(&bs, "ledger", "read_committed"),
            read_all(&bs, "ledger", "read_uncommitted"),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        read_committed, committed,
        "read_committed: exactly the committed transactions"
    );
    assert_eq!(read_uncommitted.len(), 60, "read_uncommitted: the aborted ones too");

    // The coordinator's broker dies mid-stream: the id's partition gets a new
    // leader, which loads the id and finishes what was decided; the producer
    // (a new one, as after a crash) fences the old and goes on.
    let (code, coordinator) = transaction_coordinator(&c, 1, "ledger-writer").await;
    assert_eq!(code, 0);
    drop(producer);
    c.stop(coordinator).expect("running").kill9();
    let survivors: Vec<i32> = (1..=3).filter(|n| *n != coordinator).collect();
    let started = Instant::now();
    loop {
        let (code, node) = transaction_coordinator(&c, survivors[0], "ledger-writer").await;
        if code == 0 && node != coordinator {
            break;
        }
        assert!(
            started.elapsed() < LONG,
            "no new transaction coordinator: {code} {node}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bs = bootstrap(&c, &survivors);
    let more = tokio::task::spawn_blocking(move || {
        let producer = common::transactional_producer(&bs, "ledger-writer");
        producer
            .init_transactions(T)
            .expect("init_transactions after the failover");
        transact(&producer, "b", 6)
    })
    .await
    .unwrap();
    committed.extend(more);
    let bs = bootstrap(&c, &survivors);
    let (read_committed, read_uncommitted) = tokio::task::spawn_blocking(move || {
        (
            read_all(&bs, "ledger", "read_committed"),
            read_all(&bs, "ledger", "read_uncommitted"),
        )
    })
    .await
    .unwrap();
    assert_eq!(read_committed, committed, "read_committed after the failover");
    assert_eq!(read_uncommitted.len(), 60 + 36);
    // strom's consumer prints records, never the transactions' markers.
    let bs = bootstrap(&c, &survivors);
    let (ok, out, err) = common::strom_cli(
        &["consume", "ledger", "--from-beginning", "--bootstrap-server", &bs],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 60 + 36, "{out}");

    // Offsets committed in a transaction (consume-transform-produce): the
    // group's coordinator verifies with the transaction's, and the marker
    // completes them there.
    let bs = bootstrap(&c, &survivors);
    let offsets = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", "ledger-processor")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let producer = common::transactional_producer(&bs, "ledger-processor");
        producer.init_transactions(T).expect("init_transactions");
        producer.begin_transaction().unwrap();
        producer
            .send(BaseRecord::<(), _>::to("ledger").partition(0).payload("processed"))
            .unwrap();
        let mut position = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            position.add_partition_offset("ledger", p, Offset::Offset(7)).unwrap();
        }
        let group = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&position, &group, T)
            .expect("offsets in the transaction");
        producer.commit_transaction(T).expect("commit with offsets");
        let committed = consumer.committed_offsets(position, T).expect("committed offsets");
        committed.elements().iter().map(|e| e.offset()).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(offsets, vec![Offset::Offset(7); PARTITIONS as usize]);
    c.terminate_all();
}

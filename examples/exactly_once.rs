//! Exactly-once consume-transform-produce against a running strom (or Kafka):
//!
//! ```console
//! $ cargo run --release                               # the broker, in one terminal
//! $ cargo run --example exactly_once                   # this, in another
//! ```
//!
//! It writes ten payments, then doubles each one into `payments.doubled` inside
//! transactions of five that also commit the consumer's offsets
//! (`send_offsets_to_transaction`). The second transaction is aborted on purpose:
//! its output stays in the log but read_committed consumers skip it, and the
//! group's offset does not move, so the same payments are processed again by the
//! third transaction. At the end it prints what each isolation level reads.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// Every value of partition 0 of `topic` as a consumer with `isolation` reads it.
fn read(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = config(bootstrap)
        .set("group.id", "exactly-once-reader")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    c.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    loop {
        match c.poll(T) {
            Some(Ok(m)) => values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => return values,
            Some(Err(e)) => panic!("{e}"),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let bootstrap = std::env::args().nth(1).unwrap_or_else(|| "localhost:9092".into());
    let suffix = std::process::id();
    let (input, output) = (format!("payments-{suffix}"), format!("payments.doubled-{suffix}"));
    let admin: AdminClient<DefaultClientContext> = config(&bootstrap).create().expect("admin");
    let topics = [&input, &output].map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)));
    admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .expect("create topics");

    let plain: ThreadedProducer<DefaultProducerContext> = config(&bootstrap).create().expect("producer");
    for amount in 1..=10 {
        let v = amount.to_string();
        plain
            .send(BaseRecord::<(), _>::to(&input).partition(0).payload(&v))
            .expect("send");
    }
    plain.flush(T).expect("flush");

    let consumer: BaseConsumer = config(&bootstrap)
        .set("group.id", format!("doubler-{suffix}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&input]).expect("subscribe");
    let producer: ThreadedProducer<DefaultProducerContext> = config(&bootstrap)
        .set("transactional.id", format!("doubler-{suffix}"))
        .create()
        .expect("transactional producer");
    producer.init_transactions(T).expect("init_transactions");

    for (round, commit) in [(1, true), (2, false), (3, true)] {
        producer.begin_transaction().expect("begin");
        let mut taken = 0;
        let deadline = std::time::Instant::now() + T;
        while taken < 5 {
            assert!(std::time::Instant::now() < deadline, "no input within {T:?}");
            // (None also when the poll served a rebalance rather than a record.)
            let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let m = m.expect("consume");
            let amount: i64 = String::from_utf8_lossy(m.payload().unwrap_or_default())
                .parse()
                .expect("number");
            let doubled = (2 * amount).to_string();
            producer
                .send(BaseRecord::<(), _>::to(&output).partition(0).payload(&doubled))
                .expect("send");
            taken += 1;
        }
        producer.flush(T).expect("flush");
        let position = consumer.position().expect("position");
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&position, &metadata, T)
            .expect("send offsets");
        if commit {
            producer.commit_transaction(T).expect("commit");
            println!("transaction {round}: committed");
        } else {
            producer.abort_transaction(T).expect("abort");
            // The group's committed offset did not move: start again from it.
            let committed = consumer.committed(T).expect("committed offsets");
            for p in committed.elements() {
                consumer.seek(p.topic(), p.partition(), p.offset(), T).expect("seek");
            }
            println!("transaction {round}: aborted, back to the committed offset");
        }
    }
    println!("read_committed:   {:?}", read(&bootstrap, &output, "read_committed"));
    println!("read_uncommitted: {:?}", read(&bootstrap, &output, "read_uncommitted"));
}

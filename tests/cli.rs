//! `strom groups list|describe` against a running broker.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

fn strom(args: &[&str]) -> (bool, String, String) {
    common::strom_cli(args, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_list_and_describe_show_offsets_and_lag() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let p = producer(&bootstrap, &[]);
    for i in 0..25 {
        let v = format!("v{i}");
        p.send(
            FutureRecord::to("lagging").key("k").payload(&v),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    // A consumer in group "strom-tests" commits offset 10: 15 behind.
    let c = consumer(&bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("lagging", 0, Offset::Offset(10)).unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();

    let bs = bootstrap.as_str();
    let (ok, out, err) = tokio::task::spawn_blocking({
        let bs = bs.to_string();
        move || strom(&["groups", "list", "--bootstrap-server", &bs])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("strom-tests") && l.contains("Empty")),
        "{out}"
    );

    let (ok, out, err) = tokio::task::spawn_blocking({
        let bs = bs.to_string();
        move || strom(&["groups", "describe", "strom-tests", "--bootstrap-server", &bs])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("lagging"))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(&row[..5], &["lagging", "0", "10", "25", "15"], "{out}");
}

#[test]
fn an_unreachable_broker_is_a_clear_error() {
    let (ok, _, err) = strom(&["groups", "list", "--bootstrap-server", "127.0.0.1:1"]);
    assert!(!ok);
    assert!(err.contains("cannot reach a broker at 127.0.0.1:1"), "{err}");
}

/// Run the CLI off the async threads (the broker shares them).
async fn run(args: Vec<String>, input: &str) -> (bool, String, String) {
    let input = input.to_string();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        common::strom_cli(&refs, &input)
    })
    .await
    .unwrap()
}

fn args(bootstrap: &str, words: &str) -> Vec<String> {
    let mut v: Vec<String> = words.split_whitespace().map(String::from).collect();
    v.push("--bootstrap-server".into());
    v.push(bootstrap.into());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_produce_consume_and_reset_offsets_from_the_cli() {
    let broker = TestBroker::start().await;
    let bs = broker.bootstrap();
    let (ok, out, err) = run(
        args(
            &bs,
            "topics create orders --partitions 3 --config retention.ms=86400000",
        ),
        "",
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("Created topic orders with 3 partition(s)"), "{out}");
    let (ok, _, err) = run(args(&bs, "topics create orders"), "").await;
    assert!(!ok && err.contains("TopicAlreadyExists"), "{err}");

    let (ok, out, _) = run(args(&bs, "topics list --json"), "").await;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "orders");
    assert_eq!(v[0]["partitions"], 3);
    assert_eq!(v[0]["topicId"].as_str().unwrap().len(), 22);

    let (ok, _, err) = run(args(&bs, "produce orders -K :"), "k1:one\nk2:two\nk1:three\n").await;
    assert!(ok && err.contains("Produced 3 record(s)"), "{err}");
    let (ok, out, _) = run(args(&bs, "consume orders --from-beginning -K ="), "").await;
    assert!(ok);
    let mut lines: Vec<&str> = out.lines().collect();
    // k1's records share a partition, in order.
    let k1: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("k1=")).collect();
    assert_eq!(k1, vec!["k1=one", "k1=three"]);
    lines.sort();
    assert_eq!(lines, vec!["k1=one", "k1=three", "k2=two"]);

    let (ok, out, _) = run(
        args(
            &bs,
            "topics alter orders --partitions 4 --config retention.bytes=5000 --delete-config retention.ms",
        ),
        "",
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out, _) = run(args(&bs, "topics describe orders --json"), "").await;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(v["configs"]["retention.bytes"], "5000");
    assert!(v["configs"].get("retention.ms").is_none());

    // reset-offsets: a dry run changes nothing; --execute commits.
    let (ok, out, _) = run(
        args(&bs, "groups reset-offsets --group g --topic orders --to-latest"),
        "",
    )
    .await;
    assert!(ok && out.contains("Dry run"), "{out}");
    let (ok, out, _) = run(args(&bs, "groups list --json"), "").await;
    assert!(ok && !out.contains("\"g\""), "{out}");
    let (ok, out, _) = run(
        args(
            &bs,
            "groups reset-offsets --group g --topic orders --to-latest --execute --json",
        ),
        "",
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out, _) = run(args(&bs, "groups describe g --json"), "").await;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let total: i64 = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["currentOffset"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3);
    assert!(v["partitions"].as_array().unwrap().iter().all(|p| p["lag"] == 0));
    let (ok, _, _) = run(
        args(
            &bs,
            "groups reset-offsets --group g --topic orders --to-datetime 1970-01-01T00:00:00Z --execute",
        ),
        "",
    )
    .await;
    assert!(ok);
    let (_, out, _) = run(args(&bs, "groups describe g --json"), "").await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["currentOffset"] == 0));
    let (ok, _, _) = run(args(&bs, "groups delete g"), "").await;
    assert!(ok);

    let (ok, _, _) = run(args(&bs, "topics delete orders"), "").await;
    assert!(ok);
    let (ok, _, err) = run(args(&bs, "topics describe orders"), "").await;
    assert!(!ok && err.contains("UnknownTopicOrPartition"), "{err}");
    let (ok, _, err) = run(args(&bs, "topics create bad --config retention.ms=soon"), "").await;
    assert!(!ok && err.contains("InvalidConfig"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_describe_and_alter_topics_brokers_and_broker_defaults() {
    let broker = TestBroker::start().await;
    let bs = broker.bootstrap();
    let (ok, _, err) = run(args(&bs, "topics create cfg"), "").await;
    assert!(ok, "{err}");
    for (target, key, value) in [
        ("--topic cfg", "retention.ms", "1000"),
        ("--broker 0", "log.retention.bytes", "1073741824"),
        ("--broker-defaults", "log.segment.bytes", "104857600"),
    ] {
        let (ok, out, err) = run(args(&bs, &format!("configs alter {target} --set {key}={value}")), "").await;
        assert!(ok && out.contains("Altered the configs of"), "{target}: {err}");
        let (ok, out, err) = run(args(&bs, &format!("configs describe {target} --json")), "").await;
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let entry = v.as_array().unwrap().iter().find(|e| e["name"] == key).expect(key);
        assert_eq!(entry["value"], value, "{target}");
        assert!(entry["source"].as_str().unwrap().starts_with("DYNAMIC_"), "{entry}");
    }
    // A topic follows the broker's dynamic setting, shown with its source.
    let (ok, out, _) = run(args(&bs, "configs describe --topic cfg --all"), "").await;
    assert!(ok);
    let line = out.lines().find(|l| l.starts_with("retention.bytes ")).unwrap();
    assert!(
        line.contains("1073741824") && line.contains("DYNAMIC_BROKER_CONFIG"),
        "{line}"
    );
    // Deleting returns to the next layer; a static-only config is refused.
    let (ok, _, err) = run(args(&bs, "configs alter --topic cfg --delete retention.ms"), "").await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(args(&bs, "configs alter --broker 0 --set num.partitions=4"), "").await;
    assert!(!ok && err.contains("Cannot update these configs dynamically"), "{err}");
    let (ok, _, err) = run(args(&bs, "configs describe --topic cfg --broker 0"), "").await;
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

/// `strom transactions list|describe` and `strom producers describe` while a
/// transaction is open, then after it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_producers_from_the_cli() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let broker = TestBroker::start().await;
    let bs = broker.bootstrap();
    let (ok, _, err) = run(args(&bs, "topics create payments"), "").await;
    assert!(ok, "{err}");
    let b = bs.clone();
    let p = tokio::task::spawn_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("transactional.id", "payments-writer")
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p.begin_transaction().unwrap();
        for _ in 0..3 {
            p.send(BaseRecord::<(), _>::to("payments").partition(0).payload("x"))
                .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
        p
    })
    .await
    .unwrap();

    let (ok, out, err) = run(args(&bs, "transactions list --json"), "").await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["transactionalId"], "payments-writer");
    assert_eq!(v[0]["state"], "Ongoing");
    let (ok, out, _) = run(args(&bs, "transactions list --state CompleteCommit"), "").await;
    assert!(ok && !out.contains("payments-writer"), "{out}");
    let (ok, _, err) = run(args(&bs, "transactions list --state Bogus"), "").await;
    assert!(!ok && err.contains("unknown transaction state"), "{err}");

    let (ok, out, err) = run(args(&bs, "transactions describe payments-writer --json"), "").await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "Ongoing");
    assert_eq!(v["partitions"][0]["topic"], "payments");
    let (ok, out, _) = run(args(&bs, "transactions describe payments-writer"), "").await;
    assert!(
        ok && out.contains("TRANSACTIONAL-ID") && out.contains("payments-0"),
        "{out}"
    );

    let (ok, out, err) = run(args(&bs, "producers describe payments 0 --json"), "").await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["currentTransactionStartOffset"], 0, "{out}");
    assert_eq!(v[0]["lastSequence"], 2);

    tokio::task::spawn_blocking(move || p.commit_transaction(Duration::from_secs(30)).unwrap())
        .await
        .unwrap();
    let (ok, out, _) = run(args(&bs, "transactions describe payments-writer --json"), "").await;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "CompleteCommit");
    let (ok, out, _) = run(args(&bs, "producers describe payments 0"), "").await;
    assert!(ok && out.contains("CURRENT-TXN-START-OFFSET"), "{out}");
    let (ok, _, err) = run(args(&bs, "producers describe nowhere 0"), "").await;
    assert!(!ok && err.contains("UnknownTopicOrPartition"), "{err}");
}

/// `strom cluster status` on a single broker: itself, controlling itself, and
/// no unhealthy partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_of_a_single_broker() {
    let broker = TestBroker::start().await;
    let bs = broker.bootstrap();
    run(args(&bs, "topics create status-t --partitions 2"), "").await;
    let (ok, out, err) = run(args(&bs, "cluster status --json"), "").await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["controller"], 0);
    assert_eq!(v["brokers"].as_array().unwrap().len(), 1);
    assert_eq!(v["brokers"][0]["controller"], true);
    assert_eq!(v["offlinePartitions"].as_array().unwrap().len(), 0);
    assert_eq!(v["underReplicatedPartitions"].as_array().unwrap().len(), 0);
    let (ok, out, _) = run(args(&bs, "cluster status"), "").await;
    assert!(ok);
    assert!(out.contains("controller 0") && out.contains("controller\n"), "{out}");
    assert!(out.contains("under-replicated partitions: 0"), "{out}");
}

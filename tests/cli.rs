//! `strom groups list|describe` against a running broker.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

fn strom(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strom")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
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

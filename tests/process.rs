//! The real binary as a process: kill -9 and restart, SIGTERM and clean shutdown.

mod common;

use std::time::Duration;

use common::process::BrokerProcess;
use common::*;
use rdkafka::producer::FutureRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::spawn(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    let p = producer(&bootstrap, &[("acks", "all"), ("linger.ms", "1")]);
    let mut acked = 0;
    for i in 0..1500 {
        let value = format!("record-{i}");
        let r = FutureRecord::to("crash").key("k").payload(&value);
        if p.send(r, Duration::from_secs(10)).await.is_ok() {
            acked += 1;
        }
    }
    assert_eq!(acked, 1500);
    drop(p);
    broker.kill9();
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());

    let port = broker.port;
    drop(broker);
    let mut broker = BrokerProcess::spawn_on(dir.path(), port, &[]);
    let consumed = consume(&bootstrap, "crash", 1, 1500).await;
    for (i, r) in consumed.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(format!("record-{i}").as_bytes()));
    }
    broker.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::spawn(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    let p = producer(&bootstrap, &[]);
    let r = FutureRecord::to("calm").key("k").payload("v");
    p.send(r, Duration::from_secs(10)).await.unwrap();
    drop(p);
    let status = broker.terminate();
    assert!(status.success(), "exit status {status:?}: {}", broker.log_text());
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    assert!(dir.path().join("meta.properties").exists());
}

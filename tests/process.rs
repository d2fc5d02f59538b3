//! The real binary as a process: kill -9 and restart, SIGTERM and clean shutdown.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::producer::FutureRecord;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(dir: &Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--advertised-listener", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = spawn(dir.path(), port);
    let bootstrap = format!("127.0.0.1:{port}");
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
    broker.kill().unwrap(); // SIGKILL: no clean shutdown
    broker.wait().unwrap();
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());

    let mut broker = spawn(dir.path(), port);
    let consumed = consume(&bootstrap, "crash", 1, 1500).await;
    for (i, r) in consumed.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(format!("record-{i}").as_bytes()));
    }
    broker.kill().unwrap();
    broker.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = spawn(dir.path(), port);
    let bootstrap = format!("127.0.0.1:{port}");
    let p = producer(&bootstrap, &[]);
    let r = FutureRecord::to("calm").key("k").payload("v");
    p.send(r, Duration::from_secs(10)).await.unwrap();
    drop(p);
    let status = Command::new("kill")
        .args(["-TERM", &broker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = broker.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    assert!(dir.path().join("meta.properties").exists());
}

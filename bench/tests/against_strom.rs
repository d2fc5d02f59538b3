//! strom-bench against a real strom: every command runs to the end, counts what it
//! sent and received, and prints JSON with the fields docs/BENCHMARKS.md reads.

use std::process::Command;

use serde_json::Value;

async fn broker() -> (strom::RunningBroker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = strom::config::Config::for_dir(dir.path());
    (strom::start(config).await.unwrap(), dir)
}

/// Run strom-bench with `args` against `bootstrap` on a blocking thread; its JSON.
async fn bench(bootstrap: String, args: &[&str]) -> Value {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_strom-bench"))
            .args(["--json", "-b", &bootstrap])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "strom-bench {args:?} failed: {stderr}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_runs_produce_consume_and_latency() {
    let (running, _dir) = broker().await;
    let report = bench(
        running.addr().to_string(),
        &[
            "all",
            "--records",
            "3000",
            "--record-size",
            "100",
            "--partitions",
            "3",
            "--latency-rate",
            "500",
            "--latency-seconds",
            "1",
        ],
    )
    .await;
    let runs = report["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["produce acks=1", "produce acks=all", "consume", "latency"]);
    for r in &runs[..3] {
        assert_eq!(r["records"], 3000, "{r}");
        assert_eq!(r["bytes"], 300_000, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["msgs_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        // The broker is this test process, found by its listening port.
        assert!(r["broker_cpu_s"].as_f64().unwrap() >= 0.0, "{r}");
        assert!(r["broker_cpu_s_per_gb"].as_f64().is_some(), "{r}");
    }
    // The consumer read the acks=1 run's topic.
    assert_eq!(runs[2]["topic"], runs[0]["topic"]);
    let latency = &runs[3];
    assert_eq!(latency["records"], 500, "{latency}");
    assert_eq!(latency["errors"], 0, "{latency}");
    let l = &latency["latency_ms"];
    let (p50, p99, max) = (
        l["p50"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{l}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_with_several_producers_and_a_codec_then_consume_a_given_count() {
    let (running, _dir) = broker().await;
    let b = running.addr().to_string();
    let produced = bench(
        b.clone(),
        &[
            "produce",
            "--topic",
            "bench-zstd",
            "--partitions",
            "2",
            "--records",
            "2001",
            "--record-size",
            "64",
            "--producers",
            "3",
            "--compression",
            "zstd",
            "--acks",
            "all",
        ],
    )
    .await;
    let p = &produced["runs"][0];
    assert_eq!(
        (p["records"].as_u64(), p["errors"].as_u64()),
        (Some(2001), Some(0)),
        "{p}"
    );
    let consumed = bench(b, &["consume", "--topic", "bench-zstd", "--records", "1500"]).await;
    let c = &consumed["runs"][0];
    assert_eq!(
        (c["records"].as_u64(), c["bytes"].as_u64()),
        (Some(1500), Some(1500 * 64)),
        "{c}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_produce_then_both_isolation_levels() {
    let (running, _dir) = broker().await;
    let b = running.addr().to_string();
    let produced = bench(
        b.clone(),
        &[
            "produce",
            "--topic",
            "bench-txn",
            "--partitions",
            "2",
            "--records",
            "1050",
            "--record-size",
            "64",
            "--producers",
            "2",
            "--transaction-size",
            "100",
        ],
    )
    .await;
    let p = &produced["runs"][0];
    assert_eq!(p["name"], "produce transactions of 100", "{p}");
    assert_eq!(
        (p["records"].as_u64(), p["errors"].as_u64()),
        (Some(1050), Some(0)),
        "{p}"
    );
    for isolation in ["read_committed", "read_uncommitted"] {
        let consumed = bench(
            b.clone(),
            &[
                "consume",
                "--topic",
                "bench-txn",
                "--records",
                "1050",
                "--isolation",
                isolation,
            ],
        )
        .await;
        let c = &consumed["runs"][0];
        assert_eq!(c["records"].as_u64(), Some(1050), "{isolation}: {c}");
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_topic_is_an_error_not_a_hang() {
    let (running, _dir) = broker().await;
    let b = running.addr().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_strom-bench"))
            .args(["-b", &b, "consume", "--topic", "nothing-here", "--idle-timeout-s", "1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UnknownTopicOrPartition"),
        "{out:?}"
    );
    running.shutdown().await.unwrap();
}

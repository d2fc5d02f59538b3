//! See inside: /metrics against known traffic, /health, the console's API with
//! its token and read-only modes, and the protocol trace.

mod common;

use std::time::Duration;

use common::group::{eventually, GroupMember};
use common::http::{self, get, sample, samples, write};
use common::{producer, TestBroker};
use rdkafka::producer::FutureRecord;
use strom::config::Config;

fn with_http(c: &mut Config) {
    c.observe.http_listen = Some("127.0.0.1:0".parse().unwrap());
}

async fn produce(bootstrap: &str, topic: &str, records: &[(&str, &str)]) {
    let p = producer(bootstrap, &[]);
    for (k, v) in records {
        p.send(FutureRecord::to(topic).key(*k).payload(*v), Duration::from_secs(10))
            .await
            .unwrap();
    }
}

/// The console's offset reset of group `billing`.
async fn reset_billing(h: std::net::SocketAddr, body: &str) -> http::HttpResponse {
    write(h, "POST", "/api/groups/billing/reset", Some(body)).await
}

async fn scrape(b: &TestBroker) -> String {
    let r = get(b.http(), "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_equal_what_was_produced_and_consumed() {
    let b = TestBroker::start_with(|c| {
        with_http(c);
        c.num_partitions = 2;
    })
    .await;
    assert_eq!(get(b.http(), "/health").await.body, "ok\n");
    let orders: Vec<(String, String)> = (0..20)
        .map(|i| (format!("user-{i}"), format!(r#"{{"orderId":{i},"totalPrice":{i}.5}}"#)))
        .collect();
    let refs: Vec<(&str, &str)> = orders.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    produce(&b.bootstrap(), "orders", &refs).await;

    let m = scrape(&b).await;
    let topic = r#"topic="orders""#;
    assert_eq!(
        sample(&m, "kafka_server_brokertopicmetrics_messagesin_total", topic),
        Some(20.0)
    );
    // Every byte producers sent is in the log (no compaction, no retention yet).
    let logged: f64 = samples(&m, "kafka_log_log_size")
        .iter()
        .filter(|(l, _)| l.contains(topic))
        .map(|(_, v)| v)
        .sum();
    assert!(logged > 0.0);
    assert_eq!(
        sample(&m, "kafka_server_brokertopicmetrics_bytesin_total", topic),
        Some(logged)
    );
    assert_eq!(
        sample(&m, "kafka_server_brokertopicmetrics_bytesin_total", ""),
        Some(logged)
    );
    let ends: f64 = samples(&m, "kafka_topic_partition_current_offset")
        .iter()
        .filter(|(l, _)| l.contains(topic))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(ends, 20.0);
    assert_eq!(sample(&m, "kafka_topic_partitions", topic), Some(2.0));
    assert_eq!(
        sample(&m, "kafka_server_replicamanager_underreplicatedpartitions", ""),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "kafka_controller_kafkacontroller_activecontrollercount", ""),
        Some(1.0)
    );
    assert_eq!(sample(&m, "kafka_brokers", ""), Some(1.0));
    assert!(sample(
        &m,
        "strom_request_duration_seconds_count",
        r#"api="Produce",version="11""#
    )
    .or(samples(&m, "strom_request_duration_seconds_count")
        .iter()
        .find(|(l, _)| l.contains(r#"api="Produce""#))
        .map(|s| s.1))
    .is_some_and(|n| n >= 1.0));
    assert!(sample(&m, "process_resident_memory_bytes", "").is_some_and(|v| v > 0.0));
    assert!(sample(&m, "strom_log_fsync_duration_seconds_count", "").is_some());

    // A group consumes everything and commits: lag goes to zero.
    let mut member = GroupMember::start(&b.bootstrap(), "shop", "orders", &[]);
    eventually(30, "all 20 orders consumed", || member.records().len() >= 20).await;
    let mut lag_zero = false;
    for _ in 0..100 {
        let m = scrape(&b).await;
        let committed: f64 = samples(&m, "kafka_consumergroup_current_offset")
            .iter()
            .filter(|(l, _)| l.contains(r#"consumergroup="shop""#))
            .map(|(_, v)| v)
            .sum();
        if committed == 20.0 {
            assert_eq!(
                sample(
                    &m,
                    "kafka_consumergroup_lag_sum",
                    r#"consumergroup="shop",topic="orders""#
                ),
                Some(0.0)
            );
            assert_eq!(
                sample(&m, "kafka_consumergroup_members", r#"consumergroup="shop""#),
                Some(1.0)
            );
            let out = sample(&m, "kafka_server_brokertopicmetrics_bytesout_total", topic).unwrap();
            assert!(out >= logged, "bytes out {out} < bytes in {logged}");
            assert!(sample(
                &m,
                "kafka_server_socket_server_metrics_connection_count",
                r#"listener="PLAINTEXT""#
            )
            .is_some_and(|n| n >= 1.0));
            lag_zero = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lag_zero, "the group's committed offsets never reached 20");
    member.stop().await;

    // Seven more, nobody consuming: the lag is seven.
    produce(
        &b.bootstrap(),
        "orders",
        &[
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("e", "5"),
            ("f", "6"),
            ("g", "7"),
        ],
    )
    .await;
    let m = scrape(&b).await;
    let lag: f64 = samples(&m, "kafka_consumergroup_lag")
        .iter()
        .filter(|(l, _)| l.contains(r#"consumergroup="shop""#))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(lag, 7.0);
    assert_eq!(
        sample(&m, "kafka_consumergroup_members", r#"consumergroup="shop""#),
        Some(0.0)
    );

    // Errors are counted by Kafka's name: librdkafka's first JoinGroup is
    // answered MEMBER_ID_REQUIRED (KIP-394).
    let m = get(b.http(), "/metrics").await.body;
    assert!(
        sample(
            &m,
            "strom_request_errors_total",
            r#"api="JoinGroup",error="MEMBER_ID_REQUIRED""#
        )
        .is_some_and(|n| n >= 1.0),
        "{m}"
    );

    // OpenMetrics for scrapers that ask for it.
    let om = http::request(
        b.http(),
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        None,
    )
    .await;
    assert!(om
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(om.body.ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_partition_and_per_group_series_can_be_switched_off() {
    let b = TestBroker::start_with(|c| {
        with_http(c);
        c.observe.partition_series = false;
        c.observe.group_series = false;
    })
    .await;
    produce(&b.bootstrap(), "quiet", &[("k", "v")]).await;
    let m = scrape(&b).await;
    assert_eq!(
        sample(&m, "kafka_server_brokertopicmetrics_messagesin_total", ""),
        Some(1.0)
    );
    assert!(!m.contains("topic=\"quiet\",partition"), "{m}");
    assert!(
        !m.contains("kafka_server_brokertopicmetrics_messagesin_total{topic"),
        "{m}"
    );
    assert!(!m.contains("kafka_consumergroup"), "{m}");
    assert!(!m.contains("kafka_log_log_size"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_creates_produces_browses_searches_and_resets() {
    let b = TestBroker::start_with(with_http).await;
    let h = b.http();
    // Changing requests need the console's header (a page elsewhere cannot add it).
    let r = http::request(h, "POST", "/api/topics", &[], Some(r#"{"name":"shop","partitions":2}"#)).await;
    assert_eq!(r.status, 403);
    let r = write(h, "POST", "/api/topics", Some(r#"{"name":"shop","partitions":2}"#)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Kafka's checks apply: it exists now.
    let r = write(h, "POST", "/api/topics", Some(r#"{"name":"shop","partitions":2}"#)).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("TopicAlreadyExists"), "{}", r.body);

    for i in 1..=3 {
        let body = format!(
            r#"{{"key":"user-{i}","value":"{{\"orderId\":{i},\"items\":[\"book\"]}}","headers":[{{"key":"source","value":"console"}}]}}"#
        );
        let r = write(h, "POST", "/api/topics/shop/records", Some(&body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let expected = strom::cli::partitioner::partition_for(format!("user-{i}").as_bytes(), 2);
        assert_eq!(
            v["partition"], expected,
            "the key's partition, as Kafka's default partitioner"
        );
    }
    let page = get(h, "/api/topics/shop/records?from=newest&limit=10").await.json();
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["headers"][0][0], "source");
    assert_eq!(records[0]["headers"][0][1]["text"], "console");
    assert!(page["reachedEnd"].as_bool().unwrap());

    // From a time: the hour before them holds them all.
    let an_hour_ago = strom::util::clock::now_ms() - 3_600_000;
    let since = get(
        h,
        &format!("/api/topics/shop/records?from=timestamp&timestamp={an_hour_ago}"),
    )
    .await
    .json();
    assert_eq!(since["records"].as_array().unwrap().len(), 3, "{since}");
    let later = strom::util::clock::now_ms() + 3_600_000;
    let none = get(h, &format!("/api/topics/shop/records?from=timestamp&timestamp={later}"))
        .await
        .json();
    assert_eq!(none["records"].as_array().unwrap().len(), 0, "{none}");
    // Pages of one record each show every record once.
    let mut seen = Vec::new();
    let mut positions = String::new();
    loop {
        let page = get(
            h,
            &format!("/api/topics/shop/records?from=earliest&limit=1&positions={positions}"),
        )
        .await
        .json();
        for r in page["records"].as_array().unwrap() {
            seen.push((r["partition"].as_i64().unwrap(), r["offset"].as_i64().unwrap()));
        }
        if page["reachedEnd"] == true {
            break;
        }
        positions = page["next"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(seen.len() <= 3, "{seen:?}");
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "{seen:?}");

    // Search: one match, and it says how much it scanned.
    let found = get(h, "/api/topics/shop/records?from=earliest&q=%22orderId%22:2")
        .await
        .json();
    assert_eq!(found["records"].as_array().unwrap().len(), 1);
    assert_eq!(found["records"][0]["key"]["text"], "user-2");
    assert_eq!(found["scanned"], 3);
    // A search bounded below what there is says it did not reach the end.
    let bounded = get(h, "/api/topics/shop/records?from=earliest&q=nothing&scanLimit=2")
        .await
        .json();
    assert_eq!(bounded["scanned"], 2);
    assert_eq!(bounded["reachedEnd"], false);

    // Configs: change one through the console, see its source.
    let r = write(
        h,
        "PUT",
        "/api/topics/shop/configs",
        Some(r#"{"set":{"retention.ms":"3600000"}}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = get(h, "/api/topics/shop").await.json();
    let retention = t["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap()
        .clone();
    assert_eq!(retention["value"], "3600000");
    assert_eq!(retention["source"], "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(t["partitions"].as_array().unwrap().len(), 2);
    let r = write(
        h,
        "PUT",
        "/api/topics/shop/configs",
        Some(r#"{"set":{"retention.ms":"soon"}}"#),
    )
    .await;
    assert_eq!(r.status, 400);

    // A group commits, leaves; reset: dry run changes nothing, execute does.
    let mut member = GroupMember::start(&b.bootstrap(), "billing", "shop", &[]);
    eventually(30, "3 orders consumed", || member.records().len() >= 3).await;
    member.stop().await;
    eventually(10, "the group committed", || true).await;
    let mut committed = 0;
    for _ in 0..100 {
        let g = get(h, "/api/groups/billing").await.json();
        committed = g["partitions"]
            .as_array()
            .map_or(0, |ps| ps.iter().filter_map(|p| p["currentOffset"].as_i64()).sum());
        if committed == 3 {
            assert_eq!(g["state"], "Empty");
            assert_eq!(g["totalLag"], 0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(committed, 3);
    let dry = reset_billing(h, r#"{"topic":"shop","to":"earliest"}"#).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    let dry = dry.json();
    assert_eq!(dry["executed"], false);
    assert!(dry["offsets"].as_array().unwrap().iter().all(|o| o["newOffset"] == 0));
    assert_eq!(get(h, "/api/groups/billing").await.json()["totalLag"], 0);
    let done = reset_billing(h, r#"{"topic":"shop","to":"earliest","execute":true}"#).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(get(h, "/api/groups/billing").await.json()["totalLag"], 3);
    let list = get(h, "/api/groups").await.json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == "billing" && g["totalLag"] == 3));

    // A member present: Kafka's rule refuses the reset.
    let mut member = GroupMember::start(&b.bootstrap(), "billing", "shop", &[]);
    eventually(30, "the member rejoined", || !member.assignment().is_empty()).await;
    let r = reset_billing(h, r#"{"topic":"shop","to":"latest","execute":true}"#).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("no members"), "{}", r.body);
    member.stop().await;

    // Delete the topic's offsets from the group, the group, the topic.
    let r = write(h, "DELETE", "/api/groups/billing/offsets/shop", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = write(h, "DELETE", "/api/groups/billing", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = write(h, "DELETE", "/api/topics/shop", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(h, "/api/topics/shop").await.status, 404);

    // Bad input: clear refusals, never a panic.
    for (method, path, body) in [
        ("POST", "/api/topics", Some("{not json")),
        ("POST", "/api/topics", Some(r#"{"name":"x","partitions":-3}"#)),
        ("POST", "/api/topics", Some(r#"{"name":"bad name!"}"#)),
        ("POST", "/api/topics/nope/records", Some(r#"{"value":"v"}"#)),
        ("PUT", "/api/topics/nope/configs", Some("{}")),
        ("POST", "/api/groups/g/reset", Some(r#"{"topic":"t","to":"sideways"}"#)),
    ] {
        let r = write(h, method, path, body).await;
        assert!(
            (400..500).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
    }
    for path in [
        "/api/topics/nope/records",
        "/api/topics/__consumer_offsets/records?from=offset",
        "/api/topics/__consumer_offsets/records?positions=zz",
        "/api/topics/__consumer_offsets/records?partition=99",
        "/api/groups/nobody",
        "/api/nothing",
    ] {
        let r = get(h, path).await;
        assert!((400..500).contains(&r.status), "{path}: {} {}", r.status, r.body);
    }
    // Bookmarkable views are the console's page.
    for path in ["/", "/topics", "/topics/shop", "/groups/billing", "/trace"] {
        let r = get(h, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.contains("/assets/app.js"));
    }
    assert!(get(h, "/assets/app.js").await.body.contains("EventSource"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_token_and_read_only_refuse_what_they_should() {
    let b = TestBroker::start_with(|c| {
        with_http(c);
        c.observe.console_token = Some("s3cret".into());
    })
    .await;
    let h = b.http();
    assert_eq!(get(h, "/api/topics").await.status, 401);
    assert_eq!(get(h, "/").await.status, 401);
    assert_eq!(
        http::request(h, "GET", "/api/topics", &[("Authorization", "Bearer wrong")], None)
            .await
            .status,
        401
    );
    assert_eq!(
        http::request(h, "GET", "/api/topics", &[("Authorization", "Bearer s3cret")], None)
            .await
            .status,
        200
    );
    // Metrics and health stay open for scrapers.
    assert_eq!(get(h, "/metrics").await.status, 200);
    assert_eq!(get(h, "/health").await.status, 200);
    // A browser passes the token once; the cookie carries it from then on.
    let r = get(h, "/topics?token=s3cret").await;
    assert_eq!(r.status, 200);
    let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    assert!(r.header("set-cookie").unwrap().contains("HttpOnly"));
    assert_eq!(
        http::request(h, "GET", "/api/topics", &[("Cookie", &cookie)], None)
            .await
            .status,
        200
    );
    // Only localhost names are served on a loopback endpoint (DNS rebinding).
    let mut s = tokio::net::TcpStream::connect(h).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /health HTTP/1.1\r\nHost: evil.example:9644\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");

    let b = TestBroker::start_with(|c| {
        with_http(c);
        c.observe.console_read_only = true;
    })
    .await;
    let h = b.http();
    let r = write(h, "POST", "/api/topics", Some(r#"{"name":"t"}"#)).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("read-only"));
    assert_eq!(write(h, "PUT", "/api/trace", Some(r#"{"on":true}"#)).await.status, 403);
    assert_eq!(get(h, "/api/info").await.json()["readOnly"], true);
    assert_eq!(get(h, "/api/topics").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_shows_requests_and_responses_decoded() {
    let b = TestBroker::start_with(|c| {
        c.observe.trace_protocol = true;
        c.observe.trace_records = true;
    })
    .await;
    let broker = b.running.as_ref().unwrap().broker.clone();
    let mut events = broker.tracer.subscribe();
    produce(&b.bootstrap(), "traced", &[("k1", r#"{"orderId":42}"#)]).await;
    common::consume(&b.bootstrap(), "traced", 1, 1).await;
    let mut produce_seen = None;
    let mut fetch_seen = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while produce_seen.is_none() || fetch_seen.is_none() {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("trace events")
            .unwrap();
        match e.api {
            "Produce" => produce_seen = Some(e),
            "Fetch" if e.response.contains("orderId") => fetch_seen = Some(e),
            _ => {}
        }
    }
    let p = produce_seen.unwrap();
    assert_eq!(p.client_id, "rdkafka");
    assert!(
        p.request.contains("traced[0]: 1 batch(es), 1 record(s)"),
        "{}",
        p.request
    );
    assert!(
        p.request.contains(r#"key="k1" value="{\"orderId\":42}""#),
        "{}",
        p.request
    );
    assert!(p.response.contains("traced[0]: NONE base_offset=0"), "{}", p.response);
    assert!(p.text().contains("Produce v"));
    let f = fetch_seen.unwrap();
    assert!(f.request.contains("traced[0]@0"), "{}", f.request);
    assert!(f.response.contains("@0 key=\"k1\""), "{}", f.response);

    // Filters: only Metadata now.
    broker.tracer.set_filter(strom::config::observe::TraceFilter {
        apis: vec!["Metadata".into()],
        ..Default::default()
    });
    // Requests traced before the change (a fetch still waiting) finish first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    while events.try_recv().is_ok() {}
    produce(&b.bootstrap(), "traced", &[("k2", "v")]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut apis = Vec::new();
    while let Ok(e) = events.try_recv() {
        apis.push(e.api);
    }
    assert!(apis.contains(&"Metadata"), "{apis:?}");
    assert!(apis.iter().all(|a| *a == "Metadata"), "{apis:?}");
    // Off: nothing at all.
    broker.tracer.set(false, false);
    produce(&b.bootstrap(), "traced", &[("k3", "v")]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(events.try_recv().is_err());
}

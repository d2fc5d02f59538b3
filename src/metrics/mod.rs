//! Prometheus metrics under the names existing Kafka dashboards query.
//!
//! Two kinds of series:
//! - counted as things happen (bytes and records in, requests, errors, request
//!   latency, fsync latency, open connections): atomics in `prometheus-client`
//!   families, bumped on the data path;
//! - read at scrape time from the broker's state (partitions, offsets, log sizes,
//!   consumer group lag, the process): [`scrape`] walks the logs and groups each
//!   time `/metrics` is asked for (`server/http/scrape.rs`), so they cost
//!   nothing between scrapes.
//!
//! The names follow the JMX exporter rules Strimzi ships
//! (`kafka_server_brokertopicmetrics_bytesin_total{topic}`) and kafka_exporter
//! (`kafka_consumergroup_lag{consumergroup,topic,partition}`), so their Grafana
//! dashboards work against strom unchanged.

pub mod process;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A label set of any shape: `[]` for the all-topics series, `[("topic", t)]`.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    api: &'static str,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

/// Kafka's BrokerTopicMetrics: per topic, and for all topics together.
#[derive(Default)]
struct TopicCounters {
    bytes_in: Family<Labels, Counter>,
    bytes_out: Family<Labels, Counter>,
    messages_in: Family<Labels, Counter>,
    produce_requests: Family<Labels, Counter>,
    fetch_requests: Family<Labels, Counter>,
    failed_produce: Family<Labels, Counter>,
    failed_fetch: Family<Labels, Counter>,
}

/// Handles on one topic's BrokerTopicMetrics counters (or all topics'), kept so
/// that counting a request is a map lookup and atomic adds, without building
/// label sets.
#[derive(Clone)]
struct TopicSet {
    bytes_in: Counter,
    bytes_out: Counter,
    messages_in: Counter,
    produce_requests: Counter,
    fetch_requests: Counter,
    failed_produce: Counter,
    failed_fetch: Counter,
}

impl TopicCounters {
    fn set(&self, labels: &Labels) -> TopicSet {
        let get = |f: &Family<Labels, Counter>| f.get_or_create(labels).clone();
        TopicSet {
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            messages_in: get(&self.messages_in),
            produce_requests: get(&self.produce_requests),
            fetch_requests: get(&self.fetch_requests),
            failed_produce: get(&self.failed_produce),
            failed_fetch: get(&self.failed_fetch),
        }
    }
}

/// One produce or fetch of a partition, for [`Metrics::produced`] and
/// [`Metrics::fetched`].
pub struct PartitionTraffic<'a> {
    pub topic: &'a str,
    pub bytes: u64,
    pub records: u64,
    pub failed: bool,
    /// The topic exists: only then does it get series of its own (a client
    /// naming topics that do not exist must not grow the metrics).
    pub known: bool,
}

/// Running totals the console's sparklines sample.
#[derive(Debug, Default)]
pub struct Totals {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub requests: AtomicU64,
    pub connections: std::sync::atomic::AtomicI64,
}

pub struct Metrics {
    /// Off (`metrics.enable=false`): nothing is counted.
    pub enabled: bool,
    registry: Registry,
    /// Series labelled by topic/partition (off for very many partitions).
    pub partition_series: bool,
    /// Series labelled by consumer group.
    pub group_series: bool,
    topics: TopicCounters,
    all_topics: TopicSet,
    by_topic: std::sync::RwLock<std::collections::HashMap<String, TopicSet>>,
    request_seconds: Family<RequestLabels, Histogram>,
    /// Handles on `request_seconds` by (API, version).
    request_handles: std::sync::RwLock<std::collections::HashMap<(&'static str, i16), Histogram>>,
    request_errors: Family<ErrorLabels, Counter>,
    connections: Family<ListenerLabels, Gauge>,
    /// Kafka's ReplicationBytesOutPerSec: record bytes sent to followers
    /// (never counted as bytes out to consumers).
    replication_bytes_out: Counter,
    pub totals: Totals,
    /// Open connections by client software (ApiVersions v3+ names it), for the
    /// console.
    clients: Mutex<std::collections::BTreeMap<(String, String), i64>>,
    started: std::time::SystemTime,
}

fn request_histogram() -> Histogram {
    // 50 µs … ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
    pub fn new(config: &crate::config::observe::ObserveConfig) -> Metrics {
        let mut registry = Registry::default();
        let topics = TopicCounters::default();
        // prometheus-client adds `_total` to counters.
        let t = &topics;
        for (name, help, family) in [
            (
                "kafka_server_brokertopicmetrics_bytesin",
                "Bytes of records appended by producers",
                &t.bytes_in,
            ),
            (
                "kafka_server_brokertopicmetrics_bytesout",
                "Bytes of records sent to consumers",
                &t.bytes_out,
            ),
            (
                "kafka_server_brokertopicmetrics_messagesin",
                "Records appended by producers",
                &t.messages_in,
            ),
            (
                "kafka_server_brokertopicmetrics_totalproducerequests",
                "Partition appends requested by Produce",
                &t.produce_requests,
            ),
            (
                "kafka_server_brokertopicmetrics_totalfetchrequests",
                "Partition reads requested by Fetch",
                &t.fetch_requests,
            ),
            (
                "kafka_server_brokertopicmetrics_failedproducerequests",
                "Partition appends that failed",
                &t.failed_produce,
            ),
            (
                "kafka_server_brokertopicmetrics_failedfetchrequests",
                "Partition reads that failed",
                &t.failed_fetch,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        let request_seconds =
            Family::<RequestLabels, Histogram>::new_with_constructor(request_histogram as fn() -> Histogram);
        registry.register(
            "strom_request_duration_seconds",
            "Time from a request's arrival to its response being ready, by API and version",
            request_seconds.clone(),
        );
        let request_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "strom_request_errors",
            "Error codes in responses, by API and Kafka error name",
            request_errors.clone(),
        );
        let connections = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "kafka_server_socket_server_metrics_connection_count",
            "Open client connections by listener",
            connections.clone(),
        );
        let replication_bytes_out = Counter::default();
        registry.register(
            "kafka_server_brokertopicmetrics_replicationbytesout",
            "Bytes of records sent to followers",
            replication_bytes_out.clone(),
        );
        registry.register(
            "strom_log_fsync_duration_seconds",
            "Time of one fsync round of a partition's files",
            crate::util::fsync_timing::histogram(),
        );
        Metrics {
            enabled: config.metrics_enabled,
            registry,
            partition_series: config.partition_series,
            group_series: config.group_series,
            all_topics: topics.set(&Vec::new()),
            topics,
            by_topic: Default::default(),
            request_seconds,
            request_handles: Default::default(),
            request_errors,
            connections,
            replication_bytes_out,
            totals: Totals::default(),
            clients: Mutex::default(),
            started: std::time::SystemTime::now(),
        }
    }

    /// Count with the all-topics counters and, with per-topic series, the
    /// topic's.
    fn count(&self, topic: &str, known: bool, f: impl Fn(&TopicSet)) {
        f(&self.all_topics);
        if !self.partition_series || !known {
            return;
        }
        if let Some(set) = self.by_topic.read().unwrap_or_else(|e| e.into_inner()).get(topic) {
            return f(set);
        }
        let set = self.topics.set(&vec![("topic", topic.to_string())]);
        f(&set);
        self.by_topic
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_string(), set);
    }

    /// One partition of a produce request, appended or not.
    pub fn produced(&self, p: PartitionTraffic<'_>) {
        if !self.enabled {
            return;
        }
        self.count(p.topic, p.known, |t| {
            t.produce_requests.inc();
            if p.failed {
                t.failed_produce.inc();
            } else {
                t.bytes_in.inc_by(p.bytes);
                t.messages_in.inc_by(p.records);
            }
        });
        if !p.failed {
            self.totals.bytes_in.fetch_add(p.bytes, Ordering::Relaxed);
            self.totals.messages_in.fetch_add(p.records, Ordering::Relaxed);
        }
    }

    /// One partition of a fetch request, read or not.
    pub fn fetched(&self, p: PartitionTraffic<'_>) {
        if !self.enabled {
            return;
        }
        self.count(p.topic, p.known, |t| {
            t.fetch_requests.inc();
            if p.failed {
                t.failed_fetch.inc();
            } else {
                t.bytes_out.inc_by(p.bytes);
            }
        });
        if !p.failed {
            self.totals.bytes_out.fetch_add(p.bytes, Ordering::Relaxed);
        }
    }

    /// Record bytes a follower's fetch carried (counted apart from consumers').
    pub fn replicated_out(&self, bytes: u64) {
        if self.enabled {
            self.replication_bytes_out.inc_by(bytes);
        }
    }

    /// A topic is gone: so are its series (as Kafka removes its topic metrics).
    pub fn topic_deleted(&self, topic: &str) {
        self.by_topic.write().unwrap_or_else(|e| e.into_inner()).remove(topic);
        let labels = vec![("topic", topic.to_string())];
        let t = &self.topics;
        for family in [
            &t.bytes_in,
            &t.bytes_out,
            &t.messages_in,
            &t.produce_requests,
            &t.fetch_requests,
            &t.failed_produce,
            &t.failed_fetch,
        ] {
            family.remove(&labels);
        }
    }

    /// A request answered after `seconds`, with these error codes in its response.
    pub fn request_done(&self, api: &'static str, version: i16, seconds: f64, errors: &[i16]) {
        if !self.enabled {
            return;
        }
        self.totals.requests.fetch_add(1, Ordering::Relaxed);
        let cached = self
            .request_handles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(api, version))
            .map(|h| h.observe(seconds));
        if cached.is_none() {
            let h = self
                .request_seconds
                .get_or_create(&RequestLabels {
                    api,
                    version: version.to_string(),
                })
                .clone();
            h.observe(seconds);
            self.request_handles
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert((api, version), h);
        }
        for &code in errors.iter().filter(|&&c| c != 0) {
            self.request_errors
                .get_or_create(&ErrorLabels {
                    api,
                    error: error_name(code),
                })
                .inc();
        }
    }

    /// A connection opened (`+1`) or closed (`-1`) on `listener`.
    pub fn connection(&self, listener: &str, delta: i64) {
        if !self.enabled {
            return;
        }
        self.connections
            .get_or_create(&ListenerLabels {
                listener: listener.to_string(),
            })
            .inc_by(delta);
        self.totals.connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// A connection named its client software (ApiVersions v3+), or closed
    /// after doing so (`delta` −1).
    pub fn client_software(&self, name: &str, version: &str, delta: i64) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_string(), version.to_string());
        let n = clients.entry(key.clone()).or_default();
        *n += delta;
        if *n <= 0 {
            clients.remove(&key);
        }
    }

    /// Open connections by (client software name, version).
    pub fn clients(&self) -> Vec<(String, String, i64)> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.iter().map(|((n, v), c)| (n.clone(), v.clone(), *c)).collect()
    }

    pub fn started(&self) -> std::time::SystemTime {
        self.started
    }

    /// The whole exposition (OpenMetrics text): the counted series, then
    /// `now`, what the broker's state says at this scrape.
    pub fn encode(&self, now: &Registry) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        prometheus_client::encoding::text::encode_registry(&mut out, now)?;
        prometheus_client::encoding::text::encode_eof(&mut out)?;
        Ok(out)
    }
}

/// The same exposition in Prometheus' classic text format (0.0.4), for
/// scrapers and tools that do not ask for OpenMetrics (`promtool check
/// metrics`, older agents): counters' families are named with their `_total`
/// as their samples are, and `# UNIT` / `# EOF` go.
pub fn to_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
        match meta {
            Some(prefix) => {
                let rest = &line[prefix.len()..];
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Kafka's name of an error code, as its `ErrorsPerSec` metric labels it.
pub fn error_name(code: i16) -> String {
    match kafka_protocol::error::ResponseError::try_from_code(code) {
        // Codes this version of the protocol crate has no name for.
        Some(e) if format!("{e:?}").contains('(') => format!("UNKNOWN_{code}"),
        Some(e) => screaming_snake(&format!("{e:?}")),
        None => format!("UNKNOWN_{code}"),
    }
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Shared handle, as the broker keeps it.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counter_families_as_their_samples() {
        let om = "# HELP a_b Bytes.\n# TYPE a_b counter\na_b_total{topic=\"t\"} 3\n# HELP g A gauge.\n# TYPE g gauge\n# UNIT g bytes\ng 1\n# EOF\n";
        assert_eq!(
            to_classic_text(om),
            "# HELP a_b_total Bytes.\n# TYPE a_b_total counter\na_b_total{topic=\"t\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "UNKNOWN_9999");
    }
}

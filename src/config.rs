//! Broker settings under Kafka's own names and defaults.
//!
//! Each setting can come from a command-line flag, an environment variable, or a
//! Kafka-style `server.properties` file, in that order of precedence; what none of
//! them sets takes Kafka's default (or strom's embedded default where Kafka has none
//! that fits a single binary, such as `./data`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::group::state::GroupConfig;
use crate::log::config::LogConfig;

pub mod cluster;
mod consumer_groups;
mod listeners;
pub mod observe;
pub mod security;

pub use listeners::{parse_listeners, parse_protocol_map, Listener, SecurityProtocol};
pub use security::ListenerSecurity;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// A security key, often one listener's (`listener.name.NAME.ssl.…`).
    #[error("invalid {key}: {reason}")]
    Security { key: String, reason: String },
}

/// Flags of `strom serve`. Every one is optional here so that the properties file
/// and the defaults can fill what the command line leaves out.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// A Kafka-style properties file (e.g. server.properties).
    #[arg(long = "config", env = "STROM_CONFIG")]
    pub config_file: Option<PathBuf>,
    /// Any broker setting under its Kafka key, KEY=VALUE (repeatable), over the
    /// properties file: e.g. --override log.retention.hours=24
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Where to listen (Kafka: listeners), HOST:PORT or NAME://HOST:PORT,…  [default: 0.0.0.0:9092]
    #[arg(long = "listen", env = "STROM_LISTEN")]
    pub listeners: Option<String>,
    /// What clients are told to connect to (advertised.listeners)  [default: localhost:9092]
    #[arg(long = "advertised-listener", env = "STROM_ADVERTISED_LISTENER")]
    pub advertised_listeners: Option<String>,
    /// Each listener name's security protocol (listener.security.protocol.map), NAME:PROTOCOL,…  [default: PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL]
    #[arg(
        long = "listener-security-protocol-map",
        env = "STROM_LISTENER_SECURITY_PROTOCOL_MAP"
    )]
    pub listener_security_protocol_map: Option<String>,
    /// Data directory (log.dirs)  [default: ./data]
    #[arg(long = "data-dir", env = "STROM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// This broker's id (node.id)  [default: 0]
    #[arg(long = "node-id", env = "STROM_NODE_ID")]
    pub node_id: Option<i32>,
    /// Create unknown topics on metadata requests (auto.create.topics.enable)  [default: true]
    #[arg(long = "auto-create-topics", env = "STROM_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic (num.partitions)  [default: 1]
    #[arg(long = "num-partitions", env = "STROM_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// Segment size before a roll (log.segment.bytes)  [default: 1073741824]
    #[arg(long = "log-segment-bytes", env = "STROM_LOG_SEGMENT_BYTES")]
    pub log_segment_bytes: Option<u64>,
    /// Segment age before a roll (log.roll.ms)  [default: 604800000]
    #[arg(long = "log-roll-ms", env = "STROM_LOG_ROLL_MS")]
    pub log_roll_ms: Option<u64>,
    /// Largest record batch accepted (message.max.bytes)  [default: 1048588]
    #[arg(long = "message-max-bytes", env = "STROM_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: Option<usize>,
    /// Largest request accepted (socket.request.max.bytes)  [default: 104857600]
    #[arg(long = "socket-request-max-bytes", env = "STROM_SOCKET_REQUEST_MAX_BYTES")]
    pub socket_request_max_bytes: Option<usize>,
    /// fsync after this many unflushed messages (log.flush.interval.messages)
    #[arg(long = "log-flush-interval-messages", env = "STROM_LOG_FLUSH_INTERVAL_MESSAGES")]
    pub log_flush_interval_messages: Option<u64>,
    /// fsync data older than this (log.flush.interval.ms)
    #[arg(long = "log-flush-interval-ms", env = "STROM_LOG_FLUSH_INTERVAL_MS")]
    pub log_flush_interval_ms: Option<u64>,
    /// How long a new group waits for more members (group.initial.rebalance.delay.ms)  [default: 3000]
    #[arg(
        long = "group-initial-rebalance-delay-ms",
        env = "STROM_GROUP_INITIAL_REBALANCE_DELAY_MS"
    )]
    pub group_initial_rebalance_delay_ms: Option<i64>,
    /// The cluster's metadata store (metadata.store), etcd://HOST:PORT,…[/PREFIX]; unset: a single broker
    #[arg(long = "metadata-store", env = "STROM_METADATA_STORE")]
    pub metadata_store: Option<String>,
    /// This broker's rack (broker.rack)
    #[arg(long = "broker-rack", env = "STROM_BROKER_RACK")]
    pub broker_rack: Option<String>,
    #[command(flatten)]
    pub observe: observe::ObserveArgs,
}

/// The resolved broker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listeners: Vec<Listener>,
    /// The HTTP endpoint, the console, the trace and the metrics' labels.
    pub observe: observe::ObserveConfig,
    /// Per listener name; a listener without an entry advertises its bound address.
    pub advertised_listeners: Vec<Listener>,
    /// listener.security.protocol.map: each listener name's security protocol.
    pub listener_security_protocols: BTreeMap<String, SecurityProtocol>,
    /// Each listener's TLS and SASL settings, by listener name.
    pub listener_security: BTreeMap<String, ListenerSecurity>,
    /// connection.failed.authentication.delay.ms: how long a failed login waits
    /// before its answer and the close (slows password guessing).
    pub failed_authentication_delay_ms: u64,
    /// authorizer.class.name names Kafka's StandardAuthorizer (or AclAuthorizer):
    /// ACLs are checked. Off, everyone may do everything.
    pub authorizer_enabled: bool,
    /// super.users: principals (`User:admin`) the authorizer always allows.
    pub super_users: Vec<String>,
    /// allow.everyone.if.no.acl.found
    pub allow_everyone_if_no_acl_found: bool,
    /// quota.window.num × quota.window.size.seconds: the span client quotas are
    /// measured over.
    pub quota_window_num: usize,
    pub quota_window_size_seconds: u64,
    /// sasl.server.max.receive.size: the largest frame before a SASL login is done.
    pub sasl_server_max_receive_size: usize,
    pub data_dir: PathBuf,
    pub node_id: i32,
    /// metadata.store, broker.rack and the broker session (a cluster's broker).
    pub cluster: cluster::ClusterConfig,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    /// Broker-wide defaults of every topic config.
    pub log: LogConfig,
    /// The broker `log.*` keys set explicitly (flags or properties file), normalised:
    /// DescribeConfigs reports them as STATIC_BROKER_CONFIG.
    pub log_overrides: BTreeMap<String, String>,
    /// log.retention.check.interval.ms
    pub retention_check_interval_ms: u64,
    /// log.cleaner.backoff.ms: how often the log cleaner looks for work.
    pub cleaner_backoff_ms: u64,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    /// Most partitions one CreateTopics or CreatePartitions request may create
    /// (Kafka's controller.max.records.per.batch, 10,000): each costs three open
    /// files, so an unbounded request could exhaust the broker's descriptors.
    pub max_partitions_per_request: usize,
    /// fetch.max.bytes: the most record bytes one Fetch response carries (but
    /// always at least one batch), whatever the client asks for.
    pub fetch_max_bytes: usize,
    /// connections.max.idle.ms: a connection with nothing sent and nothing in
    /// flight for this long is closed.
    pub connections_max_idle_ms: u64,
    /// max.connections.per.ip, and its per-address exceptions
    /// (max.connections.per.ip.overrides, `host:count,…`).
    pub max_connections_per_ip: usize,
    pub max_connections_per_ip_overrides: HashMap<std::net::IpAddr, usize>,
    /// queued.max.request.bytes: the memory all connections together may hold for
    /// requests being read and decoded (see `server::limits`).
    pub queued_max_request_bytes: usize,
    pub group: GroupConfig,
    /// transaction.max.timeout.ms: the longest transaction.timeout.ms a producer
    /// may ask for (INVALID_TRANSACTION_TIMEOUT above it).
    pub transaction_max_timeout_ms: i32,
    /// transactional.id.expiration.ms: a transactional id idle (no transaction
    /// open) this long is forgotten.
    pub transactional_id_expiration_ms: i64,
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms: how often
    /// transactions past their timeout are looked for (and aborted).
    pub transaction_abort_interval_ms: u64,
}

impl Config {
    /// A configuration for tests and embedding: listen on `127.0.0.1:0`, data in `dir`.
    pub fn for_dir(dir: impl Into<PathBuf>) -> Config {
        Config {
            listeners: parse_listeners("listeners", "127.0.0.1:0").expect("valid"),
            observe: observe::ObserveConfig::default(),
            advertised_listeners: Vec::new(),
            listener_security_protocols: listeners::default_protocol_map(),
            listener_security: [("PLAINTEXT".to_string(), ListenerSecurity::plaintext())].into(),
            failed_authentication_delay_ms: 100,
            sasl_server_max_receive_size: 524_288,
            quota_window_num: 11,
            quota_window_size_seconds: 1,
            authorizer_enabled: false,
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
            data_dir: dir.into(),
            node_id: 0,
            cluster: cluster::ClusterConfig::default(),
            auto_create_topics: true,
            num_partitions: 1,
            log: LogConfig::default(),
            log_overrides: BTreeMap::new(),
            retention_check_interval_ms: 300_000,
            cleaner_backoff_ms: 15_000,
            socket_request_max_bytes: 104_857_600,
            max_connections: 10_000,
            max_partitions_per_request: 10_000,
            fetch_max_bytes: 57_671_680,
            connections_max_idle_ms: 600_000,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: HashMap::new(),
            queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            group: GroupConfig::default(),
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            transaction_abort_interval_ms: 10_000,
        }
    }

    /// Resolve flags (already merged with environment variables by clap) over the
    /// properties file over the defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let mut props = match &args.config_file {
            Some(path) => read_properties(path)?,
            None => HashMap::new(),
        };
        for o in &args.overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::Invalid {
                key: "--override",
                value: o.clone(),
                reason: "expected KEY=VALUE".into(),
            })?;
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        let p = Props(&props);
        let listeners = args.listeners.clone().or(p.string("listeners"));
        let listeners = parse_listeners("listeners", listeners.as_deref().unwrap_or("0.0.0.0:9092"))?;
        let advertised = match args.advertised_listeners.clone().or(p.string("advertised.listeners")) {
            Some(v) => parse_listeners("advertised.listeners", &v)?,
            None if listeners.len() == 1 => {
                let mut l = listeners[0].clone();
                if l.host == "0.0.0.0" || l.host == "::" || l.host.is_empty() {
                    l.host = "localhost".into();
                }
                vec![l]
            }
            None => Vec::new(),
        };
        let protocol_map = args
            .listener_security_protocol_map
            .clone()
            .or(p.string("listener.security.protocol.map"));
        let protocol_map = match protocol_map {
            Some(value) => parse_protocol_map(&value)?,
            None => listeners::default_protocol_map(),
        };
        let (log, log_overrides) = resolve_log(args, &props)?;
        let listener_security = security::resolve(&listeners, &protocol_map, &props)?;
        let mut cluster = cluster::resolve(args, &p)?;
        let in_cluster = cluster.store.is_some();
        cluster.inter_broker = cluster::inter_broker(&p, &advertised, &listener_security, in_cluster)?;
        let config = Config {
            observe: observe::resolve(&args.observe, &p)?,
            listeners,
            advertised_listeners: advertised,
            listener_security_protocols: protocol_map,
            listener_security,
            failed_authentication_delay_ms: pick(None, p.parse("connection.failed.authentication.delay.ms")?, 100),
            sasl_server_max_receive_size: pick(None, p.parse("sasl.server.max.receive.size")?, 524_288),
            quota_window_num: pick(None, p.parse("quota.window.num")?, 11),
            quota_window_size_seconds: pick(None, p.parse("quota.window.size.seconds")?, 1),
            authorizer_enabled: match p.string("authorizer.class.name").as_deref().map(str::trim) {
                None | Some("") => false,
                Some(class) if security::AUTHORIZER_CLASSES.contains(&class) => true,
                Some(class) => {
                    return Err(ConfigError::Security {
                        key: "authorizer.class.name".into(),
                        reason: format!(
                            "{class} is not available; strom's authorizer is Kafka's StandardAuthorizer ({})",
                            security::AUTHORIZER_CLASSES[0]
                        ),
                    })
                }
            },
            super_users: p
                .string("super.users")
                .map(|v| {
                    v.split(';')
                        .map(|u| u.trim().to_string())
                        .filter(|u| !u.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            allow_everyone_if_no_acl_found: pick(None, p.parse("allow.everyone.if.no.acl.found")?, false),
            data_dir: args
                .data_dir
                .clone()
                .or(p.string("log.dirs").or(p.string("log.dir")).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("./data")),
            node_id: pick(args.node_id, p.parse("node.id")?.or(p.parse("broker.id")?), 0),
            cluster,
            auto_create_topics: pick(args.auto_create_topics, p.parse("auto.create.topics.enable")?, true),
            num_partitions: pick(args.num_partitions, p.parse("num.partitions")?, 1),
            log,
            log_overrides,
            retention_check_interval_ms: pick(None, p.parse("log.retention.check.interval.ms")?, 300_000),
            cleaner_backoff_ms: pick(None, p.parse("log.cleaner.backoff.ms")?, 15_000),
            socket_request_max_bytes: pick(
                args.socket_request_max_bytes,
                p.parse("socket.request.max.bytes")?,
                104_857_600,
            ),
            max_connections: pick(None, p.parse("max.connections")?, 10_000),
            max_partitions_per_request: pick(None, p.parse("controller.max.records.per.batch")?, 10_000),
            fetch_max_bytes: pick(None, p.parse("fetch.max.bytes")?, 57_671_680),
            connections_max_idle_ms: pick(None, p.parse("connections.max.idle.ms")?, 600_000),
            max_connections_per_ip: pick(None, p.parse::<i64>("max.connections.per.ip")?, i32::MAX as i64).max(0)
                as usize,
            max_connections_per_ip_overrides: match p.string("max.connections.per.ip.overrides") {
                Some(v) => parse_ip_overrides(&v)?,
                None => HashMap::new(),
            },
            queued_max_request_bytes: match pick(
                None,
                p.parse::<i64>("queued.max.request.bytes")?,
                DEFAULT_QUEUED_MAX_REQUEST_BYTES as i64,
            ) {
                n if n <= 0 => u32::MAX as usize,
                n => n.min(u32::MAX as i64) as usize,
            },
            group: {
                let d = GroupConfig::default();
                GroupConfig {
                    min_session_timeout_ms: pick(
                        None,
                        p.parse("group.min.session.timeout.ms")?,
                        d.min_session_timeout_ms,
                    ),
                    max_session_timeout_ms: pick(
                        None,
                        p.parse("group.max.session.timeout.ms")?,
                        d.max_session_timeout_ms,
                    ),
                    initial_rebalance_delay_ms: pick(
                        args.group_initial_rebalance_delay_ms,
                        p.parse("group.initial.rebalance.delay.ms")?,
                        d.initial_rebalance_delay_ms,
                    ),
                    consumer: consumer_groups::resolve(&p)?,
                }
            },
            transaction_max_timeout_ms: pick(None, p.parse("transaction.max.timeout.ms")?, 900_000),
            transactional_id_expiration_ms: pick(None, p.parse("transactional.id.expiration.ms")?, 604_800_000),
            transaction_abort_interval_ms: pick(
                None,
                p.parse("transaction.abort.timed.out.transaction.cleanup.interval.ms")?,
                10_000,
            ),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, value: String, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                value,
                reason: reason.to_string(),
            })
        };
        listeners::check_listeners(
            &self.listeners,
            &self.advertised_listeners,
            &self.listener_security_protocols,
        )?;
        if !(1..=i32::MAX as usize).contains(&self.quota_window_num) {
            return bad(
                "quota.window.num",
                self.quota_window_num.to_string(),
                "must be between 1 and 2147483647",
            );
        }
        if !(1..=i32::MAX as u64).contains(&self.quota_window_size_seconds) {
            let v = self.quota_window_size_seconds.to_string();
            return bad("quota.window.size.seconds", v, "must be between 1 and 2147483647");
        }
        if self.num_partitions < 1 {
            return bad("num.partitions", self.num_partitions.to_string(), "must be at least 1");
        }
        if self.transaction_max_timeout_ms < 1 {
            let v = self.transaction_max_timeout_ms.to_string();
            return bad("transaction.max.timeout.ms", v, "must be at least 1");
        }
        if self.transactional_id_expiration_ms < 1 {
            let v = self.transactional_id_expiration_ms.to_string();
            return bad("transactional.id.expiration.ms", v, "must be at least 1");
        }
        if self.transaction_abort_interval_ms < 1 {
            let (key, v) = (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "0".to_string(),
            );
            return bad(key, v, "must be at least 1");
        }
        if self.log.segment_bytes < 14 {
            return bad(
                "log.segment.bytes",
                self.log.segment_bytes.to_string(),
                "must be at least 14",
            );
        }
        if self.log.flush_interval_messages == 0 {
            return bad("log.flush.interval.messages", "0".into(), "must be at least 1");
        }
        if self.node_id < 0 {
            return bad("node.id", self.node_id.to_string(), "must not be negative");
        }
        Ok(())
    }
}

/// The broker's topic-config defaults: Kafka's `log.*` keys from flags and the
/// properties file (with the hours/minutes variants Kafka also reads).
fn resolve_log(
    args: &ServeArgs,
    props: &HashMap<String, String>,
) -> Result<(LogConfig, BTreeMap<String, String>), ConfigError> {
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    for def in crate::log::config::TOPIC_CONFIGS {
        if let Some(v) = props.get(def.broker_name) {
            given.insert(def.broker_name.to_string(), v.clone());
        }
    }
    let scaled = |key: &str, factor: i64| -> Result<Option<String>, ConfigError> {
        match props.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(|n| Some(if n < 0 { n } else { n * factor }.to_string()))
                .map_err(|_| ConfigError::Invalid {
                    key: "log.*",
                    value: v.clone(),
                    reason: format!("{key} is not a number"),
                }),
        }
    };
    if !given.contains_key("log.retention.ms") {
        let v = scaled("log.retention.minutes", 60_000)?.or(scaled("log.retention.hours", 3_600_000)?);
        if let Some(v) = v {
            given.insert("log.retention.ms".into(), v);
        }
    }
    if !given.contains_key("log.roll.ms") {
        if let Some(v) = scaled("log.roll.hours", 3_600_000)? {
            given.insert("log.roll.ms".into(), v);
        }
    }
    let flags = [
        ("log.segment.bytes", args.log_segment_bytes.map(|v| v.to_string())),
        ("log.roll.ms", args.log_roll_ms.map(|v| v.to_string())),
        ("message.max.bytes", args.message_max_bytes.map(|v| v.to_string())),
        (
            "log.flush.interval.messages",
            args.log_flush_interval_messages.map(|v| v.to_string()),
        ),
        (
            "log.flush.interval.ms",
            args.log_flush_interval_ms.map(|v| v.to_string()),
        ),
    ];
    for (key, value) in flags {
        if let Some(v) = value {
            given.insert(key.into(), v);
        }
    }
    let mut log = LogConfig::default();
    for (k, v) in &given {
        log.set_broker(k, v).map_err(|reason| ConfigError::Invalid {
            key: "log.*",
            value: v.clone(),
            reason,
        })?;
    }
    let normalised = given
        .keys()
        .map(|k| {
            let def = crate::log::config::broker_config(k).expect("known key");
            (k.clone(), def.value(&log))
        })
        .collect();
    Ok((log, normalised))
}

/// strom's default for queued.max.request.bytes. Kafka's is −1 (no bound); a
/// bound by default keeps a few clients' half-sent 100 MiB requests (or a small
/// request that decodes to gigabytes) from taking the broker's memory. −1 or 0
/// lifts it (to 4 GiB).
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: usize = 512 << 20;

/// A comma-separated list of `left:right` pairs (split at each item's last
/// colon, so an IPv6 host keeps its own), each made into a value by `make`; an
/// item without a colon, or one `make` refuses, is reported under `key`.
fn parse_pairs<T>(
    key: &'static str,
    value: &str,
    mut make: impl FnMut(&str, &str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason,
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (left, right) = item
                .rsplit_once(':')
                .ok_or_else(|| invalid(format!("`{item}` is not a pair separated by ':'")))?;
            make(left.trim(), right.trim()).map_err(invalid)
        })
        .collect()
}

/// Kafka's `max.connections.per.ip.overrides`: `host:count` pairs, comma
/// separated; a host name stands for each address it resolves to.
fn parse_ip_overrides(value: &str) -> Result<HashMap<std::net::IpAddr, usize>, ConfigError> {
    use std::net::ToSocketAddrs;
    let per_host = parse_pairs("max.connections.per.ip.overrides", value, |host, count| {
        let count: usize = count.parse().map_err(|_| format!("{count:?} is not a count"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<std::net::IpAddr> = match host.parse() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .map(|a| a.ip())
                .collect(),
        };
        Ok(addrs.into_iter().map(move |ip| (ip, count)))
    })?;
    Ok(per_host.into_iter().flatten().collect())
}

fn pick<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

struct Props<'a>(&'a HashMap<String, String>);

impl Props<'_> {
    fn string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn parse<T: std::str::FromStr>(&self, key: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|e: T::Err| ConfigError::Invalid {
                key,
                value: v.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Read a Java-style properties file: `key=value` or `key: value`, `#`/`!` comments.
pub fn read_properties(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(crate::util::properties::parse(&text))
}

#[cfg(test)]
mod tests;

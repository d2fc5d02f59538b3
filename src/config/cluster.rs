//! Settings of a broker in a cluster (issue 17): where the cluster's metadata
//! lives (`metadata.store`, an etcd cluster), the broker's rack, and how its
//! liveness is judged (`broker.session.timeout.ms`, `broker.heartbeat.interval.ms`,
//! Kafka's names and defaults). Without `metadata.store` the broker is a cluster
//! of one and none of this is used.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::security::{parse_jaas, ClientAuth, KeyStore, ListenerSecurity, TrustStore};
use super::{ConfigError, Listener, Props, SecurityProtocol, ServeArgs};

/// `metadata.store=etcd://h1:2379,h2:2379,h3:2379/strom/prod`: etcd's client
/// endpoints and the key prefix under which this cluster's metadata lives
/// (several clusters can share one etcd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataStoreUrl {
    /// `http://host:port` for each endpoint.
    pub endpoints: Vec<String>,
    /// Starts with `/`, never ends with one (default `/strom`).
    pub prefix: String,
}

pub const DEFAULT_PREFIX: &str = "/strom";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub store: Option<MetadataStoreUrl>,
    /// broker.rack: for rack-aware replica placement and fetching from the
    /// closest replica.
    pub rack: Option<String>,
    /// broker.session.timeout.ms: a broker whose lease is not renewed for this
    /// long is gone (its etcd lease expires).
    pub session_timeout_ms: u64,
    /// broker.heartbeat.interval.ms: how often the lease is renewed.
    pub heartbeat_interval_ms: u64,
    /// replica.lag.time.max.ms: a follower that has not caught up with its
    /// leader for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// default.replication.factor: replicas of a topic created without a
    /// replication factor (auto-created ones too).
    pub default_replication_factor: i16,
    /// auto.leader.rebalance.enable: the controller moves leadership back to
    /// each partition's preferred replica (the first assigned) when it can.
    pub auto_leader_rebalance: bool,
    /// leader.imbalance.check.interval.seconds: how often it looks.
    pub leader_imbalance_check_interval_s: u64,
    /// leader.imbalance.per.broker.percentage: a broker's share of partitions
    /// it should lead but does not, above which their leadership moves back.
    pub leader_imbalance_per_broker_percentage: u32,
    /// offsets.topic.num.partitions: `__consumer_offsets`' partitions in a
    /// cluster (group ids hash over them; each leader coordinates its share).
    /// One broker keeps a single partition.
    pub offsets_topic_num_partitions: i32,
    /// offsets.topic.replication.factor: its replicas; as in Kafka, the topic
    /// is not created (COORDINATOR_NOT_AVAILABLE) until that many brokers run.
    pub offsets_topic_replication_factor: i16,
    /// offsets.commit.timeout.ms: how long a coordinator waits for the
    /// in-sync replicas to copy a commit before answering
    /// COORDINATOR_NOT_AVAILABLE.
    pub offsets_commit_timeout_ms: u64,
    /// transaction.state.log.num.partitions: `__transaction_state`'s
    /// partitions in a cluster (transactional ids hash over them).
    pub transaction_state_log_num_partitions: i32,
    /// transaction.state.log.replication.factor: its replicas; not created
    /// while fewer brokers run.
    pub transaction_state_log_replication_factor: i16,
    /// controlled.shutdown.enable: a stopping broker first has its
    /// leadership moved to the other brokers (at most 20 s).
    pub controlled_shutdown: bool,
    /// replica.selector.class: Kafka's `RackAwareReplicaSelector` sends a
    /// consumer naming its rack (Fetch v11+) to a replica in that rack
    /// (KIP-392); unset, consumers read from leaders.
    pub replica_selector: ReplicaSelector,
    /// How brokers reach each other, for replication and every
    /// broker-to-broker request.
    pub inter_broker: InterBroker,
}

/// How this broker reaches the others: the listener (`inter.broker.listener.name`,
/// by name, upper-cased; each broker must advertise one of that name; unset: a
/// broker's first PLAINTEXT listener), and, when that listener is TLS or SASL,
/// how it secures and authenticates its side, as Kafka's brokers do: with that
/// listener's own `ssl.*` files, and the user and password of the JAAS line of
/// `sasl.mechanism.inter.broker.protocol`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InterBroker {
    pub listener: Option<String>,
    /// TLS: the CAs to trust (`ssl.truststore.location`) and this broker's key
    /// and chain (`ssl.keystore.location`), shown to the other broker.
    pub tls: Option<InterBrokerTls>,
    /// SASL: mechanism, user, password.
    pub sasl: Option<(String, String, String)>,
}

/// The password stays out of logs.
impl std::fmt::Debug for InterBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterBroker")
            .field("listener", &self.listener)
            .field("tls", &self.tls)
            .field("sasl", &self.sasl.as_ref().map(|(m, user, _)| (m, user, "[hidden]")))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterBrokerTls {
    pub ca: PathBuf,
    pub identity: Option<PathBuf>,
}

/// `replica.selector.class`: which replica a consumer is sent to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// Kafka's default (no selector): the leader.
    #[default]
    Leader,
    /// `org.apache.kafka.common.replica.RackAwareReplicaSelector`.
    RackAware,
}

impl ReplicaSelector {
    pub const RACK_AWARE_CLASS: &'static str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

    /// The selector a `replica.selector.class` value names: Kafka's class name;
    /// empty or `null` for none. strom cannot load other classes, so any other
    /// name is refused rather than ignored (Kafka would not find the class).
    pub fn from_class(class: &str) -> Result<ReplicaSelector, ConfigError> {
        match class.trim() {
            "" | "null" => Ok(ReplicaSelector::Leader),
            Self::RACK_AWARE_CLASS => Ok(ReplicaSelector::RackAware),
            other => Err(invalid(
                "replica.selector.class",
                other,
                &format!("strom has only {}", Self::RACK_AWARE_CLASS),
            )),
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            store: None,
            rack: None,
            session_timeout_ms: 9_000,
            heartbeat_interval_ms: 2_000,
            replica_lag_time_max_ms: 30_000,
            default_replication_factor: 1,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval_s: 300,
            leader_imbalance_per_broker_percentage: 10,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_commit_timeout_ms: 5_000,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 3,
            controlled_shutdown: true,
            replica_selector: ReplicaSelector::Leader,
            inter_broker: InterBroker::default(),
        }
    }
}

fn invalid(key: &'static str, value: impl ToString, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// The setting `key` (or `default`), refused below `min`.
fn at_least<T>(p: &Props<'_>, key: &'static str, default: T, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr<Err: std::fmt::Display> + PartialOrd + std::fmt::Display + Copy,
{
    let value: T = p.parse(key)?.unwrap_or(default);
    if value < min {
        return Err(invalid(key, value, &format!("must be at least {min}")));
    }
    Ok(value)
}

/// Parse `etcd://host:port[,host:port…][/prefix]`.
pub fn parse_store(value: &str) -> Result<MetadataStoreUrl, ConfigError> {
    let bad = |reason: &str| invalid("metadata.store", value, reason);
    let rest = value
        .trim()
        .strip_prefix("etcd://")
        .ok_or_else(|| bad("expected etcd://host:port[,host:port…][/prefix]"))?;
    let (hosts, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let prefix = if prefix.is_empty() { DEFAULT_PREFIX } else { prefix };
    if prefix.contains("//") || prefix.chars().any(char::is_whitespace) {
        return Err(bad("the key prefix must be a path like /strom/prod"));
    }
    let mut endpoints = Vec::new();
    for host in hosts.split(',').map(str::trim) {
        let (name, port) = host.rsplit_once(':').ok_or_else(|| bad("each endpoint is host:port"))?;
        if name.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("each endpoint is host:port"));
        }
        endpoints.push(format!("http://{host}"));
    }
    Ok(MetadataStoreUrl {
        endpoints,
        prefix: prefix.to_string(),
    })
}

pub(super) fn resolve(args: &ServeArgs, p: &Props<'_>) -> Result<ClusterConfig, ConfigError> {
    let d = ClusterConfig::default();
    let store = match args.metadata_store.clone().or(p.string("metadata.store")) {
        Some(v) if !v.trim().is_empty() => Some(parse_store(&v)?),
        _ => None,
    };
    if store.is_some() && !cfg!(feature = "cluster") {
        return Err(invalid(
            "metadata.store",
            "etcd://…",
            "this strom was built without the `cluster` feature: cargo build --release --features cluster (needs protoc)",
        ));
    }
    let session_timeout_ms: u64 = p.parse("broker.session.timeout.ms")?.unwrap_or(d.session_timeout_ms);
    let heartbeat_interval_ms: u64 = p
        .parse("broker.heartbeat.interval.ms")?
        .unwrap_or(d.heartbeat_interval_ms);
    let replica_lag_time_max_ms = at_least(p, "replica.lag.time.max.ms", d.replica_lag_time_max_ms, 100)?;
    let default_replication_factor = at_least(p, "default.replication.factor", d.default_replication_factor, 1)?;
    let auto_leader_rebalance: bool = p
        .parse("auto.leader.rebalance.enable")?
        .unwrap_or(d.auto_leader_rebalance);
    let leader_imbalance_check_interval_s = at_least(
        p,
        "leader.imbalance.check.interval.seconds",
        d.leader_imbalance_check_interval_s,
        1,
    )?;
    let leader_imbalance_per_broker_percentage: u32 = p
        .parse("leader.imbalance.per.broker.percentage")?
        .unwrap_or(d.leader_imbalance_per_broker_percentage);
    if leader_imbalance_per_broker_percentage > 100 {
        return Err(invalid(
            "leader.imbalance.per.broker.percentage",
            leader_imbalance_per_broker_percentage,
            "must be 0 to 100",
        ));
    }
    let offsets_topic_num_partitions = at_least(p, "offsets.topic.num.partitions", d.offsets_topic_num_partitions, 1)?;
    let offsets_topic_replication_factor = at_least(
        p,
        "offsets.topic.replication.factor",
        d.offsets_topic_replication_factor,
        1,
    )?;
    let offsets_commit_timeout_ms = at_least(p, "offsets.commit.timeout.ms", d.offsets_commit_timeout_ms, 1)?;
    let transaction_state_log_num_partitions = at_least(
        p,
        "transaction.state.log.num.partitions",
        d.transaction_state_log_num_partitions,
        1,
    )?;
    let transaction_state_log_replication_factor = at_least(
        p,
        "transaction.state.log.replication.factor",
        d.transaction_state_log_replication_factor,
        1,
    )?;
    // etcd leases are whole seconds of at least about a second.
    if session_timeout_ms < 1_000 {
        return Err(invalid(
            "broker.session.timeout.ms",
            session_timeout_ms,
            "must be at least 1000",
        ));
    }
    if heartbeat_interval_ms == 0 || heartbeat_interval_ms >= session_timeout_ms {
        return Err(invalid(
            "broker.heartbeat.interval.ms",
            heartbeat_interval_ms,
            "must be positive and below broker.session.timeout.ms",
        ));
    }
    Ok(ClusterConfig {
        store,
        rack: args
            .broker_rack
            .clone()
            .or(p.string("broker.rack"))
            .filter(|r| !r.trim().is_empty()),
        session_timeout_ms,
        heartbeat_interval_ms,
        replica_lag_time_max_ms,
        default_replication_factor,
        auto_leader_rebalance,
        leader_imbalance_check_interval_s,
        leader_imbalance_per_broker_percentage,
        offsets_topic_num_partitions,
        offsets_topic_replication_factor,
        offsets_commit_timeout_ms,
        transaction_state_log_num_partitions,
        transaction_state_log_replication_factor,
        controlled_shutdown: p.parse("controlled.shutdown.enable")?.unwrap_or(d.controlled_shutdown),
        replica_selector: match p.string("replica.selector.class") {
            Some(class) => ReplicaSelector::from_class(&class)?,
            None => d.replica_selector,
        },
        inter_broker: InterBroker::default(),
    })
}

/// `inter.broker.listener.name` (or Kafka's older `security.inter.broker.protocol`,
/// which names the listener of that protocol's name), checked as Kafka checks
/// it against this broker's advertised listeners, and what a TLS or SASL one
/// needs for this broker's side of the connection (see [`InterBroker`]).
pub(super) fn inter_broker(
    p: &Props<'_>,
    advertised: &[Listener],
    security: &BTreeMap<String, ListenerSecurity>,
    in_cluster: bool,
) -> Result<InterBroker, ConfigError> {
    let by_name = p.string("inter.broker.listener.name").filter(|v| !v.trim().is_empty());
    let by_protocol = p
        .string("security.inter.broker.protocol")
        .filter(|v| !v.trim().is_empty());
    let name = match (by_name, by_protocol) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "inter.broker.listener.name",
                "…",
                "only one of inter.broker.listener.name and security.inter.broker.protocol should be set",
            ))
        }
        (Some(name), None) => name.trim().to_ascii_uppercase(),
        (None, Some(protocol)) => protocol.trim().to_ascii_uppercase(),
        // Unset: a broker's first PLAINTEXT listener, which a cluster's
        // brokers must then have (else the others cannot reach it).
        (None, None) => {
            let plain = advertised.iter().any(|l| {
                security
                    .get(&l.name)
                    .is_none_or(|s| s.protocol == SecurityProtocol::Plaintext)
            });
            if in_cluster && !plain {
                return Err(invalid(
                    "inter.broker.listener.name",
                    "",
                    "a cluster's broker needs a PLAINTEXT listener for the other brokers, or inter.broker.listener.name naming one",
                ));
            }
            return Ok(InterBroker::default());
        }
    };
    if !advertised.iter().any(|l| l.name == name) {
        let names: Vec<&str> = advertised.iter().map(|l| l.name.as_str()).collect();
        return Err(invalid(
            "inter.broker.listener.name",
            &name,
            &format!(
                "must be a listener name defined in advertised.listeners; the valid options are {}",
                names.join(",")
            ),
        ));
    }
    let Some(listener) = security.get(&name) else {
        return Err(invalid(
            "inter.broker.listener.name",
            &name,
            "not found in listener.security.protocol.map",
        ));
    };
    let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
    let tls = match &listener.tls {
        None => None,
        Some(t) => {
            let ca = match &t.truststore {
                Some(TrustStore::File(path)) => path.clone(),
                _ => {
                    return Err(security_error(
                        format!("{prefix}ssl.truststore.location"),
                        "the inter-broker listener needs a truststore file: the CA the brokers' certificates are signed by, which this broker trusts when it connects to the others",
                    ))
                }
            };
            let identity = match &t.keystore {
                KeyStore::File(path) => Some(path.clone()),
                // Inline PEM stays the listener's own; the client side reads files.
                KeyStore::Inline { .. } if t.client_auth == ClientAuth::Required => {
                    return Err(security_error(
                        format!("{prefix}ssl.keystore.location"),
                        "with ssl.client.auth=required the brokers show each other their certificates: give the keystore as a file (ssl.keystore.location)",
                    ))
                }
                KeyStore::Inline { .. } => None,
            };
            // Kafka's brokers may be told not to check a peer's name (an
            // empty value); strom's always do.
            let algorithm = format!("{prefix}ssl.endpoint.identification.algorithm");
            let named = p
                .string(&algorithm)
                .or_else(|| p.string("ssl.endpoint.identification.algorithm"));
            if named.is_some_and(|a| !a.trim().eq_ignore_ascii_case("https")) {
                return Err(security_error(
                    algorithm,
                    "brokers always check that a broker's certificate names the host it advertises on the inter-broker listener (https): issue the certificates for those hosts",
                ));
            }
            Some(InterBrokerTls { ca, identity })
        }
    };
    let sasl = match &listener.sasl {
        None => None,
        Some(s) => {
            let key = "sasl.mechanism.inter.broker.protocol";
            let Some(mechanism) = p
                .string(key)
                .map(|m| m.trim().to_ascii_uppercase())
                .filter(|m| !m.is_empty())
            else {
                return Err(invalid(
                    key,
                    "",
                    "a SASL inter-broker listener needs it (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512); Kafka's default GSSAPI is not supported",
                ));
            };
            if !s.mechanisms.contains(&mechanism) {
                return Err(invalid(
                    key,
                    &mechanism,
                    &format!(
                        "must be included in {prefix}sasl.enabled.mechanisms when SASL is used for inter-broker communication"
                    ),
                ));
            }
            if mechanism == "OAUTHBEARER" {
                return Err(invalid(
                    key,
                    &mechanism,
                    "brokers cannot log in to each other with OAUTHBEARER yet: use PLAIN or SCRAM",
                ));
            }
            let jaas_key = format!("{prefix}{}.sasl.jaas.config", mechanism.to_ascii_lowercase());
            let jaas = p
                .string(&jaas_key)
                .map(|text| parse_jaas(&text).map_err(|reason| security_error(jaas_key.clone(), &reason)))
                .transpose()?;
            let option = |name: &str| {
                jaas.as_ref()
                    .and_then(|j| j.options.iter().find(|(k, _)| k == name))
                    .map(|(_, v)| v.clone())
            };
            let (Some(user), Some(password)) = (option("username"), option("password")) else {
                return Err(security_error(
                    jaas_key.clone(),
                    "the broker logs in to the others as the username=\"…\" password=\"…\" of this JAAS line",
                ));
            };
            Some((mechanism, user, password))
        }
    };
    Ok(InterBroker {
        listener: Some(name),
        tls,
        sasl,
    })
}

fn security_error(key: String, reason: &str) -> ConfigError {
    ConfigError::Security {
        key,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        let u = parse_store("etcd://h1:2379,h2:2379,h3:2379/strom/prod").unwrap();
        assert_eq!(u.endpoints, ["http://h1:2379", "http://h2:2379", "http://h3:2379"]);
        assert_eq!(u.prefix, "/strom/prod");
        let u = parse_store("etcd://127.0.2.1:2379").unwrap();
        assert_eq!((u.endpoints.len(), u.prefix.as_str()), (1, "/strom"));
        assert_eq!(parse_store("etcd://h:1/p/").unwrap().prefix, "/p");
        for bad in [
            "http://h:2379",
            "etcd://",
            "etcd://h",
            "etcd://h:0",
            "etcd://h:x",
            "etcd://h:1//x",
            "etcd://:1",
        ] {
            assert!(parse_store(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replica_selector_classes() {
        assert_eq!(
            ReplicaSelector::from_class(ReplicaSelector::RACK_AWARE_CLASS).unwrap(),
            ReplicaSelector::RackAware
        );
        assert_eq!(ReplicaSelector::from_class("").unwrap(), ReplicaSelector::Leader);
        assert!(ReplicaSelector::from_class("com.example.Mine").is_err());
        assert!(ReplicaSelector::from_class("RackAwareReplicaSelector").is_err());
    }
}

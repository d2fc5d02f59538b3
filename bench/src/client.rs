//! What every benchmark shares: client configs, topic creation, payloads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Why a benchmark could not run to the end.
#[derive(Debug)]
pub enum BenchError {
    Kafka(KafkaError),
    Failed(String),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Kafka(e) => write!(f, "{e}"),
            BenchError::Failed(s) => f.write_str(s),
        }
    }
}

impl From<KafkaError> for BenchError {
    fn from(e: KafkaError) -> Self {
        BenchError::Kafka(e)
    }
}

pub type Result<T> = std::result::Result<T, BenchError>;

/// The broker to measure and the librdkafka properties set on every client.
pub struct Env {
    pub bootstrap: String,
    pub properties: Vec<(String, String)>,
    /// The broker's process, whose CPU time `produce` and `consume` report.
    pub broker_pid: Option<u32>,
}

impl Env {
    /// A client config with the bootstrap servers, `base` and then the user's -X
    /// properties (which win).
    pub fn config(&self, base: &[(&str, String)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in base {
            c.set(*k, v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// The partition ids of `topic`, from the broker's metadata.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        let consumer: BaseConsumer = self.config(&[]).create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
        let t = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| BenchError::Failed(format!("topic {topic} is not in the metadata")))?;
        if let Some(e) = t.error() {
            return Err(BenchError::Failed(format!(
                "topic {topic}: {:?}",
                RDKafkaErrorCode::from(e)
            )));
        }
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Create `topic` with `partitions` partitions of `replicas` replicas each;
    /// an existing topic is used as it is.
    pub fn create_topic(&self, topic: &str, partitions: i32, replicas: i32) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.config(&[]).create()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BenchError::Failed(format!("runtime: {e}")))?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas));
        let results = runtime.block_on(admin.create_topics([&new], &options))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(BenchError::Failed(format!("creating topic {name}: {code}"))),
            }
        }
        Ok(())
    }
}

/// Which topic a producing benchmark writes to.
#[derive(Args, Debug, Clone)]
pub struct TopicArgs {
    /// Topic to write; by default a new one named after the benchmark and the time.
    #[arg(long)]
    pub topic: Option<String>,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replicas of each partition when the topic is created (a cluster's brokers).
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i32,
    /// Do not create the topic (it exists already, e.g. made with the broker's own tool).
    #[arg(long)]
    pub no_create: bool,
}

impl TopicArgs {
    pub fn fresh(partitions: i32) -> TopicArgs {
        TopicArgs {
            topic: None,
            partitions,
            replication_factor: 1,
            no_create: false,
        }
    }

    /// The topic's name, created unless `--no-create`.
    pub fn prepare(&self, env: &Env, kind: &str) -> Result<String> {
        let name = self
            .topic
            .clone()
            .unwrap_or_else(|| format!("bench-{kind}-{}", unix_micros()));
        if !self.no_create {
            env.create_topic(&name, self.partitions, self.replication_factor)?;
        }
        Ok(name)
    }
}

/// `key=value` of a -X option.
pub fn parse_property(s: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got {s:?}"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// Microseconds since the Unix epoch, the clock the latency records carry.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A record value of `size` bytes: uppercase letters from a fixed pseudo-random
/// sequence, like Kafka's own perf tool, so codecs see text rather than zeros.
pub fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_and_reject_missing_value() {
        assert_eq!(parse_property("linger.ms=5").unwrap(), ("linger.ms".into(), "5".into()));
        assert_eq!(parse_property("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_property("linger.ms").is_err());
    }

    #[test]
    fn payload_is_letters_of_the_asked_size() {
        let p = payload(1024);
        assert_eq!(p.len(), 1024);
        assert!(p.iter().all(|b| b.is_ascii_uppercase()));
        assert!(p.iter().collect::<std::collections::HashSet<_>>().len() > 20);
    }
}

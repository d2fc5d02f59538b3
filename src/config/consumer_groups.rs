//! Settings of consumer-protocol groups (KIP-848), with Kafka's names, defaults
//! and bounds: `group.consumer.*` and `group.coordinator.rebalance.protocols`.

use super::{ConfigError, Props};
use crate::group::consumer::{assignor, ConsumerConfig, MigrationPolicy};

fn invalid(key: &'static str, value: impl ToString, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A value with its min/max keys, checked as Kafka checks them.
fn bounded(
    p: &Props<'_>,
    key: &'static str,
    min_key: &'static str,
    max_key: &'static str,
    d: [i32; 3],
) -> Result<i32, ConfigError> {
    let value = p.parse(key)?.unwrap_or(d[0]);
    let min = p.parse(min_key)?.unwrap_or(d[1]);
    let max = p.parse(max_key)?.unwrap_or(d[2]);
    if min <= 0 || min > max {
        return Err(invalid(
            min_key,
            min,
            &format!("must be positive and at most {max_key} ({max})"),
        ));
    }
    if value < min || value > max {
        return Err(invalid(
            key,
            value,
            &format!("must be between {min_key} ({min}) and {max_key} ({max})"),
        ));
    }
    Ok(value)
}

pub(super) fn resolve(p: &Props<'_>) -> Result<ConsumerConfig, ConfigError> {
    let d = ConsumerConfig::default();
    let heartbeat_interval_ms = bounded(
        p,
        "group.consumer.heartbeat.interval.ms",
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
        [d.heartbeat_interval_ms, 5_000, 15_000],
    )?;
    let session_timeout_ms = bounded(
        p,
        "group.consumer.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
        [d.session_timeout_ms, 45_000, 60_000],
    )?;
    if heartbeat_interval_ms >= session_timeout_ms {
        return Err(invalid(
            "group.consumer.heartbeat.interval.ms",
            heartbeat_interval_ms,
            "must be below group.consumer.session.timeout.ms",
        ));
    }
    let max_size = match p.parse::<i32>("group.consumer.max.size")? {
        Some(n) if n < 1 => return Err(invalid("group.consumer.max.size", n, "must be at least 1")),
        Some(n) => n as usize,
        None => d.max_size,
    };
    let assignors = match p.string("group.consumer.assignors") {
        None => d.assignors,
        Some(list) => {
            let names: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            // Kafka also takes its classes' names.
            let names: Vec<String> = names
                .into_iter()
                .map(|n| match n.as_str() {
                    "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => assignor::UNIFORM.to_string(),
                    "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => assignor::RANGE.to_string(),
                    _ => n,
                })
                .collect();
            if names.is_empty() || names.iter().any(|n| n != assignor::UNIFORM && n != assignor::RANGE) {
                return Err(invalid(
                    "group.consumer.assignors",
                    list,
                    "the assignors are uniform and range",
                ));
            }
            names
        }
    };
    let migration_policy = match p.string("group.consumer.migration.policy") {
        None => d.migration_policy,
        Some(v) => MigrationPolicy::parse(&v).ok_or_else(|| {
            invalid(
                "group.consumer.migration.policy",
                &v,
                "one of disabled, upgrade, downgrade, bidirectional",
            )
        })?,
    };
    let enabled = match p.string("group.coordinator.rebalance.protocols") {
        None => true,
        Some(v) => {
            let list: Vec<String> = v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect();
            if !list.iter().any(|s| s == "classic") || list.iter().any(|s| s != "classic" && s != "consumer") {
                return Err(invalid(
                    "group.coordinator.rebalance.protocols",
                    v,
                    "classic, optionally with consumer",
                ));
            }
            list.iter().any(|s| s == "consumer")
        }
    };
    Ok(ConsumerConfig {
        heartbeat_interval_ms,
        session_timeout_ms,
        max_size,
        assignors,
        migration_policy,
        enabled,
    })
}

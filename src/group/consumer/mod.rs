//! Consumer groups of the next-generation protocol (KIP-848): the broker computes
//! assignments and each member reconciles to its own at its own pace through
//! ConsumerGroupHeartbeat, with no group-wide stop.
//!
//! - [`assignor`]: the server assignors `uniform` and `range`.
//! - [`member`]: a member and its reconciliation (revoke before assign).
//! - [`group`]: a group, its epochs and the heartbeat.
//! - [`records`]: their records in `__consumer_offsets`, in Kafka's formats.
//! - [`topics`]: what subscriptions resolve against; RE2-style patterns.

pub mod assignor;
pub mod group;
pub mod member;
pub mod records;
pub mod topics;

use member::ConsumerMember;

/// `group.consumer.migration.policy`: which way a group may switch protocols
/// while it has members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    Bidirectional,
}

impl MigrationPolicy {
    pub fn parse(s: &str) -> Option<MigrationPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "disabled" => Some(MigrationPolicy::Disabled),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            _ => None,
        }
    }

    pub fn upgrade(self) -> bool {
        matches!(self, MigrationPolicy::Upgrade | MigrationPolicy::Bidirectional)
    }

    pub fn downgrade(self) -> bool {
        matches!(self, MigrationPolicy::Downgrade | MigrationPolicy::Bidirectional)
    }
}

/// Broker settings for consumer-protocol groups (Kafka's names).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// group.consumer.heartbeat.interval.ms
    pub heartbeat_interval_ms: i32,
    /// group.consumer.session.timeout.ms
    pub session_timeout_ms: i32,
    /// group.consumer.max.size
    pub max_size: usize,
    /// group.consumer.assignors: the first is the default.
    pub assignors: Vec<String>,
    /// group.consumer.migration.policy
    pub migration_policy: MigrationPolicy,
    /// `consumer` is in group.coordinator.rebalance.protocols.
    pub enabled: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            heartbeat_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            max_size: i32::MAX as usize,
            assignors: vec![assignor::UNIFORM.to_string(), assignor::RANGE.to_string()],
            migration_policy: MigrationPolicy::Bidirectional,
            enabled: true,
        }
    }
}

impl ConsumerConfig {
    pub fn default_assignor(&self) -> &str {
        self.assignors.first().map_or(assignor::UNIFORM, String::as_str)
    }

    /// A member's session timeout: a classic member's own, else the group's.
    pub fn session_timeout_for(&self, member: Option<&ConsumerMember>) -> i32 {
        member
            .and_then(|m| m.meta.classic.as_ref())
            .map_or(self.session_timeout_ms, |c| c.session_timeout_ms)
    }
}

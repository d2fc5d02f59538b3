//! A broker's registration in the cluster's metadata store: who it is, how each
//! of its listeners is reached, its rack and state. Kept under
//! `<prefix>/brokers/<id>` as JSON, bound to the broker's lease, so the key goes
//! when the broker stops renewing it (as ZooKeeper's ephemeral nodes did).
//! The key's creation revision is the broker's epoch: each registration of the
//! same id gets a larger one.

use serde::{Deserialize, Serialize};

/// Where a broker's lifecycle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    /// Registered, not yet serving.
    Starting,
    Running,
    /// Stopping: leadership moves off it (controlled shutdown).
    ShuttingDown,
}

/// One listener as other brokers and clients reach it (its advertised address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredListener {
    pub name: String,
    pub host: String,
    pub port: i32,
    pub security_protocol: String,
}

/// The value of `<prefix>/brokers/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// The format's version (1).
    pub v: u32,
    pub id: i32,
    pub listeners: Vec<RegisteredListener>,
    pub rack: Option<String>,
    pub state: BrokerState,
    /// A new random value each time the process starts: tells a restarted
    /// broker from the one before it.
    pub incarnation: String,
}

/// A broker as the cluster's metadata has it: its registration and its epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredBroker {
    pub registration: BrokerRegistration,
    /// The creation revision of its key (Kafka's broker epoch).
    pub epoch: i64,
}

impl BrokerRegistration {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The registration in `value`; None when it is not one (a key written by
    /// something else is ignored rather than trusted).
    pub fn from_json(value: &[u8]) -> Option<BrokerRegistration> {
        serde_json::from_slice(value)
            .ok()
            .filter(|r: &BrokerRegistration| r.v == 1)
    }
}

impl RegisteredBroker {
    /// The registration a key `brokers/<id>` holds: only when the value is a
    /// sound registration of the id its key names, bound to a lease, with
    /// listeners a client could use. Anything else is ignored (its key counts
    /// as no broker): a key written by hand is never trusted.
    pub fn from_key(id: i32, value: &[u8], lease: i64, create_revision: i64) -> Option<RegisteredBroker> {
        // A broker's key lives and dies with its lease: one without is not a
        // broker's (written by hand), and would never go.
        if lease == 0 {
            tracing::warn!(id, "ignoring a broker registration bound to no lease");
            return None;
        }
        let registration = BrokerRegistration::from_json(value)?;
        let sound_listeners = registration
            .listeners
            .iter()
            .all(|l| !l.name.is_empty() && !l.host.is_empty() && l.host.len() <= 255 && (1..=65535).contains(&l.port));
        let sound_rack = registration.rack.as_ref().is_none_or(|r| r.len() <= 255);
        if registration.id != id || registration.listeners.is_empty() || !sound_listeners || !sound_rack {
            tracing::warn!(id, "ignoring a broker registration that is not sound");
            return None;
        }
        Some(RegisteredBroker {
            registration,
            epoch: create_revision,
        })
    }
}

/// The broker id the rest of a key after `brokers/` names: digits only,
/// nothing deeper (another cluster's keys under a longer prefix are not
/// brokers here).
pub fn broker_key_id(rest: &str) -> Option<i32> {
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_round_trip_as_json() {
        let r = BrokerRegistration {
            v: 1,
            id: 2,
            listeners: vec![RegisteredListener {
                name: "PLAINTEXT".into(),
                host: "127.0.1.2".into(),
                port: 19092,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: Some("b".into()),
            state: BrokerState::Running,
            incarnation: "x".into(),
        };
        let json = String::from_utf8(r.to_json()).unwrap();
        assert!(json.contains(r#""state":"running""#), "{json}");
        assert_eq!(BrokerRegistration::from_json(json.as_bytes()), Some(r));
        assert_eq!(BrokerRegistration::from_json(b"{}"), None);
        assert_eq!(BrokerRegistration::from_json(br#"{"v":2}"#), None);
    }
}

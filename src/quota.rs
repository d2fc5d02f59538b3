//! Client quotas, as Kafka's ClientQuotaManager keeps them (KIP-13, KIP-55,
//! KIP-124, KIP-546, KIP-612):
//!
//! - **What is limited**: `producer_byte_rate` and `consumer_byte_rate` (bytes/s
//!   of produce requests and fetch responses), `request_percentage` (time spent
//!   on a client's requests, in percent of one thread), for a user and/or a
//!   client id; `connection_creation_rate` (new connections/s) for an IP.
//! - **Which quota applies** to (user U, client C), the first that exists:
//!   U+C, U+default client, U, default user+C, default user+default client,
//!   default user, C, default client. Each user (and client) counts against its
//!   own copy of a default quota.
//! - **Enforcement** (KIP-219): a client may use at once what Kafka's sampled
//!   rate lets through (`quota.window.num` − 1 windows of
//!   `quota.window.size.seconds` at its quota, 10 s by default), then at its
//!   quota; over it, the response says how long until it is back within it
//!   (`throttle_time_ms`) and the connection reads nothing more for that long.
//!
//! Quotas are kept in `<data dir>/client-quotas.json`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

/// A quota entity's name: a specific one, or the default for its type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Name {
    Default,
    Named(String),
}

/// Who a quota is for: a user and/or a client id, or an IP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity {
    pub user: Option<Name>,
    pub client_id: Option<Name>,
    pub ip: Option<Name>,
}

impl Entity {
    /// (type, name) pairs as the quota APIs carry them (None = the default).
    pub fn components(&self) -> Vec<(&'static str, Option<&str>)> {
        fn name(n: &Name) -> Option<&str> {
            match n {
                Name::Default => None,
                Name::Named(s) => Some(s.as_str()),
            }
        }
        let mut out = Vec::new();
        if let Some(u) = &self.user {
            out.push(("user", name(u)));
        }
        if let Some(c) = &self.client_id {
            out.push(("client-id", name(c)));
        }
        if let Some(i) = &self.ip {
            out.push(("ip", name(i)));
        }
        out
    }
}

/// The quota keys strom enforces, and which entities they belong to.
pub const CLIENT_KEYS: [&str; 4] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];
pub const IP_KEYS: [&str; 1] = ["connection_creation_rate"];

/// What is measured against a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Produce,
    Fetch,
    Request,
    Connection,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Produce => "producer_byte_rate",
            Kind::Fetch => "consumer_byte_rate",
            Kind::Request => "request_percentage",
            Kind::Connection => "connection_creation_rate",
        }
    }
}

/// A client's usage against its quota: a token bucket (as Kafka's KIP-599
/// quotas) that holds a burst of all windows but one — what Kafka's sampled
/// rate lets a new or idle client send at once — and refills at the quota.
/// Unlike a sampled rate it has no sawtooth when an old sample expires.
#[derive(Debug)]
struct Sensor {
    /// Units the client may still use at once; negative = owed.
    tokens: f64,
    last_ms: i64,
}

impl Sensor {
    fn new(burst: f64, now_ms: i64) -> Sensor {
        Sensor {
            tokens: burst,
            last_ms: now_ms,
        }
    }

    /// Count `value` at `now_ms` against `quota` units/s: how long (ms) until
    /// the client is back within it.
    fn record(&mut self, value: f64, now_ms: i64, quota: f64, burst: f64) -> f64 {
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * quota).min(burst) - value;
        self.last_ms = self.last_ms.max(now_ms);
        if self.tokens >= 0.0 {
            0.0
        } else {
            -self.tokens / quota * 1000.0
        }
    }

    /// Whether the bucket is full again (nothing owed, nothing to remember).
    fn idle(&self, now_ms: i64, quota: f64, burst: f64) -> bool {
        self.tokens + (now_ms - self.last_ms).max(0) as f64 / 1000.0 * quota >= burst
    }
}

/// Sensors kept before idle ones are dropped (each client id, user and
/// address counted gets one; Kafka expires them after an hour idle).
const PRUNE_AT: usize = 4096;

type Configs = BTreeMap<Entity, BTreeMap<String, f64>>;

/// A quota key set to a value, or removed (None).
pub type QuotaOp = (String, Option<f64>);

pub struct QuotaManager {
    path: PathBuf,
    configs: RwLock<Configs>,
    /// Usage by (kind, the entity whose quota applies, with real names).
    sensors: Mutex<HashMap<(Kind, Entity), Sensor>>,
    window_ms: i64,
    windows: usize,
}

impl QuotaManager {
    pub fn open(data_dir: &Path, window: Duration, windows: usize) -> std::io::Result<QuotaManager> {
        let path = data_dir.join("client-quotas.json");
        let configs = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Configs::new(),
            Err(e) => return Err(e),
        };
        Ok(QuotaManager {
            path,
            configs: RwLock::new(configs),
            sensors: Mutex::new(HashMap::new()),
            window_ms: window.as_millis().max(1) as i64,
            windows: windows.max(2),
        })
    }

    /// Whether any client quota is set (the data path skips all of this if not).
    pub fn any(&self) -> bool {
        !self.configs.read().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// The quota for (user, client id) of `kind`, and the entity it is counted
    /// under (a default's entity with the real names, so each user has its own).
    fn resolve(&self, kind: Kind, user: &str, client_id: &str) -> Option<(f64, Entity)> {
        let configs = self.configs.read().unwrap_or_else(|e| e.into_inner());
        let named = |s: &str| Name::Named(s.to_string());
        let candidates = [
            (Some(named(user)), Some(named(client_id))),
            (Some(named(user)), Some(Name::Default)),
            (Some(named(user)), None),
            (Some(Name::Default), Some(named(client_id))),
            (Some(Name::Default), Some(Name::Default)),
            (Some(Name::Default), None),
            (None, Some(named(client_id))),
            (None, Some(Name::Default)),
        ];
        for (u, c) in candidates {
            let entity = Entity {
                user: u.clone(),
                client_id: c.clone(),
                ip: None,
            };
            if let Some(value) = configs.get(&entity).and_then(|q| q.get(kind.key())) {
                let counted = Entity {
                    user: u.map(|_| named(user)),
                    client_id: c.map(|_| named(client_id)),
                    ip: None,
                };
                return Some((*value, counted));
            }
        }
        None
    }

    /// Record `value` (bytes, or for requests ms of work) for the client, and
    /// how long it must wait (ms) to be back within its quota.
    pub fn record(&self, kind: Kind, user: &str, client_id: &str, value: f64, now_ms: i64) -> u64 {
        if !self.any() {
            return 0;
        }
        let Some((quota, entity)) = self.resolve(kind, user, client_id) else {
            return 0;
        };
        // request_percentage is percent of one thread: ms of work per s ÷ 10.
        let (value, quota) = match kind {
            Kind::Request => (value, quota * 10.0),
            _ => (value, quota),
        };
        if quota <= 0.0 {
            return 0;
        }
        let burst = self.burst(quota);
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        self.prune(&mut sensors, now_ms);
        let sensor = sensors
            .entry((kind, entity))
            .or_insert_with(|| Sensor::new(burst, now_ms));
        let throttle = sensor.record(value, now_ms, quota, burst);
        throttle.min(self.window_ms.saturating_mul(self.windows as i64) as f64) as u64
    }

    /// What a client may use at once: all windows but one at its quota.
    fn burst(&self, quota: f64) -> f64 {
        let span_s = self
            .window_ms
            .saturating_mul(self.windows.saturating_sub(1).max(1) as i64) as f64
            / 1000.0;
        quota * span_s
    }

    /// Drop idle sensors once there are many (clients come and go; their ids
    /// must not hold memory for ever). A dropped one starts full again, as an
    /// idle one would be.
    fn prune(&self, sensors: &mut HashMap<(Kind, Entity), Sensor>, now_ms: i64) {
        if sensors.len() >= PRUNE_AT {
            let quota_of = |kind: Kind, e: &Entity| match (kind, &e.ip) {
                (Kind::Connection, Some(Name::Named(ip))) => self.ip_quota(ip),
                (kind, _) => {
                    let name = |n: &Option<Name>| match n {
                        Some(Name::Named(s)) => s.clone(),
                        _ => String::new(),
                    };
                    self.resolve(kind, &name(&e.user), &name(&e.client_id)).map(|(q, _)| q)
                }
            };
            sensors.retain(|(kind, e), s| quota_of(*kind, e).is_some_and(|q| !s.idle(now_ms, q, self.burst(q))));
        }
    }

    /// Whether another connection from `ip` fits its connection_creation_rate
    /// (counting it either way, as Kafka does).
    pub fn admit_connection(&self, ip: std::net::IpAddr, now_ms: i64) -> bool {
        if !self.any() {
            return true;
        }
        let ip = ip.to_canonical().to_string();
        let ip = ip.as_str();
        let quota = self.ip_quota(ip);
        let Some(quota) = quota else {
            return true;
        };
        let entity = Entity {
            ip: Some(Name::Named(ip.to_string())),
            ..Entity::default()
        };
        let burst = self.burst(quota).max(1.0);
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        self.prune(&mut sensors, now_ms);
        let sensor = sensors
            .entry((Kind::Connection, entity))
            .or_insert_with(|| Sensor::new(burst, now_ms));
        sensor.record(1.0, now_ms, quota, burst) == 0.0
    }

    /// The connection_creation_rate of an address: its own, or the default's.
    fn ip_quota(&self, ip: &str) -> Option<f64> {
        let configs = self.configs.read().unwrap_or_else(|e| e.into_inner());
        let for_ip = |n: Name| {
            configs
                .get(&Entity {
                    ip: Some(n),
                    ..Entity::default()
                })
                .and_then(|q| q.get("connection_creation_rate"))
                .copied()
        };
        for_ip(Name::Named(ip.to_string())).or_else(|| for_ip(Name::Default))
    }

    /// The quotas of entities that match `filter`.
    pub fn describe(&self, filter: impl Fn(&Entity) -> bool) -> Vec<(Entity, BTreeMap<String, f64>)> {
        let configs = self.configs.read().unwrap_or_else(|e| e.into_inner());
        configs
            .iter()
            .filter(|(e, _)| filter(e))
            .map(|(e, q)| (e.clone(), q.clone()))
            .collect()
    }

    /// Set (Some) or remove (None) quota keys of entities; checked first, saved
    /// before return. The result of each entry, in order.
    pub fn alter(
        &self,
        changes: Vec<(Entity, Vec<QuotaOp>)>,
        validate_only: bool,
    ) -> std::io::Result<Vec<Result<(), String>>> {
        let mut configs = self.configs.write().unwrap_or_else(|e| e.into_inner());
        let (next, results) = altered(&configs, &changes, validate_only);
        if next != *configs {
            crate::util::fs::write_atomically(&self.path, &encode(&next))?;
            *configs = next;
            drop(configs);
            self.usage_starts_over();
        }
        Ok(results)
    }

    /// [`QuotaManager::alter`] on a cluster's quota document (None: none
    /// yet): the new document, if anything changed, and each entry's result.
    pub fn alter_in(
        document: Option<&[u8]>,
        changes: &[(Entity, Vec<QuotaOp>)],
        validate_only: bool,
    ) -> Result<(Option<Vec<u8>>, AlterResults), String> {
        let configs = document.map_or(Ok(Configs::new()), decode)?;
        let (next, results) = altered(&configs, changes, validate_only);
        Ok(((next != configs).then(|| encode(&next)), results))
    }

    /// The quotas as a document (None when there are none).
    pub fn document(&self) -> Option<Vec<u8>> {
        let configs = self.configs.read().unwrap_or_else(|e| e.into_inner());
        (!configs.is_empty()).then(|| encode(&configs))
    }

    /// Take a cluster's quota document; one that does not decode is refused
    /// and the quotas in force stay.
    /// What is taken is kept in the file too (the last sound state).
    pub fn install(&self, document: &[u8]) -> Result<(), String> {
        let next = decode(document)?;
        let mut configs = self.configs.write().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = crate::util::fs::write_atomically(&self.path, &encode(&next)) {
            tracing::warn!(error = %e, "could not keep the cluster's client quotas in their file");
        }
        *configs = next;
        drop(configs);
        self.usage_starts_over();
        Ok(())
    }

    /// Usage counted under quotas that changed starts over. (Not under the
    /// config lock: pruning takes the locks the other way round.)
    fn usage_starts_over(&self) {
        self.sensors.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Each entry's result of AlterClientQuotas, in order.
pub type AlterResults = Vec<Result<(), String>>;

fn altered(configs: &Configs, changes: &[(Entity, Vec<QuotaOp>)], validate_only: bool) -> (Configs, AlterResults) {
    let mut next = configs.clone();
    let mut results = Vec::new();
    for (entity, ops) in changes {
        let mut entity = entity.clone();
        // Addresses in one notation, so lookups find them.
        if let Some(Name::Named(ip)) = &entity.ip {
            if let Ok(addr) = ip.parse::<std::net::IpAddr>() {
                entity.ip = Some(Name::Named(addr.to_canonical().to_string()));
            }
        }
        let checked = check(&entity, ops);
        if checked.is_ok() && !validate_only {
            let quotas = next.entry(entity.clone()).or_default();
            for (key, value) in ops {
                match value {
                    Some(v) => quotas.insert(key.clone(), *v),
                    None => quotas.remove(key),
                };
            }
            if quotas.is_empty() {
                next.remove(&entity);
            }
        }
        results.push(checked);
    }
    (next, results)
}

/// Kafka's checks of a quota change.
fn check(entity: &Entity, ops: &[QuotaOp]) -> Result<(), String> {
    if entity == &Entity::default() {
        return Err("Invalid empty client quota entity".into());
    }
    if entity.ip.is_some() && (entity.user.is_some() || entity.client_id.is_some()) {
        return Err("Invalid quota entity combination: an ip entity stands alone".into());
    }
    if let Some(Name::Named(ip)) = &entity.ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("{ip} is not a valid IP address"));
        }
    }
    let allowed: &[&str] = if entity.ip.is_some() { &IP_KEYS } else { &CLIENT_KEYS };
    let mut seen = std::collections::HashSet::new();
    for (key, value) in ops {
        if !allowed.contains(&key.as_str()) {
            return Err(format!("Invalid configuration key {key}"));
        }
        if !seen.insert(key) {
            return Err(format!("Duplicate quota key {key}"));
        }
        if let Some(v) = value {
            if !v.is_finite() || *v <= 0.0 {
                return Err(format!("Invalid quota value {v} for {key}: it must be positive"));
            }
        }
    }
    Ok(())
}

/// `{"version":1,"quotas":[{"entity":{"user":"alice","client-id":null},
/// "quotas":{"producer_byte_rate":1048576}}]}` — null is the type's default.
fn encode(configs: &Configs) -> Vec<u8> {
    let list: Vec<serde_json::Value> = configs
        .iter()
        .map(|(entity, quotas)| {
            let entity: serde_json::Map<String, serde_json::Value> = entity
                .components()
                .into_iter()
                .map(|(t, n)| (t.to_string(), n.map_or(serde_json::Value::Null, |n| n.into())))
                .collect();
            serde_json::json!({"entity": entity, "quotas": quotas})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"version": 1, "quotas": list})).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<Configs, String> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if doc.get("version").and_then(|v| v.as_i64()) != Some(1) {
        return Err("unknown version".into());
    }
    let mut out = Configs::new();
    for item in doc.get("quotas").and_then(|q| q.as_array()).ok_or("no quotas")? {
        let mut entity = Entity::default();
        for (t, n) in item.get("entity").and_then(|e| e.as_object()).ok_or("no entity")? {
            let name = match n {
                serde_json::Value::String(s) => Name::Named(s.clone()),
                serde_json::Value::Null => Name::Default,
                other => return Err(format!("an entity name must be a string or null, not {other}")),
            };
            match t.as_str() {
                "user" => entity.user = Some(name),
                "client-id" => entity.client_id = Some(name),
                "ip" => entity.ip = Some(name),
                other => return Err(format!("entity type {other}")),
            }
        }
        let quotas = item
            .get("quotas")
            .and_then(|q| q.as_object())
            .ok_or("no quota values")?
            .iter()
            .map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)).ok_or(format!("{k} is not a number")))
            .collect::<Result<BTreeMap<String, f64>, _>>()?;
        // Held to what AlterClientQuotas accepts (a document may be written
        // by hand): a zero or negative rate would refuse every client.
        let ops: Vec<QuotaOp> = quotas.iter().map(|(k, v)| (k.clone(), Some(*v))).collect();
        check(&entity, &ops)?;
        if quotas.is_empty() {
            return Err("an entity without quotas".into());
        }
        out.insert(entity, quotas);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(u: &str) -> Entity {
        Entity {
            user: Some(Name::Named(u.into())),
            ..Entity::default()
        }
    }

    #[test]
    fn a_clusters_quota_document_is_held_to_what_the_api_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let q = QuotaManager::open(dir.path(), Duration::from_secs(1), 11).unwrap();
        for bad in [
            r#"{"version":1,"quotas":[{"entity":{"ip":null},"quotas":{"connection_creation_rate":-1}}]}"#,
            r#"{"version":1,"quotas":[{"entity":{"user":"a"},"quotas":{"producer_byte_rate":0}}]}"#,
            r#"{"version":1,"quotas":[{"entity":{"user":"a"},"quotas":{"bogus_key":5}}]}"#,
            r#"{"version":1,"quotas":[{"entity":{"user":5},"quotas":{"producer_byte_rate":1}}]}"#,
            r#"{"version":1,"quotas":[{"entity":{"user":"a"},"quotas":{}}]}"#,
        ] {
            assert!(q.install(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(!q.any(), "nothing refused is in force");
        let good = r#"{"version":1,"quotas":[{"entity":{"user":"a"},"quotas":{"producer_byte_rate":1024}}]}"#;
        q.install(good.as_bytes()).unwrap();
        // Kept in the file too: a broker restarted has it.
        let again = QuotaManager::open(dir.path(), Duration::from_secs(1), 11).unwrap();
        assert!(again.any());
    }

    #[test]
    fn the_most_specific_quota_applies_and_defaults_are_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let q = QuotaManager::open(dir.path(), Duration::from_secs(1), 11).unwrap();
        let set = |e: Entity, v: f64| (e, vec![("producer_byte_rate".to_string(), Some(v))]);
        let default_user = Entity {
            user: Some(Name::Default),
            ..Entity::default()
        };
        let alice_app = Entity {
            user: Some(Name::Named("alice".into())),
            client_id: Some(Name::Named("app".into())),
            ip: None,
        };
        let r = q
            .alter(
                vec![
                    set(default_user, 100.0),
                    set(user("alice"), 200.0),
                    set(alice_app, 300.0),
                ],
                false,
            )
            .unwrap();
        assert!(r.iter().all(Result::is_ok));
        assert_eq!(q.resolve(Kind::Produce, "alice", "app").unwrap().0, 300.0);
        assert_eq!(q.resolve(Kind::Produce, "alice", "other").unwrap().0, 200.0);
        let (v, counted) = q.resolve(Kind::Produce, "bob", "x").unwrap();
        assert_eq!((v, counted), (100.0, user("bob")));
        assert!(q.resolve(Kind::Fetch, "bob", "x").is_none());
        // A burst of ten windows' worth, then the quota: a throttle for what is owed.
        assert_eq!(q.record(Kind::Produce, "bob", "x", 1000.0, 0), 0);
        let t = q.record(Kind::Produce, "bob", "x", 100.0, 500);
        assert_eq!(t, 500, "the burst used up, 50 bytes refilled, 50 owed: half a second");
        // Kept across a reopen.
        let again = QuotaManager::open(dir.path(), Duration::from_secs(1), 11).unwrap();
        assert_eq!(again.describe(|_| true).len(), 3);
    }

    #[test]
    fn changes_are_checked_as_kafka_does() {
        let dir = tempfile::tempdir().unwrap();
        let q = QuotaManager::open(dir.path(), Duration::from_secs(1), 11).unwrap();
        let ip = Entity {
            ip: Some(Name::Named("10.0.0.1".into())),
            ..Entity::default()
        };
        let bad = q
            .alter(
                vec![
                    (user("a"), vec![("connection_creation_rate".into(), Some(1.0))]),
                    (user("a"), vec![("producer_byte_rate".into(), Some(-1.0))]),
                    (Entity::default(), vec![("producer_byte_rate".into(), Some(1.0))]),
                    (ip.clone(), vec![("connection_creation_rate".into(), Some(2.0))]),
                ],
                false,
            )
            .unwrap();
        assert!(bad[0].is_err() && bad[1].is_err() && bad[2].is_err() && bad[3].is_ok());
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for i in 0..20 {
            assert!(q.admit_connection(a, i), "a burst of ten windows' worth: {i}");
        }
        assert!(!q.admit_connection(a, 20), "21 connections in 10 s over 2/s");
        assert!(q.admit_connection(b, 20));
        // The same address through an IPv6 socket.
        assert!(!q.admit_connection("::ffff:10.0.0.1".parse().unwrap(), 21));
        let named = |ip: &str| Entity {
            ip: Some(Name::Named(ip.into())),
            ..Entity::default()
        };
        let r = q.alter(
            vec![(named("not-an-ip"), vec![("connection_creation_rate".into(), Some(1.0))])],
            false,
        );
        assert!(r.unwrap()[0].is_err());
        // Removing the last key removes the entity.
        q.alter(
            vec![(named("10.0.0.1"), vec![("connection_creation_rate".into(), None)])],
            false,
        )
        .unwrap();
        assert!(!q.any());
    }
}

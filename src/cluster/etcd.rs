//! The cluster's metadata store: etcd, through its v3 API (the etcd-client
//! crate). etcd holds metadata only, never records: which brokers are alive and
//! how to reach them (each under a key bound to its lease), the cluster id, and
//! (in later stages) the controller, topics and partitions. Every broker keeps a
//! view of it from a watch, so answers to clients come from memory.
//!
//! Keys live under the prefix of `metadata.store` (`/strom` by default):
//!
//! | key | value |
//! |---|---|
//! | `P/cluster/id` | the cluster id (22-character base64), written once by the first broker |
//! | `P/brokers/<id>` | [`BrokerRegistration`] as JSON, bound to the broker's lease; its creation revision is the broker epoch |
//! | `P/controller` | [`ControllerRecord`] as JSON, bound to the controller's lease: the active controller |
//! | `P/controller_epoch` | the last controller epoch, decimal: one more at each election |
//! | `P/security/acls`, `P/security/scram-credentials`, `P/quotas/clients`, `P/configs/brokers/default` | the shared documents (module `documents`): each the JSON its file holds on one broker |
//!
//! Controller election is one etcd transaction: "if `P/controller` does not
//! exist and `P/controller_epoch` is as I read it, write both". The winner's
//! key lives as long as its broker's lease; the revision that created it fences
//! every write the controller makes (a deposed controller's writes fail).

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
    WatchStream,
};

use super::image::{KeyValue, MetadataImage};
use super::registration::{broker_key_id, BrokerRegistration, RegisteredBroker};
use crate::config::cluster::MetadataStoreUrl;
use crate::error::{Error, Result};

mod documents;
mod producer_ids;

/// How long one call to etcd may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn store_error(e: etcd_client::Error) -> Error {
    Error::MetadataStore(e.to_string())
}

fn bad_epoch(key: &str) -> Error {
    Error::MetadataStore(format!("{key} holds no controller epoch that can grow; fix it by hand"))
}

/// What a broker's key holds.
#[derive(Debug)]
pub enum KeyState {
    Absent,
    /// A sound registration bound to a lease.
    Registered(i64, RegisteredBroker),
    /// Something else, at this modification revision.
    Unsound(i64),
}

/// A call to an etcd member that is down fails before it is sent ("tcp
/// connect error"); calls are spread over the members, so such a call is made
/// again (at most 4 times) and one member down fails no call the others could
/// answer. A call that may have reached etcd is never repeated.
async fn retrying<T, Fut>(mut call: impl FnMut() -> Fut) -> std::result::Result<T, etcd_client::Error>
where
    Fut: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let mut tries = 0u64;
    loop {
        match call().await {
            Err(e) if tries < 4 && not_sent(&e) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            done => return done,
        }
    }
}

fn not_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            // gRPC's UNAVAILABLE (14), from connecting.
            i32::from(status.code()) == 14 && status.message().contains("connect")
        }
        etcd_client::Error::TransportError(_) => true,
        _ => false,
    }
}

/// etcd says the lease does not exist (any more).
fn lease_gone(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::LeaseKeepAliveError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            // gRPC's NOT_FOUND (5).
            i32::from(status.code()) == 5 || status.message().contains("lease not found")
        }
        _ => false,
    }
}

/// The broker id a key `<prefix>brokers/<id>` names.
fn key_id(brokers_prefix: &str, key: &[u8]) -> Option<i32> {
    broker_key_id(std::str::from_utf8(key).ok()?.strip_prefix(brokers_prefix)?)
}

/// A registration as the key and value hold it ([`RegisteredBroker::from_key`]).
fn registered(brokers_prefix: &str, kv: &etcd_client::KeyValue) -> Option<RegisteredBroker> {
    let id = key_id(brokers_prefix, kv.key())?;
    RegisteredBroker::from_key(id, kv.value(), kv.lease(), kv.create_revision())
}

/// A connection to the cluster's etcd, with the cluster's key prefix.
#[derive(Clone)]
pub struct MetadataStore {
    client: Client,
    prefix: String,
}

/// A broker's registration in force: its lease and its broker epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub lease: i64,
    pub epoch: i64,
}

pub use super::image::ControllerRecord;

/// A won election: the controller epoch, and the revision of the controller
/// key that every write of this controller is conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerSession {
    pub epoch: i32,
    pub guard_revision: i64,
}

impl MetadataStore {
    /// Connect to every endpoint (calls go to any that answers). etcd members
    /// cut off from their quorum refuse calls rather than answer from stale
    /// data (`require_leader`).
    pub async fn connect(url: &MetadataStoreUrl) -> Result<MetadataStore> {
        let options = ConnectOptions::new()
            .with_connect_timeout(CALL_TIMEOUT)
            .with_timeout(CALL_TIMEOUT)
            // etcd refuses pings more often than every 5 s (too_many_pings).
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_require_leader(true);
        let client = Client::connect(&url.endpoints, Some(options))
            .await
            .map_err(store_error)?;
        Ok(MetadataStore {
            client,
            prefix: url.prefix.clone(),
        })
    }

    /// A transaction, made again if it could not reach etcd (see [`retrying`]).
    async fn txn(&self, txn: Txn) -> Result<etcd_client::TxnResponse> {
        let call = || {
            let (mut client, txn) = (self.client.clone(), txn.clone());
            async move { client.txn(txn).await }
        };
        retrying(call).await.map_err(store_error)
    }

    /// A read, made again if it could not reach etcd (see [`retrying`]).
    async fn get(&self, key: &str, options: Option<GetOptions>) -> Result<etcd_client::GetResponse> {
        let call = || {
            let (mut client, options) = (self.client.clone(), options.clone());
            async move { client.get(key, options).await }
        };
        retrying(call).await.map_err(store_error)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    fn brokers_prefix(&self) -> String {
        self.key("brokers/")
    }

    /// The cluster id: the one in etcd, or `proposed` if there is none yet
    /// (written in the same transaction that checks, so two first brokers
    /// agree on one).
    pub async fn settle_cluster_id(&self, proposed: &str) -> Result<String> {
        let key = self.key("cluster/id");
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), proposed, None)])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let response = self.txn(txn).await?;
        if response.succeeded() {
            return Ok(proposed.to_string());
        }
        let current = self.get(key.as_str(), None).await?;
        let value = current.kvs().first().map(|kv| kv.value().to_vec()).unwrap_or_default();
        String::from_utf8(value)
            .ok()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::MetadataStore(format!("{key} holds no cluster id")))
    }

    /// Register this broker under a new lease of `ttl_secs`: only if no other
    /// process holds the id (its key still exists); `Ok(None)` then, and the
    /// caller waits for that registration to go.
    pub async fn register(&self, registration: &BrokerRegistration, ttl_secs: i64) -> Result<Option<Registered>> {
        let mut client = self.client.clone();
        let lease = self.grant_lease(ttl_secs).await?;
        let key = self.key(&format!("brokers/{}", registration.id));
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.as_str(),
                registration.to_json(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            let _ = client.lease_revoke(lease).await;
            return Ok(None);
        }
        let epoch = response.header().map_or(0, |h| h.revision());
        Ok(Some(Registered { lease, epoch }))
    }

    /// A new lease of `ttl_secs` (at least 2: etcd's minimum is about its
    /// election timeout).
    pub async fn grant_lease(&self, ttl_secs: i64) -> Result<i64> {
        let granted = self.client.clone().lease_grant(ttl_secs.max(2), None).await;
        Ok(granted.map_err(store_error)?.id())
    }

    /// Apply `ops` as the controller of `session`: only while the controller
    /// key is still the one this session's election created (and `compares`
    /// hold), so a deposed controller can never write (NOT_CONTROLLER).
    /// Returns the revision of the write, or None when only `compares` failed
    /// (what the controller read has changed since: read again).
    pub async fn guarded(
        &self,
        session: &ControllerSession,
        compares: Vec<Compare>,
        ops: Vec<TxnOp>,
    ) -> Result<Option<i64>> {
        let controller_key = self.key("controller");
        let mut when = vec![Compare::create_revision(
            controller_key.as_str(),
            CompareOp::Equal,
            session.guard_revision,
        )];
        when.extend(compares);
        let txn = Txn::new()
            .when(when)
            .and_then(ops)
            .or_else([TxnOp::get(controller_key.as_str(), None)]);
        let response = self.txn(txn).await?;
        if response.succeeded() {
            // A transaction that changed nothing (deletes of absent keys) answers
            // the store's current revision, which may come from another
            // cluster's prefix and never show in this one's watch: nothing to
            // wait for then.
            let changed = response.op_responses().iter().any(|op| match op {
                etcd_client::TxnOpResponse::Delete(d) => d.deleted() > 0,
                etcd_client::TxnOpResponse::Get(_) => false,
                _ => true,
            });
            return Ok(Some(match changed {
                true => response.header().map_or(0, |h| h.revision()),
                false => 0,
            }));
        }
        let still_controller = response.op_responses().iter().any(|op| match op {
            etcd_client::TxnOpResponse::Get(get) => get
                .kvs()
                .first()
                .is_some_and(|kv| kv.create_revision() == session.guard_revision),
            _ => false,
        });
        match still_controller {
            true => Ok(None),
            false => Err(Error::NotController),
        }
    }

    /// Everything under this cluster's prefix, as an image at the revision read.
    pub async fn load(&self) -> Result<MetadataImage> {
        let prefix = self.key("");
        let response = self.get(prefix.as_str(), Some(GetOptions::new().with_prefix())).await?;
        let mut image = MetadataImage::default();
        image.revision = response.header().map_or(0, |h| h.revision());
        for kv in response.kvs() {
            if let Some(kv) = image_kv(&prefix, kv) {
                image.put(kv);
            }
        }
        Ok(image)
    }

    /// Watch everything under this cluster's prefix from `revision` on (the
    /// one after a [`MetadataStore::load`]).
    pub async fn watch_all(&self, revision: i64) -> Result<MetadataWatch> {
        let options = WatchOptions::new().with_prefix().with_start_revision(revision);
        let prefix = self.key("");
        let stream = self
            .client
            .clone()
            .watch(prefix.as_str(), Some(options))
            .await
            .map_err(store_error)?;
        Ok(MetadataWatch { stream, prefix })
    }

    /// A key under this cluster's prefix (`rest` without the leading `/`).
    pub fn prefixed(&self, rest: &str) -> String {
        self.key(rest)
    }

    /// Rewrite this broker's registration (a state change), keeping its lease
    /// and epoch; false if the key is no longer this lease's.
    pub async fn update_registration(&self, registration: &BrokerRegistration, registered: Registered) -> Result<bool> {
        let key = self.key(&format!("brokers/{}", registration.id));
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.as_str(),
                CompareOp::Equal,
                registered.epoch,
            )])
            .and_then([TxnOp::put(
                key.as_str(),
                registration.to_json(),
                Some(PutOptions::new().with_lease(registered.lease)),
            )]);
        let response = self.txn(txn).await?;
        Ok(response.succeeded())
    }

    /// Give a lease up: its keys go at once (a clean stop, or the lease of a
    /// previous run of this broker).
    pub async fn revoke(&self, lease: i64) -> Result<()> {
        self.client
            .clone()
            .lease_revoke(lease)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// Keep `lease` alive: one renewal every `interval` for as long as the
    /// lease exists. `Ok(())` when it no longer does (it expired: the cluster
    /// counted this broker gone); an error when etcd could not be reached in
    /// time (the lease may still be alive: try again, perhaps through another
    /// member). A renewal waits at most about `interval` for its answer, so a
    /// frozen member cannot hold the lease past its expiry.
    pub async fn keep_alive(&self, lease: i64, interval: Duration) -> Result<()> {
        let answer = interval.max(Duration::from_secs(1)).min(CALL_TIMEOUT);
        let opened = tokio::time::timeout(answer, self.client.clone().lease_keep_alive(lease)).await;
        let (mut keeper, mut stream) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) if lease_gone(&e) => return Ok(()),
            Ok(Err(e)) => return Err(store_error(e)),
            Err(_) => return Err(Error::MetadataStore("no answer to a lease renewal".into())),
        };
        loop {
            keeper.keep_alive().await.map_err(store_error)?;
            match tokio::time::timeout(answer, stream.message()).await {
                Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                Ok(Ok(Some(_))) => return Ok(()),
                Ok(Ok(None)) => return Err(Error::MetadataStore("the lease renewal stream ended".into())),
                Ok(Err(e)) if lease_gone(&e) => return Ok(()),
                Ok(Err(e)) => return Err(store_error(e)),
                Err(_) => return Err(Error::MetadataStore("no answer to a lease renewal".into())),
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// The registration under `id`'s key now, with the lease it is bound to.
    pub async fn registration(&self, id: i32) -> Result<Option<(i64, RegisteredBroker)>> {
        Ok(match self.key_state(id).await? {
            KeyState::Registered(lease, broker) => Some((lease, broker)),
            _ => None,
        })
    }

    /// What `id`'s key holds now.
    pub async fn key_state(&self, id: i32) -> Result<KeyState> {
        let key = self.key(&format!("brokers/{id}"));
        let response = self.get(key.as_str(), None).await?;
        Ok(match response.kvs().first() {
            None => KeyState::Absent,
            Some(kv) => match registered(&self.brokers_prefix(), kv) {
                Some(broker) => KeyState::Registered(kv.lease(), broker),
                None => KeyState::Unsound(kv.mod_revision()),
            },
        })
    }

    /// Take `id`'s key back from a value that is no registration (written by
    /// hand), if it is still that value: this broker's registration under
    /// `lease` replaces it. Whether it did.
    pub async fn reclaim(&self, registration: &BrokerRegistration, lease: i64, mod_revision: i64) -> Result<bool> {
        let key = self.key(&format!("brokers/{}", registration.id));
        let txn = Txn::new()
            .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, mod_revision)])
            .and_then([TxnOp::put(
                key.as_str(),
                registration.to_json(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let response = self.txn(txn).await?;
        Ok(response.succeeded())
    }

    /// The cluster id in etcd, if there is one.
    pub async fn cluster_id(&self) -> Result<Option<String>> {
        let key = self.key("cluster/id");
        let response = self.get(key.as_str(), None).await?;
        Ok(response
            .kvs()
            .first()
            .and_then(|kv| String::from_utf8(kv.value().to_vec()).ok()))
    }

    /// Become the active controller if there is none: `Ok(None)` if another
    /// broker is. The controller key is bound to `lease` (this broker's), so it
    /// goes when this broker does.
    pub async fn campaign(&self, broker_id: i32, lease: i64) -> Result<Option<ControllerSession>> {
        let epoch_key = self.key("controller_epoch");
        let controller_key = self.key("controller");
        let read = self.get(epoch_key.as_str(), None).await?;
        let (last, mod_revision) = match read.kvs().first() {
            None => (0, 0),
            Some(kv) => {
                let last = std::str::from_utf8(kv.value())
                    .ok()
                    .and_then(|v| v.trim().parse::<i32>().ok());
                (
                    last.filter(|e| *e >= 0).ok_or_else(|| bad_epoch(&epoch_key))?,
                    kv.mod_revision(),
                )
            }
        };
        // The epoch only grows; one that cannot is not written over.
        let epoch = last.checked_add(1).ok_or_else(|| bad_epoch(&epoch_key))?;
        let record = ControllerRecord { v: 1, broker_id, epoch };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        let txn = Txn::new()
            .when([
                Compare::create_revision(controller_key.as_str(), CompareOp::Equal, 0),
                Compare::mod_revision(epoch_key.as_str(), CompareOp::Equal, mod_revision),
            ])
            .and_then([
                TxnOp::put(
                    controller_key.as_str(),
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                ),
                TxnOp::put(epoch_key.as_str(), epoch.to_string(), None),
            ]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Ok(None);
        }
        let guard_revision = response.header().map_or(0, |h| h.revision());
        Ok(Some(ControllerSession { epoch, guard_revision }))
    }

    /// The active controller, if any, and the revision it was read at. A
    /// controller key that is no election's (not a record, or bound to no
    /// lease, so written by hand) is removed — only if unchanged since read —
    /// so the brokers can elect one.
    pub async fn controller(&self) -> Result<(Option<ControllerRecord>, i64)> {
        let key = self.key("controller");
        let response = self.get(key.as_str(), None).await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let Some(kv) = response.kvs().first() else {
            return Ok((None, revision));
        };
        let record = serde_json::from_slice::<ControllerRecord>(kv.value())
            .ok()
            .filter(|r| r.v == 1 && kv.lease() != 0);
        if record.is_none() {
            tracing::warn!(key = %key, "removing a controller key that no election wrote");
            let txn = Txn::new()
                .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, kv.mod_revision())])
                .and_then([TxnOp::delete(key.as_str(), None)]);
            self.txn(txn).await?;
        }
        Ok((record, revision))
    }

    /// Watch the controller key from `revision` on: each change is the new
    /// controller (None: there is none until the next election).
    pub async fn watch_controller(&self, revision: i64) -> Result<ControllerWatch> {
        let options = WatchOptions::new().with_start_revision(revision);
        let stream = self
            .client
            .clone()
            .watch(self.key("controller"), Some(options))
            .await
            .map_err(store_error)?;
        Ok(ControllerWatch { stream })
    }
}

/// A key-value of etcd as the image takes it (the key without the prefix).
fn image_kv<'a>(prefix: &str, kv: &'a etcd_client::KeyValue) -> Option<KeyValue<'a>> {
    let key = std::str::from_utf8(kv.key()).ok()?.strip_prefix(prefix)?;
    Some(KeyValue {
        key,
        value: kv.value(),
        lease: kv.lease(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// A stream of changes to everything under the cluster's prefix.
pub struct MetadataWatch {
    stream: WatchStream,
    prefix: String,
}

impl MetadataWatch {
    /// Apply the next changes to `image`, in revision order; the topic keys
    /// deleted on the way (deletions seen happen, unlike absences after a
    /// reload). An error when the watch ended: read again and watch anew.
    pub async fn next(&mut self, image: &mut MetadataImage) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        for event in next_events(&mut self.stream).await? {
            let Some(kv) = event.kv() else { continue };
            image.revision = image.revision.max(kv.mod_revision());
            let Some(ikv) = image_kv(&self.prefix, kv) else {
                continue;
            };
            match event.event_type() {
                EventType::Put => image.put(ikv),
                EventType::Delete => {
                    if let Some(name) = ikv.key.strip_prefix("topics/") {
                        deleted.push(name.to_string());
                    }
                    image.delete(ikv.key);
                }
            }
        }
        Ok(deleted)
    }
}

/// A stream of changes to the controller key.
pub struct ControllerWatch {
    stream: WatchStream,
}

impl ControllerWatch {
    /// The controller after the next change (None: the key was deleted); an
    /// error when the watch ended.
    pub async fn next(&mut self) -> Result<Option<ControllerRecord>> {
        let events = next_events(&mut self.stream).await?;
        let Some(event) = events.last() else {
            return Ok(None);
        };
        Ok(match event.event_type() {
            EventType::Delete => None,
            EventType::Put => event
                .kv()
                .and_then(|kv| serde_json::from_slice::<ControllerRecord>(kv.value()).ok())
                .filter(|r| r.v == 1),
        })
    }
}

/// The events of a watch's next response that has any, in revision order; an
/// error when the watch ended (etcd unreachable, or history compacted past it):
/// the caller reads again and watches anew.
async fn next_events(stream: &mut WatchStream) -> Result<Vec<etcd_client::Event>> {
    loop {
        let response = stream
            .message()
            .await
            .map_err(store_error)?
            .ok_or_else(|| Error::MetadataStore("the watch ended".into()))?;
        if response.canceled() {
            return Err(Error::MetadataStore(format!(
                "the watch was cancelled ({}; compacted at {})",
                response.cancel_reason(),
                response.compact_revision()
            )));
        }
        if !response.events().is_empty() {
            return Ok(response.events().to_vec());
        }
    }
}

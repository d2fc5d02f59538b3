//! The cluster's shared state besides topics: ACLs, SCRAM credentials, client
//! quotas and the cluster-wide default of the dynamic broker configs. Each is
//! one JSON document — on one broker a file of its data directory (as
//! before), in a cluster one etcd key, so that an ACL created through broker 1
//! holds on broker 3 and a user made through broker 2 logs in everywhere
//! (Kafka keeps the same state in ZooKeeper, or in KRaft's metadata log).
//!
//! A change goes straight to etcd from the broker that took the request,
//! once that broker has authorised it: a compare-and-set on the key's
//! revision, made again from the new document when another broker changed it
//! first, so no change is lost. Every broker's metadata watch sees the new
//! document and installs it before its image moves on, and the changing
//! broker answers once its image has the write: a client that changed
//! something and then reads it through the same broker sees its change.
//!
//! A key that goes missing (deleted by hand) changes nothing on a broker (it
//! keeps what it has), and the running brokers that had it write it back
//! from what they have: a later change, or a broker that has nothing, never
//! starts from an empty document while the others hold the real one.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::error::{Error, Result};

/// The keys, under the cluster's prefix.
pub const ACLS: &str = "security/acls";
pub const SCRAM_CREDENTIALS: &str = "security/scram-credentials";
pub const CLIENT_QUOTAS: &str = "quotas/clients";
pub const BROKER_DEFAULT_CONFIGS: &str = "configs/brokers/default";

pub const KEYS: [&str; 4] = [ACLS, SCRAM_CREDENTIALS, CLIENT_QUOTAS, BROKER_DEFAULT_CONFIGS];

/// How long the changing broker waits to see its own write.
const SEE_OWN_WRITE: Duration = Duration::from_secs(10);

/// Compare-and-set attempts before a change gives up (each lost only to
/// another broker's change of the same document), with a growing, jittered
/// pause between them: about 15 s in all under steady contention.
const ATTEMPTS: u32 = 50;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the documents live in a cluster (etcd's [`super::etcd::MetadataStore`]).
pub trait DocumentStore: Send + Sync {
    /// The document at `key` (None: absent) and the revision it was last
    /// written at (0 when absent).
    fn read<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Option<Vec<u8>>, i64)>>;
    /// Write `document` at `key` if it is still as of `revision`: the
    /// revision of the write, or None if another write came first.
    fn write_if<'a>(&'a self, key: &'a str, document: Vec<u8>, revision: i64) -> BoxFuture<'a, Result<Option<i64>>>;
}

/// A broker's side of the shared documents: where they are changed (set in
/// a cluster) and what it last installed of each.
#[derive(Default)]
pub struct SharedDocuments {
    store: OnceLock<Arc<dyn DocumentStore>>,
    installed: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl SharedDocuments {
    /// In a cluster: documents are changed in `store` from now on.
    pub fn set_store(&self, store: Arc<dyn DocumentStore>) {
        let _ = self.store.set(store);
    }

    /// The cluster's store, if this broker is in one.
    pub fn store(&self) -> Option<&Arc<dyn DocumentStore>> {
        self.store.get()
    }

    /// The documents of `documents` that differ from what was installed
    /// last, recorded as installed: for the caller to install.
    pub fn changed<'a>(&self, documents: &'a BTreeMap<String, Vec<u8>>) -> Vec<(&'a str, &'a [u8])> {
        let mut installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = Vec::new();
        for (key, document) in documents {
            if installed.get(key) != Some(document) {
                installed.insert(key.clone(), document.clone());
                changed.push((key.as_str(), document.as_slice()));
            }
        }
        changed
    }

    /// The keys installed before that `documents` no longer has (deleted by
    /// hand), forgotten as installed: for the caller to write back.
    pub fn gone(&self, documents: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
        let mut installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> = installed
            .keys()
            .filter(|k| !documents.contains_key(*k))
            .cloned()
            .collect();
        for key in &gone {
            installed.remove(key);
        }
        gone
    }
}

/// Change the document at `key` in the cluster's `store`: `change` makes the
/// new document (None: nothing to write) and a result from the current one
/// (None: absent); it is called again if another broker wrote first. Returns
/// once `seen` (this broker's image reaching a revision) says the write is in.
pub async fn change<R, F, S>(store: &dyn DocumentStore, key: &str, mut change: F, seen: S) -> Result<R>
where
    F: FnMut(Option<&[u8]>) -> Result<(Option<Vec<u8>>, R)>,
    S: AsyncFnOnce(i64, Duration) -> bool,
{
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let (current, revision) = store.read(key).await.map_err(unavailable)?;
        let (next, result) = change(current.as_deref())?;
        let Some(next) = next else { return Ok(result) };
        if Some(&next) == current.as_ref() {
            return Ok(result);
        }
        if let Some(written) = store.write_if(key, next, revision).await.map_err(unavailable)? {
            if !seen(written, SEE_OWN_WRITE).await {
                return Err(Error::RequestTimedOut(format!(
                    "the change of {key} was written but this broker has not seen it yet"
                )));
            }
            return Ok(result);
        }
        tracing::debug!(key, "another broker changed the document first; reading it again");
    }
    Err(Error::RequestTimedOut(format!(
        "{key} kept changing under this change; try again"
    )))
}

/// The pause before attempt `n` (from 1): up to 25 ms × n (at most 1 s),
/// jittered so brokers that collided do not collide again.
fn backoff(n: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let ceiling = 25 * n.min(40) as u64;
    Duration::from_millis(1 + nanos as u64 % ceiling.max(1))
}

/// etcd could not be asked (down, no quorum): a retriable answer
/// (REQUEST_TIMED_OUT); a document past etcd's size limit is not retriable.
fn unavailable(e: Error) -> Error {
    match e {
        Error::MetadataStore(m) if m.contains("too large") => Error::InvalidRequest(format!(
            "the document would pass etcd's request size limit (--max-request-bytes): {m}"
        )),
        Error::MetadataStore(m) => Error::RequestTimedOut(format!("the cluster's metadata store: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in memory whose first `conflicts` writes lose to another writer.
    struct Memory {
        doc: Mutex<(Option<Vec<u8>>, i64)>,
        conflicts: Mutex<usize>,
    }

    impl DocumentStore for Memory {
        fn read<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<(Option<Vec<u8>>, i64)>> {
            Box::pin(async move { Ok(self.doc.lock().unwrap().clone()) })
        }

        fn write_if<'a>(
            &'a self,
            _key: &'a str,
            document: Vec<u8>,
            revision: i64,
        ) -> BoxFuture<'a, Result<Option<i64>>> {
            Box::pin(async move {
                let mut doc = self.doc.lock().unwrap();
                let mut conflicts = self.conflicts.lock().unwrap();
                if *conflicts > 0 {
                    // Another broker appends "+" first.
                    *conflicts -= 1;
                    let mut other = doc.0.clone().unwrap_or_default();
                    other.push(b'+');
                    *doc = (Some(other), doc.1 + 1);
                    return Ok(None);
                }
                if doc.1 != revision {
                    return Ok(None);
                }
                *doc = (Some(document), revision + 1);
                Ok(Some(revision + 1))
            })
        }
    }

    #[tokio::test]
    async fn a_change_is_made_again_on_the_newer_document_and_none_is_lost() {
        let store = Memory {
            doc: Mutex::new((None, 0)),
            conflicts: Mutex::new(2),
        };
        let mut calls = 0;
        let append = |current: Option<&[u8]>| {
            calls += 1;
            let mut next = current.unwrap_or_default().to_vec();
            next.push(b'x');
            Ok((Some(next), calls))
        };
        let seen = async |_, _| true;
        let result = change(&store, "k", append, seen).await.unwrap();
        assert_eq!(result, 3, "two conflicts, then the write");
        assert_eq!(store.doc.lock().unwrap().0.as_deref(), Some(&b"++x"[..]));
        // Nothing to change: nothing written.
        let same = |current: Option<&[u8]>| Ok((current.map(<[u8]>::to_vec), ()));
        change(&store, "k", same, async |_, _| panic!("no write to see"))
            .await
            .unwrap();
        assert_eq!(store.doc.lock().unwrap().1, 3);
    }

    #[test]
    fn only_documents_that_changed_are_installed() {
        let shared = SharedDocuments::default();
        let mut docs = BTreeMap::from([(ACLS.to_string(), b"a".to_vec())]);
        assert_eq!(shared.changed(&docs).len(), 1);
        assert!(shared.changed(&docs).is_empty());
        docs.insert(ACLS.to_string(), b"b".to_vec());
        docs.insert(CLIENT_QUOTAS.to_string(), b"q".to_vec());
        assert_eq!(shared.changed(&docs).len(), 2);
    }
}

//! The cluster's shared documents (`cluster::documents`: ACLs, SCRAM
//! credentials, client quotas, the brokers' default configs) as etcd keys
//! under this cluster's prefix, each changed with a compare-and-set.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::MetadataStore;
use crate::cluster::documents::{BoxFuture, DocumentStore};
use crate::error::Result;

/// The shared documents (module `documents`) live under this cluster's prefix.
impl DocumentStore for MetadataStore {
    fn read<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Option<Vec<u8>>, i64)>> {
        Box::pin(async move {
            let response = self.get(&self.key(key), None).await?;
            Ok(match response.kvs().first() {
                Some(kv) => (Some(kv.value().to_vec()), kv.mod_revision()),
                None => (None, 0),
            })
        })
    }

    fn write_if<'a>(&'a self, key: &'a str, document: Vec<u8>, revision: i64) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(async move {
            let key = self.key(key);
            // An absent key's mod revision compares as 0.
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(key.as_str(), CompareOp::Equal, revision)])
                .and_then(vec![TxnOp::put(key.as_str(), document, None)]);
            let response = self.txn(txn).await?;
            Ok(response
                .succeeded()
                .then(|| response.header().map_or(0, |h| h.revision())))
        })
    }
}

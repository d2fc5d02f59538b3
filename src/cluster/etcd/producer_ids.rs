//! Producer ids reserved in blocks for a cluster's brokers (Kafka's
//! AllocateProducerIds, here a compare-and-set on one etcd key).

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::MetadataStore;
use crate::error::{Error, Result};

impl MetadataStore {
    /// Reserve the next `block` producer ids for this broker: returns the
    /// first. `producer_ids` holds the next id no broker has reserved; it is
    /// moved on with a compare-and-set, so two brokers never get the same ids.
    pub async fn reserve_producer_ids(&self, block: i64) -> Result<i64> {
        let key = self.key("producer_ids");
        loop {
            let read = self.get(key.as_str(), None).await?;
            let (next, mod_revision) = match read.kvs().first() {
                // A missing key's revisions compare as 0.
                None => (0, 0),
                Some(kv) => {
                    let next = std::str::from_utf8(kv.value())
                        .ok()
                        .and_then(|v| v.trim().parse::<i64>().ok())
                        .filter(|n| *n >= 0 && n.checked_add(block).is_some())
                        .ok_or_else(|| Error::MetadataStore(format!("{key} holds no producer id")))?;
                    (next, kv.mod_revision())
                }
            };
            let txn = Txn::new()
                .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, mod_revision)])
                .and_then([TxnOp::put(key.as_str(), (next + block).to_string(), None)]);
            if self.txn(txn).await?.succeeded() {
                return Ok(next);
            }
        }
    }
}

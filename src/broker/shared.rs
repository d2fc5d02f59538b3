//! A broker's side of the cluster's shared documents (`cluster::documents`):
//! ACLs, SCRAM credentials, client quotas and the brokers' default configs,
//! changed in etcd and installed from each new metadata image.

use std::collections::BTreeMap;

use super::Broker;
use crate::cluster::documents::{self, ACLS, BROKER_DEFAULT_CONFIGS, CLIENT_QUOTAS, SCRAM_CREDENTIALS};
use crate::error::{Error, Result};

impl Broker {
    /// Whether shared state is changed in the cluster's etcd (not in this
    /// broker's files).
    pub fn shares_state(&self) -> bool {
        self.shared.store().is_some()
    }

    /// Change the shared document `key` in the cluster's etcd (see
    /// [`documents::change`]); answered once this broker's image has it. A
    /// key that is absent (deleted by hand) starts from what is in force
    /// here, never from nothing.
    pub async fn change_shared<R>(
        &self,
        key: &str,
        mut change: impl FnMut(Option<&[u8]>) -> Result<(Option<Vec<u8>>, R)>,
    ) -> Result<R> {
        let store = self
            .shared
            .store()
            .ok_or_else(|| Error::InvalidRequest("not in a cluster".into()))?;
        let in_force = self.local_document(key);
        let change = |document: Option<&[u8]>| change(document.or(in_force.as_deref()));
        let seen = async |revision, within| self.metadata.wait_for_revision(revision, within).await;
        documents::change(store.as_ref(), key, change, seen).await
    }

    /// Install the shared documents of a new image that changed; one that
    /// does not decode is refused with a warning (what is in force stays).
    /// The documents refused, with why.
    pub fn install_shared(&self, documents: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String)> {
        let mut refused = Vec::new();
        // A key deleted by hand: written back from what is in force here
        // (if no other broker did first).
        for key in self.shared.gone(documents) {
            let (Some(store), Some(document)) = (self.shared.store().cloned(), self.local_document(&key)) else {
                continue;
            };
            tracing::warn!(%key, "the cluster's shared document was deleted; writing back what is in force");
            tokio::spawn(async move {
                if let Err(e) = store.write_if(&key, document, 0).await {
                    tracing::warn!(%key, error = %e, "could not write the shared document back");
                }
            });
        }
        for (key, document) in self.shared.changed(documents) {
            let installed = match key {
                ACLS => self.authorizer.install(document),
                SCRAM_CREDENTIALS => self.credentials.install(document),
                CLIENT_QUOTAS => self.quotas.install(document),
                BROKER_DEFAULT_CONFIGS => self
                    .dynamic_config
                    .install_default(document)
                    .map(|effective| self.logs.set_base_config(effective)),
                _ => Ok(()),
            };
            match installed {
                Ok(()) => tracing::info!(key, "installed the cluster's shared state"),
                Err(e) => {
                    tracing::warn!(key, error = %e, "ignoring a shared document that is not sound; what is in force stays");
                    refused.push((key.to_string(), e));
                }
            }
        }
        refused
    }

    /// What is in force here of the shared document `key`, as a document.
    fn local_document(&self, key: &str) -> Option<Vec<u8>> {
        match key {
            ACLS => self.authorizer.document(),
            SCRAM_CREDENTIALS => self.credentials.document(),
            CLIENT_QUOTAS => self.quotas.document(),
            BROKER_DEFAULT_CONFIGS => self.dynamic_config.default_document(),
            _ => None,
        }
    }
}

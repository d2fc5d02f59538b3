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
    /// [`documents::change`]); answered once this broker's image has it.
    pub async fn change_shared<R>(
        &self,
        key: &str,
        change: impl FnMut(Option<&[u8]>) -> Result<(Option<Vec<u8>>, R)>,
    ) -> Result<R> {
        let store = self
            .shared
            .store()
            .ok_or_else(|| Error::InvalidRequest("not in a cluster".into()))?;
        let seen = async |revision, within| self.metadata.wait_for_revision(revision, within).await;
        documents::change(store.as_ref(), key, change, seen).await
    }

    /// Install the shared documents of a new image that changed; one that
    /// does not decode is refused with a warning (what is in force stays).
    pub fn install_shared(&self, documents: &BTreeMap<String, Vec<u8>>) {
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
                    tracing::warn!(key, error = %e, "ignoring a shared document that is not sound; what is in force stays")
                }
            }
        }
    }

    /// This broker's own shared state, for a cluster whose etcd has none yet.
    pub fn shared_state(&self) -> Vec<(&'static str, Vec<u8>)> {
        [
            (ACLS, self.authorizer.document()),
            (SCRAM_CREDENTIALS, self.credentials.document()),
            (CLIENT_QUOTAS, self.quotas.document()),
            (BROKER_DEFAULT_CONFIGS, self.dynamic_config.default_document()),
        ]
        .into_iter()
        .filter_map(|(key, document)| Some((key, document?)))
        .collect()
    }
}

//! `meta.properties`: the identity of this data directory, as Kafka keeps it.
//!
//! ```text
//! version=1
//! node.id=0
//! cluster.id=<22-character URL-safe base64 UUID>
//! ```
//!
//! The cluster id is generated the first time a data directory is used and never
//! changes; starting with a different node id than the one recorded is refused, as
//! Kafka refuses it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::util;

pub const META_PROPERTIES: &str = "meta.properties";

#[derive(Debug, Clone)]
pub struct ClusterIdentity {
    pub node_id: i32,
    pub cluster_id: String,
}

impl ClusterIdentity {
    pub fn load_or_create(data_dir: &Path, node_id: i32) -> Result<ClusterIdentity> {
        if let Some(cluster_id) = Self::recorded(data_dir, node_id)? {
            return Ok(ClusterIdentity { node_id, cluster_id });
        }
        let cluster_id = util::uuid::to_base64(&uuid::Uuid::new_v4());
        Self::record(data_dir, node_id, &cluster_id)?;
        Ok(ClusterIdentity { node_id, cluster_id })
    }

    /// The cluster id `meta.properties` records, if it records one; an error
    /// when it records another node id than `node_id` (Kafka refuses that too).
    pub fn recorded(data_dir: &Path, node_id: i32) -> Result<Option<String>> {
        let path = data_dir.join(META_PROPERTIES);
        if !path.exists() {
            return Ok(None);
        }
        let props = util::properties::parse(&std::fs::read_to_string(&path)?);
        let recorded: Option<i32> = props.get("node.id").and_then(|v| v.parse().ok());
        if recorded.is_some_and(|r| r != node_id) {
            return Err(Error::InvalidRequest(format!(
                "{} records node.id={}, but this broker is configured with node.id={node_id}",
                path.display(),
                recorded.unwrap_or_default()
            )));
        }
        Ok(props.get("cluster.id").filter(|c| !c.is_empty()).cloned())
    }

    /// Record this directory's identity (a cluster broker takes the cluster's id
    /// the first time it starts).
    pub fn record(data_dir: &Path, node_id: i32, cluster_id: &str) -> Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let text = format!("#strom broker identity\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n");
        util::fs::write_atomically(&data_dir.join(META_PROPERTIES), text.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = ClusterIdentity::load_or_create(dir.path(), 3).unwrap();
        let b = ClusterIdentity::load_or_create(dir.path(), 3).unwrap();
        assert_eq!(a.cluster_id, b.cluster_id);
        assert_eq!(a.cluster_id.len(), 22);
        assert!(ClusterIdentity::load_or_create(dir.path(), 4).is_err());
    }
}

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
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(META_PROPERTIES);
        if path.exists() {
            let props = util::properties::parse(&std::fs::read_to_string(&path)?);
            let recorded: Option<i32> = props.get("node.id").and_then(|v| v.parse().ok());
            if recorded.is_some_and(|r| r != node_id) {
                return Err(Error::InvalidRequest(format!(
                    "{} records node.id={}, but this broker is configured with node.id={node_id}",
                    path.display(),
                    recorded.unwrap_or_default()
                )));
            }
            if let Some(cluster_id) = props.get("cluster.id").filter(|c| !c.is_empty()) {
                return Ok(ClusterIdentity {
                    node_id,
                    cluster_id: cluster_id.clone(),
                });
            }
        }
        let cluster_id = util::uuid::to_base64(&uuid::Uuid::new_v4());
        let text = format!("#strom broker identity\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n");
        util::fs::write_atomically(&path, text.as_bytes())?;
        Ok(ClusterIdentity { node_id, cluster_id })
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

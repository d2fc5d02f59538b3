//! The small files of a partition directory the log manager keeps:
//! `partition.metadata` (the topic id) and the topic's config overrides.

use std::collections::BTreeMap;
use std::path::Path;

use uuid::Uuid;

use super::{PARTITION_METADATA, TOPIC_CONFIG};
use crate::util;

pub(super) fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    let props = crate::util::properties::parse(&text);
    util::uuid::from_base64(props.get("topic_id")?)
}

pub(crate) fn read_overrides(dir: &Path) -> BTreeMap<String, String> {
    match std::fs::read_to_string(dir.join(TOPIC_CONFIG)) {
        Ok(text) => crate::util::properties::parse(&text).into_iter().collect(),
        Err(_) => BTreeMap::new(),
    }
}

pub(super) fn write_overrides(dir: &Path, overrides: &BTreeMap<String, String>) -> std::io::Result<()> {
    let mut text = String::from("# topic config overrides, written by strom\n");
    for (k, v) in overrides {
        text.push_str(&format!("{k}={v}\n"));
    }
    util::fs::write_atomically(&dir.join(TOPIC_CONFIG), text.as_bytes())
}

pub(super) fn write_topic_id(dir: &Path, id: &Uuid) -> std::io::Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", util::uuid::to_base64(id));
    util::fs::write_atomically(&dir.join(PARTITION_METADATA), text.as_bytes())
}

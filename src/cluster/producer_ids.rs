//! Producer-id allocation for InitProducerId.
//!
//! Ids are handed out from blocks of 1,000 whose upper bound is persisted before
//! any id in the block is used (`producer_id_block` in the data directory holds the
//! next unallocated id as decimal text), so ids are never reused across restarts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Result;
use crate::util;

const BLOCK: i64 = 1000;
const FILE: &str = "producer_id_block";

pub struct ProducerIdManager {
    path: PathBuf,
    /// (next id to hand out, end of the persisted block)
    state: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn open(data_dir: &Path) -> Result<ProducerIdManager> {
        let path = data_dir.join(FILE);
        let next = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        Ok(ProducerIdManager {
            path,
            state: Mutex::new((next, next)),
        })
    }

    /// A producer id never handed out before.
    pub fn next_id(&self) -> Result<i64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 >= state.1 {
            let end = state.0 + BLOCK;
            util::fs::write_atomically(&self.path, end.to_string().as_bytes())?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(m.next_id().unwrap(), 0);
        assert_eq!(m.next_id().unwrap(), 1);
        drop(m);
        let m = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(m.next_id().unwrap(), 1000);
    }
}

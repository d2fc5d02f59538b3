//! Producer-id allocation for InitProducerId.
//!
//! Ids are handed out from blocks of 1,000. On one broker a block's upper
//! bound is persisted before any id in it is used (`producer_id_block` in
//! the data directory holds the next unallocated id as decimal text), so ids
//! are never reused across restarts. In a cluster the blocks are reserved in
//! the metadata store, so no two brokers hand out the same id (Kafka's
//! AllocateProducerIds, KIP-730): a background task keeps a spare block
//! ready; with none ready, InitProducerId answers COORDINATOR_LOAD_IN_PROGRESS
//! and the client retries, as with Kafka.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::util;

pub const BLOCK: i64 = 1000;
const FILE: &str = "producer_id_block";

#[derive(Default)]
struct State {
    /// The next id to hand out, and the end of its block.
    next: i64,
    end: i64,
    /// In a cluster: the block reserved to take over when this one ends.
    spare: Option<(i64, i64)>,
}

pub struct ProducerIdManager {
    path: PathBuf,
    state: Mutex<State>,
    /// In a cluster: wakes the task that reserves blocks (None on one broker).
    refill: Mutex<Option<Arc<Notify>>>,
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
            state: Mutex::new(State {
                next,
                end: next,
                spare: None,
            }),
            refill: Mutex::new(None),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, take blocks reserved in the cluster (given with
    /// [`Self::add_block`]); the returned notification fires whenever a
    /// spare block is wanted. Called again: the same notification.
    pub fn use_cluster_blocks(&self) -> Arc<Notify> {
        let mut refill = self.refill.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &*refill {
            return r.clone();
        }
        let r = Arc::new(Notify::new());
        *self.lock() = State::default();
        *refill = Some(r.clone());
        r.notify_one();
        r
    }

    /// Whether a cluster's broker has no spare block.
    pub fn wants_block(&self) -> bool {
        self.lock().spare.is_none()
    }

    /// A block reserved in the cluster: ids `start..end`.
    pub fn add_block(&self, start: i64, end: i64) {
        let mut state = self.lock();
        if state.next >= state.end {
            (state.next, state.end) = (start, end);
        } else {
            state.spare = Some((start, end));
        }
        if state.spare.is_none() {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(refill) = &*self.refill.lock().unwrap_or_else(|e| e.into_inner()) {
            refill.notify_one();
        }
    }

    /// A producer id never handed out before.
    pub fn next_id(&self) -> Result<i64> {
        let cluster = self.refill.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        let mut state = self.lock();
        if state.next >= state.end {
            if cluster {
                let Some((start, end)) = state.spare.take() else {
                    self.wake();
                    return Err(Error::ProducerIdsPending);
                };
                (state.next, state.end) = (start, end);
                self.wake();
            } else {
                let end = state.next + BLOCK;
                util::fs::write_atomically(&self.path, end.to_string().as_bytes())?;
                state.end = end;
            }
        }
        let id = state.next;
        state.next += 1;
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

    #[test]
    fn a_cluster_takes_reserved_blocks_and_asks_for_more() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        let _refill = m.use_cluster_blocks();
        assert!(matches!(m.next_id(), Err(Error::ProducerIdsPending)));
        assert!(m.wants_block());
        m.add_block(5000, 5002);
        assert!(m.wants_block(), "the first block is used at once");
        m.add_block(9000, 9001);
        assert!(!m.wants_block());
        assert_eq!(m.next_id().unwrap(), 5000);
        assert_eq!(m.next_id().unwrap(), 5001);
        assert_eq!(m.next_id().unwrap(), 9000);
        assert!(m.wants_block());
        assert!(matches!(m.next_id(), Err(Error::ProducerIdsPending)));
    }
}

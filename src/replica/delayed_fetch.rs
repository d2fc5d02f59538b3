//! Fetches waiting for data (Kafka's DelayedFetch in its purgatory). A fetch that
//! has fewer than `min_bytes` to send registers a waker with every partition it
//! reads; an append to one of them (or, with replication, a high-watermark move)
//! completes the watch, and the fetch reads again. Nothing polls on a timer.
//!
//! Only appends through the replica manager complete watches. The group
//! coordinator writes `__consumer_offsets` straight to its log, so a client
//! long-polling that internal topic (a debugging tool, say) gets new records at
//! its `max_wait_ms` rather than at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

/// A partition, by topic name and index.
pub type TopicPartition = (String, i32);

/// Wakers of waiting fetches, by the partitions they wait on.
#[derive(Default)]
pub struct DelayedFetches {
    watching: Mutex<HashMap<TopicPartition, Vec<Weak<Notify>>>>,
}

impl DelayedFetches {
    /// Wake `waker` at the next [`Self::complete`] of `partition`. Registering the
    /// same waker twice is once; a waker dropped meanwhile is forgotten.
    pub fn watch(&self, partition: &TopicPartition, waker: &Arc<Notify>) {
        let mut watching = self.watching.lock().unwrap_or_else(|e| e.into_inner());
        let list = watching.entry(partition.clone()).or_default();
        list.retain(|w| w.strong_count() > 0);
        if !list.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(waker))) {
            list.push(Arc::downgrade(waker));
        }
    }

    /// `partition` has new data for fetchers: wake everyone watching it (each once).
    pub fn complete(&self, partition: &TopicPartition) {
        let woken = self
            .watching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(partition);
        for w in woken.into_iter().flatten() {
            if let Some(w) = w.upgrade() {
                // notify_one keeps a permit if the fetch is between its read and its
                // wait, so the wake is never lost.
                w.notify_one();
            }
        }
    }

    /// How many partitions have fetches waiting (for tests and metrics).
    pub fn watched_partitions(&self) -> usize {
        self.watching.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_append_wakes_the_fetches_watching_its_partition_only() {
        let fetches = DelayedFetches::default();
        let (a, b) = (("t".to_string(), 0), ("t".to_string(), 1));
        let waker = Arc::new(Notify::new());
        fetches.watch(&a, &waker);
        fetches.watch(&a, &waker);
        fetches.complete(&b);
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(50), waker.notified()).await;
        assert!(timed_out.is_err(), "woken by another partition's append");
        fetches.complete(&a);
        waker.notified().await;
        assert_eq!(fetches.watched_partitions(), 0);
    }

    #[test]
    fn dropped_fetches_are_forgotten() {
        let fetches = DelayedFetches::default();
        let p = ("t".to_string(), 0);
        fetches.watch(&p, &Arc::new(Notify::new()));
        fetches.watch(&p, &Arc::new(Notify::new()));
        let list = fetches.watching.lock().unwrap();
        assert_eq!(list[&p].len(), 1, "the first, dropped waker was pruned");
    }
}

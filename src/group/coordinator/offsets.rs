//! Committed offsets: plain commits (OffsetCommit), commits inside a producer's
//! transaction (TxnOffsetCommit, KIP-98/447), fetching and deleting them.
//!
//! An offset committed in a transaction is written to `__consumer_offsets` at
//! once, in a transactional batch of the producer, but it is *pending*: OffsetFetch
//! does not show it until the transaction's COMMIT marker lands in the same log
//! ([`GroupShard::complete_txn`]); an ABORT marker drops it. Replay at start
//! follows the same rule, batch by batch.

use std::collections::BTreeSet;

use super::*;
use crate::log::producer_state::VerificationGuard;

/// A transactional producer committing offsets: its id and epoch, and the
/// offsets partition's guard it was verified with.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedProducer {
    pub id: i64,
    pub epoch: i16,
    pub guard: VerificationGuard,
}

/// Offsets a producer's open transaction committed, by group.
pub(super) type PendingOffsets = HashMap<String, GroupOffsets>;

/// The offsets of a commit that passed the per-partition checks, their records,
/// and every partition's result.
struct Checked {
    results: Vec<(TopicPartition, Result<()>)>,
    records: Vec<CoordinatorRecord>,
    accepted: Vec<(TopicPartition, OffsetCommitValue)>,
}

impl Checked {
    /// The accepted offsets, once their records are in the log from `base`.
    fn committed(self, base: i64) -> impl Iterator<Item = (TopicPartition, Committed)> {
        (base..)
            .zip(self.accepted)
            .map(|(record_offset, (tp, value))| (tp, Committed { value, record_offset }))
    }
}

/// Kafka's per-partition checks: metadata size and the partition's existence.
fn check_partitions(
    group_id: &str,
    offsets: Vec<(TopicPartition, OffsetCommitValue)>,
    topic_exists: impl Fn(&str, i32) -> bool,
) -> Checked {
    let mut c = Checked {
        results: Vec::new(),
        records: Vec::new(),
        accepted: Vec::new(),
    };
    for (tp, value) in offsets {
        let check = if value.metadata.len() > OFFSET_METADATA_MAX_BYTES {
            Err(Error::OffsetMetadataTooLarge(value.metadata.len()))
        } else if !topic_exists(&tp.0, tp.1) {
            Err(Error::UnknownTopicOrPartition {
                topic: tp.0.clone(),
                partition: tp.1,
            })
        } else {
            c.records.push(CoordinatorRecord::OffsetCommit {
                group: group_id.to_string(),
                topic: tp.0.clone(),
                partition: tp.1,
                value: Some(value.clone()),
            });
            c.accepted.push((tp.clone(), value));
            Ok(())
        };
        c.results.push((tp, check));
    }
    c
}

impl GroupShard {
    /// Commit offsets for a group member (or a simple consumer with generation −1).
    /// Returns a result per partition; the group-level check fails them all.
    pub async fn commit(
        &self,
        group_id: &str,
        caller: MemberRef<'_>,
        offsets: Vec<(TopicPartition, OffsetCommitValue)>,
        topic_exists: impl Fn(&str, i32) -> bool,
        now: i64,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        if group_id.is_empty() {
            return Err(Error::InvalidGroupId(group_id.to_string()));
        }
        let (results, end) = {
            let mut inner = self.lock();
            let consumer = inner.consumer.get(group_id);
            match (consumer, inner.groups.get(group_id)) {
                (Some(g), _) => Self::validate_consumer_commit(g, caller)?,
                (None, Some(g)) => g.validate_commit(caller)?,
                (None, None) if caller.generation_id < 0 => {}
                (None, None) => return Err(Error::UnknownMemberId(caller.member_id.to_string())),
            }
            let mut c = check_partitions(group_id, offsets, topic_exists);
            let end = if c.records.is_empty() {
                None
            } else {
                Some(self.append(&c.records, now)?)
            };
            if !inner.consumer.contains_key(group_id) {
                inner
                    .groups
                    .entry(group_id.to_string())
                    .or_insert_with(|| Group::new(group_id));
            }
            let results = std::mem::take(&mut c.results);
            let base = end.unwrap_or(0) - c.accepted.len() as i64;
            let stored = inner.offsets.entry(group_id.to_string()).or_default();
            stored.extend(c.committed(base));
            (results, end)
        };
        self.flush(end, now).await?;
        Ok(results)
    }

    /// The offsets partition's verification guard for producer `producer_id`,
    /// to take before the transaction coordinator is asked (see
    /// [`GroupShard::txn_commit`]).
    pub fn verification_guard(&self, producer_id: i64) -> VerificationGuard {
        self.log.log().verification_guard(producer_id)
    }

    /// Withdraw a guard whose verification failed.
    pub fn release_verification_guard(&self, producer_id: i64, guard: VerificationGuard) {
        self.log.log().release_verification_guard(producer_id, guard);
    }

    /// TxnOffsetCommit: commit offsets inside `producer`'s transaction. The
    /// caller has checked, holding the producer's guard, that the group's
    /// offsets partition is part of the transaction; the log refuses the write
    /// if the transaction's marker came since. A stale epoch is refused by the log
    /// (INVALID_PRODUCER_EPOCH); KIP-447's member check applies when the producer
    /// sent the consumer's group metadata.
    pub async fn txn_commit(
        &self,
        group_id: &str,
        producer: VerifiedProducer,
        caller: MemberRef<'_>,
        offsets: Vec<(TopicPartition, OffsetCommitValue)>,
        topic_exists: impl Fn(&str, i32) -> bool,
        now: i64,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        if group_id.is_empty() {
            return Err(Error::InvalidGroupId(group_id.to_string()));
        }
        let (results, end) = {
            let mut inner = self.lock();
            match (inner.consumer.get(group_id), inner.groups.get(group_id)) {
                // KIP-447 with a consumer group: a stale epoch is ILLEGAL_GENERATION.
                // sendOffsetsToTransaction(offsets, groupId): no member identity.
                (Some(_), _)
                    if caller.generation_id == -1 && caller.member_id.is_empty() && caller.instance.is_none() => {}
                (Some(g), _) => match Self::validate_consumer_commit(g, caller) {
                    Err(Error::StaleMemberEpoch { found, current }) => {
                        return Err(Error::IllegalGeneration { found, current })
                    }
                    other => other?,
                },
                (None, Some(g)) => g.validate_txn_commit(caller)?,
                (None, None) if caller.generation_id < 0 => {}
                (None, None) => {
                    return Err(Error::IllegalGeneration {
                        found: caller.generation_id,
                        current: -1,
                    })
                }
            }
            let mut c = check_partitions(group_id, offsets, topic_exists);
            let appended = if c.records.is_empty() {
                None
            } else {
                let batch = record_serde::encode_batch(&c.records, Some((producer.id, producer.epoch)), now)?;
                Some(self.log.append(&batch, Some(producer.guard), now)?)
            };
            if !inner.consumer.contains_key(group_id) {
                inner
                    .groups
                    .entry(group_id.to_string())
                    .or_insert_with(|| Group::new(group_id));
            }
            let results = std::mem::take(&mut c.results);
            let base = appended.as_ref().map_or(0, |a| a.base_offset);
            let pending = inner.pending.entry(producer.id).or_default();
            pending
                .entry(group_id.to_string())
                .or_default()
                .extend(c.committed(base));
            (results, appended.map(|a| a.log_end_offset))
        };
        self.flush(end, now).await?;
        Ok(results)
    }

    /// Producer `producer_id`'s transaction ended with a marker in
    /// `__consumer_offsets`: its pending offsets become the committed ones, or
    /// are dropped.
    pub fn complete_txn(&self, producer_id: i64, commit: bool) {
        Self::end_txn(&mut self.lock(), producer_id, commit);
    }

    pub(super) fn end_txn(inner: &mut Inner, producer_id: i64, commit: bool) {
        let Some(by_group) = inner.pending.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for (group, offsets) in by_group {
            let stored = inner.offsets.entry(group).or_default();
            for (tp, pending) in offsets {
                // The later record wins: a plain commit made after this one stays.
                match stored.get(&tp) {
                    Some(current) if current.record_offset > pending.record_offset => {}
                    _ => {
                        stored.insert(tp, pending);
                    }
                }
            }
        }
    }

    /// Remove a partition's offset from a group, committed or pending in any
    /// transaction (what a tombstone does, live or replayed). Whether there was one.
    pub(super) fn remove_offset(inner: &mut Inner, group_id: &str, tp: &TopicPartition) -> bool {
        let mut found = false;
        if let Some(stored) = inner.offsets.get_mut(group_id) {
            found = stored.remove(tp).is_some();
            if stored.is_empty() {
                inner.offsets.remove(group_id);
            }
        }
        for by_group in inner.pending.values_mut() {
            if let Some(offsets) = by_group.get_mut(group_id) {
                found |= offsets.remove(tp).is_some();
                if offsets.is_empty() {
                    by_group.remove(group_id);
                }
            }
        }
        inner.pending.retain(|_, by_group| !by_group.is_empty());
        found
    }

    /// Every partition a group has an offset for, committed or pending.
    pub(super) fn stored_partitions(inner: &Inner, group_id: &str) -> BTreeSet<TopicPartition> {
        let committed = inner.offsets.get(group_id).into_iter().flat_map(|o| o.keys());
        let pending = inner
            .pending
            .values()
            .filter_map(|b| b.get(group_id))
            .flat_map(|o| o.keys());
        committed.chain(pending).cloned().collect()
    }

    /// Whether a transaction has an offset pending for this group and partition.
    fn is_unstable(inner: &Inner, group_id: &str, tp: &TopicPartition) -> bool {
        inner
            .pending
            .values()
            .any(|by_group| by_group.get(group_id).is_some_and(|o| o.contains_key(tp)))
    }

    /// Committed offsets of a group: of the given partitions, or all of them.
    /// With `require_stable` (OffsetFetch v7+), a partition with an offset still
    /// pending in a transaction answers UNSTABLE_OFFSET_COMMIT: the consumer
    /// retries rather than start from an offset about to change.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<TopicPartition>>,
        require_stable: bool,
    ) -> Vec<(TopicPartition, Result<Option<OffsetCommitValue>>)> {
        let inner = self.lock();
        let stored = inner.offsets.get(group_id);
        let wanted: Vec<TopicPartition> = match partitions {
            Some(wanted) => wanted,
            None => stored.map(|s| s.keys().cloned().collect()).unwrap_or_default(),
        };
        wanted
            .into_iter()
            .map(|tp| {
                let value = if require_stable && Self::is_unstable(&inner, group_id, &tp) {
                    Err(Error::UnstableOffsetCommit(tp.0.clone(), tp.1))
                } else {
                    Ok(stored.and_then(|s| s.get(&tp)).map(|c| c.value.clone()))
                };
                (tp, value)
            })
            .collect()
    }

    /// Drop committed offsets of a deleted topic from every group.
    pub async fn topic_deleted(&self, topic: &str, now: i64) -> Result<()> {
        let end = {
            let mut inner = self.lock();
            let committed = inner.offsets.iter();
            let pending = inner.pending.values().flat_map(|b| b.iter());
            let gone: BTreeSet<(String, TopicPartition)> = committed
                .chain(pending)
                .flat_map(|(g, o)| o.keys().filter(|(t, _)| t == topic).map(|tp| (g.clone(), tp.clone())))
                .collect();
            let mut records = Vec::new();
            for (group, tp) in gone {
                Self::remove_offset(&mut inner, &group, &tp);
                records.push(CoordinatorRecord::OffsetCommit {
                    group,
                    topic: tp.0,
                    partition: tp.1,
                    value: None,
                });
            }
            if records.is_empty() {
                None
            } else {
                Some(self.append(&records, now)?)
            }
        };
        self.flush(end, now).await
    }

    /// OffsetDelete: remove committed offsets of partitions the group does not
    /// consume. Group-level errors fail the whole request.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<TopicPartition>,
        now: i64,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let (results, end) = {
            let mut inner = self.lock();
            let consumer = inner.consumer.get(group_id);
            let subscribed: Vec<bool> = match inner.groups.get(group_id) {
                _ if consumer.is_some() => match consumer {
                    Some(g) => partitions.iter().map(|(t, _)| g.subscribes_to(t)).collect(),
                    None => Vec::new(),
                },
                None if Self::stored_partitions(&inner, group_id).is_empty() => {
                    return Err(Error::GroupIdNotFound(group_id.to_string()))
                }
                Some(g) if g.state == GroupState::Dead => return Err(Error::GroupIdNotFound(group_id.to_string())),
                Some(g) if !g.is_empty() => partitions.iter().map(|(t, _)| g.is_subscribed_to(t)).collect(),
                _ => vec![false; partitions.len()],
            };
            let mut records = Vec::new();
            let mut results = Vec::new();
            for (tp, busy) in partitions.into_iter().zip(subscribed) {
                if busy {
                    results.push((tp.clone(), Err(Error::GroupSubscribedToTopic(tp.0.clone()))));
                    continue;
                }
                // A tombstone ends an offset pending in a transaction too.
                if Self::remove_offset(&mut inner, group_id, &tp) {
                    records.push(CoordinatorRecord::OffsetCommit {
                        group: group_id.to_string(),
                        topic: tp.0.clone(),
                        partition: tp.1,
                        value: None,
                    });
                }
                results.push((tp, Ok(())));
            }
            let end = if records.is_empty() {
                None
            } else {
                Some(self.append(&records, now)?)
            };
            (results, end)
        };
        self.flush(end, now).await?;
        Ok(results)
    }
}

#[cfg(test)]
#[path = "offsets_tests.rs"]
mod tests;

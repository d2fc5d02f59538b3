//! A transactional id's state at its coordinator (Kafka's TransactionMetadata and
//! TransactionState), and the transitions Kafka allows between states (transaction
//! versions 0 and 1: the classic protocol every client speaks).
//!
//! ```text
//!            AddPartitions/AddOffsets          EndTxn(commit)         markers done
//!   Empty ─────────────────────────▶ Ongoing ───────────────▶ PrepareCommit ─────▶ CompleteCommit
//!     ▲                               │  ▲   EndTxn(abort),                          │
//!     │ InitProducerId                │  │   timeout, fence      markers done        │
//!     │                               │  └──────────────────▶ PrepareAbort ───────▶ CompleteAbort
//!     └───────────────────────────────┴──── (a new transaction: Ongoing again) ◀────┘
//! ```
//!
//! `Dead` (expiry, written as a tombstone) and `PrepareEpochFence` (a fence before
//! the coordinator aborts, written as PrepareAbort with the bumped epoch) exist in
//! memory only.

use std::collections::BTreeSet;

/// Kafka's TransactionState, with the ids stored in `__transaction_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TransactionState {
    pub fn from_id(id: i8) -> Option<TransactionState> {
        use TransactionState::*;
        Some(match id {
            0 => Empty,
            1 => Ongoing,
            2 => PrepareCommit,
            3 => PrepareAbort,
            4 => CompleteCommit,
            5 => CompleteAbort,
            6 => Dead,
            7 => PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions report.
    pub fn name(self) -> &'static str {
        use TransactionState::*;
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The states a transition to `self` may start from (Kafka's validPreviousStates).
    fn valid_previous(self) -> &'static [TransactionState] {
        use TransactionState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteCommit, CompleteAbort],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether a state may go to `to`.
    pub fn may_become(self, to: TransactionState) -> bool {
        to.valid_previous().contains(&self)
    }

    /// Whether an id in this state may expire (`transactional.id.expiration.ms`).
    pub fn may_expire(self) -> bool {
        use TransactionState::*;
        matches!(self, Empty | CompleteCommit | CompleteAbort)
    }

    /// Whether a transaction is being decided: markers still to write.
    pub fn is_preparing(self) -> bool {
        matches!(self, TransactionState::PrepareCommit | TransactionState::PrepareAbort)
    }
}

/// A partition of a transaction.
pub type TopicPartition = (String, i32);

/// What the coordinator knows of one transactional id (the value of its
/// `__transaction_state` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub producer_id: i64,
    /// The producer id before the last rotation (v1 records), −1 if none.
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TransactionState,
    /// Partitions added to the open transaction, sorted.
    pub partitions: BTreeSet<TopicPartition>,
    pub last_update_ms: i64,
    /// When the open transaction began; −1 when none is open.
    pub start_ms: i64,
}

/// A transition Kafka would not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transaction transition from {from:?} to {to:?}")]
pub struct IllegalTransition {
    pub from: TransactionState,
    pub to: TransactionState,
}

impl TransactionMetadata {
    /// A new id after InitProducerId: no transaction open.
    pub fn new(producer_id: i64, producer_epoch: i16, timeout_ms: i32, now_ms: i64) -> TransactionMetadata {
        TransactionMetadata {
            producer_id,
            previous_producer_id: -1,
            producer_epoch,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            start_ms: -1,
        }
    }

    /// The metadata after a transition to `to`, checked against Kafka's rules:
    /// the states allowed before it, a transaction's partitions kept until it
    /// completes and cleared then, its start time set when it begins.
    pub fn transition(&self, to: TransactionState, now_ms: i64) -> Result<TransactionMetadata, IllegalTransition> {
        if !self.state.may_become(to) {
            return Err(IllegalTransition { from: self.state, to });
        }
        let mut next = self.clone();
        next.state = to;
        next.last_update_ms = now_ms;
        use TransactionState::*;
        match to {
            Empty | Dead => {
                next.partitions.clear();
                next.start_ms = -1;
            }
            Ongoing if self.state != Ongoing => {
                // A new transaction: it starts now, with none of the old partitions.
                next.partitions.clear();
                next.start_ms = now_ms;
            }
            CompleteCommit | CompleteAbort => next.partitions.clear(),
            _ => {}
        }
        Ok(next)
    }

    /// Whether the open transaction has outlived its timeout.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TransactionState::Ongoing
            && self.start_ms >= 0
            && now_ms - self.start_ms > i64::from(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::TransactionState::*;
    use super::*;

    #[test]
    fn ids_and_names_are_kafkas() {
        for id in 0..8 {
            let s = TransactionState::from_id(id).unwrap();
            assert_eq!(s as i8, id);
        }
        assert_eq!(TransactionState::from_id(8), None);
        assert_eq!(PrepareEpochFence.name(), "PrepareEpochFence");
    }

    #[test]
    fn a_transaction_goes_the_legal_way_only() {
        let m = TransactionMetadata::new(7, 0, 60_000, 100);
        assert!(m.transition(PrepareCommit, 200).is_err(), "nothing to commit");
        let mut ongoing = m.transition(Ongoing, 200).unwrap();
        assert_eq!(ongoing.start_ms, 200);
        ongoing.partitions.insert(("t".into(), 0));
        let more = ongoing.transition(Ongoing, 300).unwrap();
        assert_eq!(
            (more.start_ms, more.partitions.len()),
            (200, 1),
            "adding keeps the start and partitions"
        );
        let prepare = more.transition(PrepareCommit, 400).unwrap();
        assert_eq!(prepare.partitions.len(), 1, "markers still to write");
        assert!(prepare.transition(PrepareAbort, 450).is_err());
        let done = prepare.transition(CompleteCommit, 500).unwrap();
        assert!(done.partitions.is_empty());
        let next = done.transition(Ongoing, 600).unwrap();
        assert_eq!(next.start_ms, 600, "a new transaction");
        // Fence then abort; expiry only from a settled state.
        let fenced = next.transition(PrepareEpochFence, 700).unwrap();
        assert!(fenced.transition(Dead, 710).is_err());
        let aborting = fenced.transition(PrepareAbort, 720).unwrap();
        let aborted = aborting.transition(CompleteAbort, 730).unwrap();
        assert!(aborted.state.may_expire());
        assert!(aborted.transition(Dead, 740).is_ok());
    }

    #[test]
    fn timeouts_count_from_the_transaction_start() {
        let m = TransactionMetadata::new(1, 0, 1_000, 0)
            .transition(Ongoing, 5_000)
            .unwrap();
        assert!(!m.timed_out(6_000));
        assert!(m.timed_out(6_001));
        assert!(
            !TransactionMetadata::new(1, 0, 1_000, 0).timed_out(1_000_000),
            "nothing open"
        );
    }
}

//! The log a group coordinator shard writes: one `__consumer_offsets`
//! partition, which this broker leads while the shard exists.
//!
//! On one broker that is [`LocalLog`]: append, then fsync. In a cluster the
//! broker layer supplies one that appends only while this broker leads the
//! partition at the shard's leader epoch, and whose commit also waits for the
//! in-sync replicas (as an acks=all produce does) — so an offset commit is
//! answered only once it would survive the coordinator's broker.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Result;
use crate::log::producer_state::VerificationGuard;
use crate::log::unified_log::{AppendInfo, UnifiedLog};

/// A future a [`ShardLog`] returns (trait objects cannot have async methods).
pub type Committing<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

pub trait ShardLog: Send + Sync {
    /// The partition's log: read when the shard loads; the transactions'
    /// verification guards live there.
    fn log(&self) -> &Arc<UnifiedLog>;

    /// Append a batch of coordinator records, one of a transaction with the
    /// `guard` it was verified with. NOT_COORDINATOR once this broker no
    /// longer leads the partition as the shard does.
    fn append(&self, batch: &[u8], guard: Option<VerificationGuard>, now_ms: i64) -> Result<AppendInfo>;

    /// Wait until the log is durable up to `end`: fsynced here, and in a
    /// cluster copied by every in-sync replica. NOT_COORDINATOR if leadership
    /// moved meanwhile, COORDINATOR_NOT_AVAILABLE if the replicas did not
    /// follow in time (Kafka's answers to an offset commit in those cases).
    fn commit(&self, end: i64, now_ms: i64) -> Committing<'_>;
}

/// One broker's own partition: it is always the leader.
pub struct LocalLog(pub Arc<UnifiedLog>);

impl ShardLog for LocalLog {
    fn log(&self) -> &Arc<UnifiedLog> {
        &self.0
    }

    fn append(&self, batch: &[u8], guard: Option<VerificationGuard>, now_ms: i64) -> Result<AppendInfo> {
        match guard {
            Some(guard) => self.0.append_as_coordinator(batch, guard, now_ms),
            None => self.0.append(batch, now_ms),
        }
    }

    fn commit(&self, end: i64, now_ms: i64) -> Committing<'_> {
        Box::pin(async move {
            self.0.flush_to(end, now_ms).await?;
            Ok(())
        })
    }
}

//! Typed errors, and THE one place they become Kafka error codes.
//!
//! Domain code returns [`Error`] variants that carry what went wrong; handlers put
//! `err.code()` into the per-partition or per-topic slot of their response. Only a
//! corrupt frame closes a connection, and that never passes through here.

use kafka_protocol::error::ResponseError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    #[error("unknown topic id {0}")]
    UnknownTopicId(uuid::Uuid),
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic { name: String, reason: &'static str },
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
    #[error("invalid replication factor {0}: more than the brokers that can hold replicas (one, on a single broker)")]
    InvalidReplicationFactor(i16),
    /// A reassignment to another number of replicas that the request does
    /// not allow (AlterPartitionReassignments v1, KIP-860).
    #[error("the reassignment changes the replication factor from {from} to {to}, which the request does not allow")]
    ReplicationFactorChange { from: usize, to: usize },
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("record batch of {size} bytes exceeds the limit of {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("corrupt record batch: {0}")]
    CorruptMessage(&'static str),
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// Records of a batch that failed the per-record checks (KIP-467): the whole
    /// batch is refused, and the response names the bad records.
    #[error("{0}")]
    RejectedRecords(RejectedRecords),
    #[error("partition {topic}-{partition} has {in_sync} in-sync replica(s), fewer than its min.insync.replicas={min_insync}, which acks=all writes need")]
    NotEnoughReplicas {
        topic: String,
        partition: i32,
        in_sync: i32,
        min_insync: i32,
    },
    /// The batch is in the leader's log, but the ISR shrank below
    /// min.insync.replicas before it was replicated: not acknowledged.
    #[error("partition {topic}-{partition}: the write was appended, but the ISR shrank to {in_sync}, fewer than min.insync.replicas={min_insync}")]
    NotEnoughReplicasAfterAppend {
        topic: String,
        partition: i32,
        in_sync: i32,
        min_insync: i32,
    },
    /// This broker does not lead the partition (it follows, or holds no replica
    /// of it): the client refreshes its metadata and goes to the leader.
    #[error("this broker is not the leader of {topic}-{partition}")]
    NotLeaderOrFollower { topic: String, partition: i32 },
    /// The request names an older leader epoch than the partition's: the client
    /// acted on metadata that a leader change made stale (KIP-320).
    #[error("{topic}-{partition}: leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch {
        topic: String,
        partition: i32,
        requested: i32,
        current: i32,
    },
    /// The request names a newer leader epoch than this broker knows: its
    /// metadata is behind the client's; retry.
    #[error("{topic}-{partition}: leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch {
        topic: String,
        partition: i32,
        requested: i32,
        current: i32,
    },
    /// The partition has no leader right now (an election is under way).
    #[error("{topic}-{partition} has no leader right now")]
    LeaderNotAvailable { topic: String, partition: i32 },
    #[error("acks={0}: only 0, 1 and -1 (all) are valid")]
    InvalidRequiredAcks(i16),
    #[error("producer {producer_id}: out of order sequence {found}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        found: i32,
        expected: i32,
    },
    #[error("producer {producer_id}: epoch {epoch} is older than {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("{0}")]
    InvalidTxnState(String),
    /// Transactional records without a transactional id (Kafka refuses the whole
    /// produce request with this code, as it would an unauthorised id).
    #[error("transactional records need a transactional id the producer may use")]
    TransactionalIdAuthorizationFailed,
    #[error("not authorized to access topic {0}")]
    TopicAuthorizationFailed(String),
    #[error("not authorized to access group {0}")]
    GroupAuthorizationFailed(String),
    #[error("not authorized to do this on the cluster")]
    ClusterAuthorizationFailed,
    #[error("transactional id {0}: a newer producer with this id fences this one")]
    ProducerFenced(String),
    #[error("transactional id {0}: another operation on its transaction is under way; retry")]
    ConcurrentTransactions(String),
    #[error("transactional id {0} is not assigned this producer id")]
    InvalidProducerIdMapping(String),
    #[error("transaction timeout {timeout_ms} ms is not within 1 and transaction.max.timeout.ms ({max_ms})")]
    InvalidTransactionTimeout { timeout_ms: i32, max_ms: i32 },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("unsupported version {version} of api {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    // Group coordinator errors (Kafka's names).
    #[error("invalid group id {0:?}")]
    InvalidGroupId(String),
    #[error("unknown member id {0:?}")]
    UnknownMemberId(String),
    #[error("a member id is required; rejoin with {0}")]
    MemberIdRequired(String),
    #[error("generation {found} is not the group's generation {current}")]
    IllegalGeneration { found: i32, current: i32 },
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("the member's protocol type or protocols are not supported by the group")]
    InconsistentGroupProtocol,
    #[error("session timeout {0} ms is outside the allowed range")]
    InvalidSessionTimeout(i32),
    #[error("static member {0:?} has been replaced by a newer instance")]
    FencedInstanceId(String),
    #[error("group {0:?} does not exist")]
    GroupIdNotFound(String),
    // KIP-848 consumer groups.
    #[error("{0}")]
    FencedMemberEpoch(String),
    #[error("member epoch {found} is stale (the member's epoch is {current})")]
    StaleMemberEpoch { found: i32, current: i32 },
    #[error("static member {0:?} is still in the group; it must leave first")]
    UnreleasedInstanceId(String),
    #[error("group {0:?} has reached group.consumer.max.size members")]
    GroupMaxSizeReached(String),
    #[error("assignor {0:?} is not one of group.consumer.assignors")]
    UnsupportedAssignor(String),
    #[error("invalid regular expression: {0}")]
    InvalidRegularExpression(String),
    #[error("group {0:?} still has members")]
    NonEmptyGroup(String),
    #[error("group is subscribed to topic {0:?}")]
    GroupSubscribedToTopic(String),
    #[error("offset metadata of {0} bytes is too large")]
    OffsetMetadataTooLarge(usize),
    /// OffsetFetch with require_stable: a transaction has offsets pending here.
    #[error("a transaction has committed offsets pending for {0}-{1}")]
    UnstableOffsetCommit(String, i32),
    /// The coordinator cannot answer now (its partition has no leader, its
    /// replicas did not follow, another broker could not be reached…).
    #[error("the coordinator is not available: {0}")]
    CoordinatorNotAvailable(&'static str),
    /// This broker does not coordinate the key (any more): another broker
    /// leads its partition, or this one is shutting down.
    #[error("this broker is not the coordinator")]
    NotCoordinator,
    /// This broker has just become the coordinator and is reading the
    /// coordinator's partition.
    #[error("the coordinator is loading __consumer_offsets-{0}")]
    CoordinatorLoadInProgress(i32),
    /// A transaction marker from an older coordinator than the producer's last.
    #[error("producer {producer_id}'s marker comes from coordinator epoch {found}, older than {current}")]
    TransactionCoordinatorFenced { producer_id: i64, found: i32, current: i32 },
    /// ElectLeaders: the partition is already led as asked.
    #[error("leader election not needed for the partition")]
    ElectionNotNeeded,
    /// ElectLeaders (preferred): the first replica does not run or is not in sync.
    #[error("the preferred leader is not available")]
    PreferredLeaderNotAvailable,
    /// ElectLeaders (unclean): no replica of the partition runs.
    #[error("no eligible leader is available")]
    EligibleLeadersNotAvailable,
    /// A cluster's broker is waiting for a block of producer ids.
    #[error("no producer ids are ready yet; retry")]
    ProducerIdsPending,
    #[error("{0}")]
    PolicyViolation(&'static str),
    /// This broker is not (or no longer) the active controller.
    #[error("this broker is not the active controller")]
    NotController,
    /// An ISR change based on a partition epoch that is no longer current.
    #[error("the partition changed since (stale partition epoch)")]
    InvalidUpdateVersion,
    /// An ISR change naming a broker that cannot be in it.
    #[error("ineligible replicas in the new ISR {0}")]
    IneligibleReplica(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// Cancelling a reassignment of a partition that has none.
    #[error("no reassignment of the partition is in progress")]
    NoReassignmentInProgress,
    /// Not done in time (the controller's write, say); the client may retry.
    #[error("timed out: {0}")]
    RequestTimedOut(String),
    /// The cluster's metadata store (etcd) failed or could not be reached.
    #[error("metadata store: {0}")]
    MetadataStore(String),
    #[error("damaged log: {file} at byte {position}: {reason}; see `strom log check`")]
    CorruptLog {
        file: String,
        position: u64,
        reason: &'static str,
    },
}

/// The records of one batch that failed the per-record checks, by their index in
/// the batch, with why; `any_timestamp` when one of them failed the timestamp
/// check, which makes the batch's error INVALID_TIMESTAMP (else INVALID_RECORD).
#[derive(Debug, Default)]
pub struct RejectedRecords {
    /// Batch indexes of the bad records, in order.
    pub indexes: Vec<i32>,
    /// Why, for the first [`RejectedRecords::MESSAGES`] of them; the rest go
    /// without a message (null on the wire), so that a batch of a million bad
    /// records does not make a response of a hundred megabytes.
    pub messages: Vec<String>,
    pub any_timestamp: bool,
}

impl RejectedRecords {
    pub const MESSAGES: usize = 100;

    /// Record `index` as bad; `why` is asked only while messages are kept.
    pub fn push(&mut self, index: i32, why: impl FnOnce() -> String) {
        if self.messages.len() < Self::MESSAGES {
            self.messages.push(why());
        }
        self.indexes.push(index);
    }

    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty()
    }
}

impl std::fmt::Display for RejectedRecords {
    /// Kafka's message for the batch (its LogValidator's wording, in substance).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.any_timestamp {
            return write!(f, "One or more records have been rejected due to invalid timestamp");
        }
        write!(
            f,
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [",
            self.indexes.len()
        )?;
        for (i, (index, message)) in self.indexes.iter().zip(&self.messages).take(3).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}RecordError(batchIndex={index}, message='{message}')")?;
        }
        write!(f, "]")
    }
}

impl Error {
    /// The Kafka error code a client sees for this error.
    pub fn code(&self) -> ResponseError {
        use ResponseError as E;
        match self {
            Error::UnknownTopicOrPartition { .. } => E::UnknownTopicOrPartition,
            Error::UnknownTopicId(_) => E::UnknownTopicId,
            Error::InvalidTopic { .. } => E::InvalidTopicException,
            Error::TopicAlreadyExists(_) => E::TopicAlreadyExists,
            Error::InvalidPartitions(_) => E::InvalidPartitions,
            Error::InvalidReplicationFactor(_) | Error::ReplicationFactorChange { .. } => E::InvalidReplicationFactor,
            Error::OffsetOutOfRange { .. } => E::OffsetOutOfRange,
            Error::MessageTooLarge { .. } => E::MessageTooLarge,
            Error::CorruptMessage(_) => E::CorruptMessage,
            Error::InvalidRecord(_) => E::InvalidRecord,
            Error::InvalidRequiredAcks(_) => E::InvalidRequiredAcks,
            Error::NotLeaderOrFollower { .. } => E::NotLeaderOrFollower,
            Error::FencedLeaderEpoch { .. } => E::FencedLeaderEpoch,
            Error::UnknownLeaderEpoch { .. } => E::UnknownLeaderEpoch,
            Error::LeaderNotAvailable { .. } => E::LeaderNotAvailable,
            Error::NotEnoughReplicas { .. } => E::NotEnoughReplicas,
            Error::NotEnoughReplicasAfterAppend { .. } => E::NotEnoughReplicasAfterAppend,
            Error::RejectedRecords(r) if r.any_timestamp => E::InvalidTimestamp,
            Error::RejectedRecords(_) => E::InvalidRecord,
            Error::OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber,
            Error::InvalidProducerEpoch { .. } => E::InvalidProducerEpoch,
            Error::InvalidTxnState(_) => E::InvalidTxnState,
            Error::TransactionalIdAuthorizationFailed => E::TransactionalIdAuthorizationFailed,
            Error::TopicAuthorizationFailed(_) => E::TopicAuthorizationFailed,
            Error::GroupAuthorizationFailed(_) => E::GroupAuthorizationFailed,
            Error::ClusterAuthorizationFailed => E::ClusterAuthorizationFailed,
            Error::ProducerFenced(_) => E::ProducerFenced,
            Error::ConcurrentTransactions(_) => E::ConcurrentTransactions,
            Error::InvalidProducerIdMapping(_) => E::InvalidProducerIdMapping,
            Error::InvalidTransactionTimeout { .. } => E::InvalidTransactionTimeout,
            Error::InvalidRequest(_) => E::InvalidRequest,
            Error::InvalidConfig(_) => E::InvalidConfig,
            Error::UnsupportedVersion { .. } => E::UnsupportedVersion,
            Error::Io(_) => E::KafkaStorageError,
            Error::InvalidGroupId(_) => E::InvalidGroupId,
            Error::UnknownMemberId(_) => E::UnknownMemberId,
            Error::UnstableOffsetCommit(..) => E::UnstableOffsetCommit,
            Error::MemberIdRequired(_) => E::MemberIdRequired,
            Error::IllegalGeneration { .. } => E::IllegalGeneration,
            Error::RebalanceInProgress => E::RebalanceInProgress,
            Error::InconsistentGroupProtocol => E::InconsistentGroupProtocol,
            Error::InvalidSessionTimeout(_) => E::InvalidSessionTimeout,
            Error::FencedInstanceId(_) => E::FencedInstanceId,
            Error::GroupIdNotFound(_) => E::GroupIdNotFound,
            Error::FencedMemberEpoch(_) => E::FencedMemberEpoch,
            Error::StaleMemberEpoch { .. } => E::StaleMemberEpoch,
            Error::UnreleasedInstanceId(_) => E::UnreleasedInstanceId,
            Error::GroupMaxSizeReached(_) => E::GroupMaxSizeReached,
            Error::UnsupportedAssignor(_) => E::UnsupportedAssignor,
            Error::InvalidRegularExpression(_) => E::InvalidRegularExpression,
            Error::NonEmptyGroup(_) => E::NonEmptyGroup,
            Error::GroupSubscribedToTopic(_) => E::GroupSubscribedToTopic,
            Error::OffsetMetadataTooLarge(_) => E::OffsetMetadataTooLarge,
            Error::CoordinatorNotAvailable(_) => E::CoordinatorNotAvailable,
            Error::NotCoordinator => E::NotCoordinator,
            Error::CoordinatorLoadInProgress(_) | Error::ProducerIdsPending => E::CoordinatorLoadInProgress,
            Error::ElectionNotNeeded => E::ElectionNotNeeded,
            Error::TransactionCoordinatorFenced { .. } => E::TransactionCoordinatorFenced,
            Error::PreferredLeaderNotAvailable => E::PreferredLeaderNotAvailable,
            Error::EligibleLeadersNotAvailable => E::EligibleLeadersNotAvailable,
            Error::PolicyViolation(_) => E::PolicyViolation,
            Error::MetadataStore(_) => E::UnknownServerError,
            Error::NotController => E::NotController,
            Error::InvalidReplicaAssignment(_) => E::InvalidReplicaAssignment,
            Error::NoReassignmentInProgress => E::NoReassignmentInProgress,
            Error::InvalidUpdateVersion => E::InvalidUpdateVersion,
            Error::IneligibleReplica(_) => E::IneligibleReplica,
            Error::RequestTimedOut(_) => E::RequestTimedOut,
            Error::CorruptLog { .. } => E::KafkaStorageError,
        }
    }

    /// The numeric code, as it goes on the wire.
    pub fn wire_code(&self) -> i16 {
        self.code().code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        let e = Error::UnknownTopicOrPartition {
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(e.wire_code(), 3);
        assert_eq!(Error::CorruptMessage("crc").wire_code(), 2);
        assert_eq!(Error::MessageTooLarge { size: 2, max: 1 }.wire_code(), 10);
        assert_eq!(
            Error::OutOfOrderSequence {
                producer_id: 1,
                found: 3,
                expected: 1
            }
            .wire_code(),
            45
        );
        assert_eq!(Error::InvalidRecord("x").wire_code(), 87);
        assert_eq!(Error::TransactionalIdAuthorizationFailed.wire_code(), 53);
        assert_eq!(Error::PolicyViolation("x").wire_code(), 44);
        assert_eq!(Error::MemberIdRequired("m".into()).wire_code(), 79);
        assert_eq!(Error::RebalanceInProgress.wire_code(), 27);
        assert_eq!(Error::IllegalGeneration { found: 1, current: 2 }.wire_code(), 22);
        assert_eq!(Error::UnknownMemberId("m".into()).wire_code(), 25);
        assert_eq!(Error::FencedInstanceId("i".into()).wire_code(), 82);
        assert_eq!(Error::NonEmptyGroup("g".into()).wire_code(), 68);
        assert_eq!(Error::GroupIdNotFound("g".into()).wire_code(), 69);
        let t = || String::from("t");
        let not_leader = Error::NotLeaderOrFollower {
            topic: t(),
            partition: 0,
        };
        assert_eq!(not_leader.wire_code(), 6);
        let fenced = Error::FencedLeaderEpoch {
            topic: t(),
            partition: 0,
            requested: 0,
            current: 1,
        };
        assert_eq!(fenced.wire_code(), 74);
        let unknown = Error::UnknownLeaderEpoch {
            topic: t(),
            partition: 0,
            requested: 2,
            current: 1,
        };
        assert_eq!(unknown.wire_code(), 75);
        assert_eq!(
            Error::LeaderNotAvailable {
                topic: t(),
                partition: 0
            }
            .wire_code(),
            5
        );
        assert_eq!(
            Error::InvalidTopic {
                name: "a b".into(),
                reason: "chars"
            }
            .wire_code(),
            17
        );
    }
}

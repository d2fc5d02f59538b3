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
    #[error("invalid replication factor {0}: this broker can hold one replica")]
    InvalidReplicationFactor(i16),
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
    #[error("producer {producer_id}: out of order sequence {found}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        found: i32,
        expected: i32,
    },
    #[error("producer {producer_id}: epoch {epoch} is older than {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("transactional producers are not supported yet")]
    TransactionsUnsupported,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unsupported version {version} of api {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
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
            Error::InvalidReplicationFactor(_) => E::InvalidReplicationFactor,
            Error::OffsetOutOfRange { .. } => E::OffsetOutOfRange,
            Error::MessageTooLarge { .. } => E::MessageTooLarge,
            Error::CorruptMessage(_) => E::CorruptMessage,
            Error::InvalidRecord(_) => E::InvalidRecord,
            Error::OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber,
            Error::InvalidProducerEpoch { .. } => E::InvalidProducerEpoch,
            Error::TransactionsUnsupported => E::TransactionalIdAuthorizationFailed,
            Error::InvalidRequest(_) => E::InvalidRequest,
            Error::UnsupportedVersion { .. } => E::UnsupportedVersion,
            Error::Io(_) => E::KafkaStorageError,
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

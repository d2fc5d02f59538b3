//! The table of every topic config: Kafka 4.1's, and the three Kafka 3.9 still
//! took (accepted and described as deprecated), in alphabetical order. Each has
//! Kafka's name, type, default and validation; docs/notes/kafka-topic-configs.md
//! is the reference it follows, and the README says what each does on strom.

use super::*;

fn int(v: &str, min: i64, max: i64) -> Result<i32, String> {
    let n = long(v, min)?;
    if n > max {
        return Err(format!("{n} is above the maximum {max}"));
    }
    Ok(n as i32)
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{v:?} is neither true nor false")),
    }
}

fn one_of(v: &str, allowed: &[&str]) -> Result<String, String> {
    let v = v.trim();
    match allowed.contains(&v) {
        true => Ok(v.to_string()),
        false => Err(format!("{v:?} is not one of {}", allowed.join(", "))),
    }
}

fn gzip_level(v: &str) -> Result<i32, String> {
    match int(v, -1, 9)? {
        0 => Err("0 is not a gzip level (1 to 9, or -1)".into()),
        n => Ok(n),
    }
}

/// `*`, or `partition:broker` pairs separated by commas (or nothing).
fn throttled(v: &str) -> Result<String, String> {
    let v = v.trim();
    let pair = |p: &str| {
        let (a, b) = p.split_once(':')?;
        a.trim().parse::<u32>().ok().and(b.trim().parse::<u32>().ok())
    };
    if v == "*" || v.is_empty() || v.split(',').all(|p| pair(p).is_some()) {
        Ok(v.to_string())
    } else {
        Err(format!("{v:?} is neither '*' nor a list of partition:broker"))
    }
}

fn no_tiered_storage(v: &str) -> Result<bool, String> {
    match boolean(v)? {
        false => Ok(false),
        true => Err("this broker has no tiered storage".into()),
    }
}

/// A Kafka version such as 0.10.0, 2.8-IV1 or 3.0: what Kafka 3.9 accepted.
fn format_version(v: &str) -> Result<String, String> {
    let v = v.trim();
    let release = v.split('-').next().unwrap_or_default();
    let numeric = !release.is_empty()
        && release
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match numeric {
        true => Ok(v.to_string()),
        false => Err(format!("{v:?} is not a Kafka version")),
    }
}

/// A config held in one field of [`LogConfig`] and set by one parser.
macro_rules! config {
    ($name:literal, $broker:literal, $kind:ident, $field:ident = |$v:ident| $parse:expr, $doc:literal) => {
        ConfigDef {
            name: $name,
            broker_name: $broker,
            kind: ConfigType::$kind,
            doc: $doc,
            get: |c| c.$field.to_string(),
            set: |c, $v| {
                c.$field = $parse?;
                Ok(())
            },
        }
    };
}

pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        kind: ConfigType::List,
        doc: "delete: old segments are removed by retention; compact: only the latest record per key is kept",
        get: render_policy,
        set: |c, v| {
            (c.cleanup_delete, c.cleanup_compact) = policy(v)?;
            Ok(())
        },
    },
    config!("compression.gzip.level", "compression.gzip.level", Int, compression_gzip_level = |v| gzip_level(v), "gzip level when compression.type is gzip (1 to 9, or -1 for the codec default)"),
    config!("compression.lz4.level", "compression.lz4.level", Int, compression_lz4_level = |v| int(v, 1, 17), "lz4 level when compression.type is lz4"),
    config!("compression.type", "compression.type", String, compression_type = |v| one_of(v, &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), "the codec batches are stored with: producer keeps the producer's, any other recompresses each batch on append"),
    config!("compression.zstd.level", "compression.zstd.level", Int, compression_zstd_level = |v| int(v, -131072, 22), "zstd level when compression.type is zstd"),
    config!("delete.retention.ms", "log.cleaner.delete.retention.ms", Long, delete_retention_ms = |v| long(v, 0), "how long tombstones are kept on compacted topics"),
    config!("file.delete.delay.ms", "log.segment.delete.delay.ms", Long, file_delete_delay_ms = |v| long(v, 0), "wait before a deleted segment's files (renamed *.deleted) are removed from disk"),
    config!("flush.messages", "log.flush.interval.messages", Long, flush_interval_messages = |v| long(v, 1), "fsync after this many messages (acks=-1 always fsyncs)"),
    config!("flush.ms", "log.flush.interval.ms", Long, flush_interval_ms = |v| long(v, 0), "fsync data older than this"),
    config!("follower.replication.throttled.replicas", "", List, follower_replication_throttled_replicas = |v| throttled(v), "replicas throttled on the follower side (no replication on one broker)"),
    config!("index.interval.bytes", "log.index.interval.bytes", Int, index_interval_bytes = |v| long(v, 0).map(|n| n as u64), "bytes of log between two offset-index entries"),
    config!("leader.replication.throttled.replicas", "", List, leader_replication_throttled_replicas = |v| throttled(v), "replicas throttled on the leader side (no replication on one broker)"),
    config!("local.retention.bytes", "log.local.retention.bytes", Long, local_retention_bytes = |v| long(v, -2), "with tiered storage, bytes kept on local disk (-2: retention.bytes); no tiered storage here"),
    config!("local.retention.ms", "log.local.retention.ms", Long, local_retention_ms = |v| long(v, -2), "with tiered storage, time kept on local disk (-2: retention.ms); no tiered storage here"),
    config!("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", Long, max_compaction_lag_ms = |v| long(v, 1), "longest a record may stay uncompacted: older dirty records are compacted whatever the dirty ratio"),
    config!("max.message.bytes", "message.max.bytes", Int, message_max_bytes = |v| int(v, 0, i32::MAX as i64).map(|n| n as usize), "the largest record batch accepted"),
    config!("message.downconversion.enable", "log.message.downconversion.enable", Boolean, message_downconversion_enable = |v| boolean(v), "deprecated (Kafka 3.9): down-convert records for old fetchers"),
    config!("message.format.version", "log.message.format.version", String, message_format_version = |v| format_version(v), "deprecated (Kafka 3.9): ignored, batches are stored in format v2"),
    config!("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", Long, message_timestamp_after_max_ms = |v| long(v, 0), "how far ahead of the broker clock a CreateTime timestamp may be"),
    config!("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", Long, message_timestamp_before_max_ms = |v| long(v, 0), "how far behind the broker clock a CreateTime timestamp may be"),
    config!("message.timestamp.difference.max.ms", "log.message.timestamp.difference.max.ms", Long, message_timestamp_difference_max_ms = |v| long(v, 0), "deprecated (Kafka 3.9): largest gap between a timestamp and the broker clock"),
    ConfigDef {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        kind: ConfigType::String,
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime sets the broker's",
        get: |c| {
            if c.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
            .into()
        },
        set: |c, v| {
            c.log_append_time = match v.trim() {
                "CreateTime" => false,
                "LogAppendTime" => true,
                other => return Err(format!("{other:?} is not CreateTime or LogAppendTime")),
            };
            Ok(())
        },
    },
    ConfigDef {
        name: "min.cleanable.dirty.ratio",
        broker_name: "log.cleaner.min.cleanable.ratio",
        kind: ConfigType::Double,
        doc: "compact once this share of the log is not yet compacted",
        get: |c| c.min_cleanable_dirty_ratio.to_string(),
        set: |c, v| {
            let r: f64 = v.trim().parse().map_err(|_| format!("{v:?} is not a number"))?;
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("{r} is not between 0 and 1"));
            }
            c.min_cleanable_dirty_ratio = r;
            Ok(())
        },
    },
    config!("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", Long, min_compaction_lag_ms = |v| long(v, 0), "records younger than this are never compacted"),
    config!("min.insync.replicas", "min.insync.replicas", Int, min_insync_replicas = |v| int(v, 1, i32::MAX as i64), "in-sync replicas an acks=all write needs: above 1, acks=all writes get NOT_ENOUGH_REPLICAS (one broker is one replica)"),
    config!("preallocate", "log.preallocate", Boolean, preallocate = |v| boolean(v), "reserve segment.bytes of disk for each new segment file"),
    config!("remote.log.copy.disable", "", Boolean, remote_log_copy_disable = |v| boolean(v), "stop copying segments to tiered storage (no tiered storage here)"),
    config!("remote.log.delete.on.disable", "", Boolean, remote_log_delete_on_disable = |v| boolean(v), "delete tiered data when tiered storage is turned off (no tiered storage here)"),
    config!("remote.storage.enable", "", Boolean, remote_storage_enable = |v| no_tiered_storage(v), "tiered storage for the topic: this broker has none, so only false is accepted"),
    config!("retention.bytes", "log.retention.bytes", Long, retention_bytes = |v| long(v, -1), "delete the oldest segments while a partition is larger than this (-1: no limit)"),
    config!("retention.ms", "log.retention.ms", Long, retention_ms = |v| long(v, -1), "delete segments whose newest record is older than this (-1: keep forever)"),
    config!("segment.bytes", "log.segment.bytes", Int, segment_bytes = |v| int(v, 14, i32::MAX as i64).map(|n| n as u64), "roll the active segment at this size"),
    config!("segment.index.bytes", "log.index.size.max.bytes", Int, segment_index_bytes = |v| int(v, 4, i32::MAX as i64), "most bytes of a segment's offset or time index; a full index rolls the segment"),
    config!("segment.jitter.ms", "log.roll.jitter.ms", Long, segment_jitter_ms = |v| long(v, 0), "most time taken off segment.ms, per segment, so segments do not all roll at once"),
    config!("segment.ms", "log.roll.ms", Long, roll_ms = |v| long(v, 1).map(|n| n as u64), "roll the active segment once it is this old"),
    config!("unclean.leader.election.enable", "unclean.leader.election.enable", Boolean, unclean_leader_election_enable = |v| boolean(v), "let an out-of-sync replica lead (no replication on one broker)"),
];

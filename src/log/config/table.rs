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
    ConfigDef {
        name: "compression.gzip.level",
        broker_name: "compression.gzip.level",
        kind: ConfigType::Int,
        doc: "gzip level when compression.type is gzip (1 to 9, or -1 for the codec default)",
        get: |c| c.compression_gzip_level.to_string(),
        set: |c, v| {
            c.compression_gzip_level = gzip_level(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "compression.lz4.level",
        broker_name: "compression.lz4.level",
        kind: ConfigType::Int,
        doc: "lz4 level when compression.type is lz4",
        get: |c| c.compression_lz4_level.to_string(),
        set: |c, v| {
            c.compression_lz4_level = int(v, 1, 17)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "compression.type",
        broker_name: "compression.type",
        kind: ConfigType::String,
        doc: "the codec batches are stored with; producer keeps the one the producer used (accepted; strom stores batches as sent)",
        get: |c| c.compression_type.clone(),
        set: |c, v| {
            c.compression_type = one_of(v, &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"])?;
            Ok(())
        },
    },
    ConfigDef {
        name: "compression.zstd.level",
        broker_name: "compression.zstd.level",
        kind: ConfigType::Int,
        doc: "zstd level when compression.type is zstd",
        get: |c| c.compression_zstd_level.to_string(),
        set: |c, v| {
            c.compression_zstd_level = int(v, -131072, 22)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "delete.retention.ms",
        broker_name: "log.cleaner.delete.retention.ms",
        kind: ConfigType::Long,
        doc: "how long tombstones are kept on compacted topics",
        get: |c| c.delete_retention_ms.to_string(),
        set: |c, v| {
            c.delete_retention_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "file.delete.delay.ms",
        broker_name: "log.segment.delete.delay.ms",
        kind: ConfigType::Long,
        doc: "wait before a deleted segment is removed from disk (accepted; strom removes it at once)",
        get: |c| c.file_delete_delay_ms.to_string(),
        set: |c, v| {
            c.file_delete_delay_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "flush.messages",
        broker_name: "log.flush.interval.messages",
        kind: ConfigType::Long,
        doc: "fsync after this many messages (acks=-1 always fsyncs)",
        get: |c| c.flush_interval_messages.to_string(),
        set: |c, v| {
            c.flush_interval_messages = long(v, 1)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "flush.ms",
        broker_name: "log.flush.interval.ms",
        kind: ConfigType::Long,
        doc: "fsync data older than this",
        get: |c| c.flush_interval_ms.to_string(),
        set: |c, v| {
            c.flush_interval_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "follower.replication.throttled.replicas",
        broker_name: "",
        kind: ConfigType::List,
        doc: "replicas throttled on the follower side (no replication on one broker)",
        get: |c| c.follower_replication_throttled_replicas.clone(),
        set: |c, v| {
            c.follower_replication_throttled_replicas = throttled(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "index.interval.bytes",
        broker_name: "log.index.interval.bytes",
        kind: ConfigType::Int,
        doc: "bytes of log between two offset-index entries",
        get: |c| c.index_interval_bytes.to_string(),
        set: |c, v| {
            c.index_interval_bytes = long(v, 0)? as u64;
            Ok(())
        },
    },
    ConfigDef {
        name: "leader.replication.throttled.replicas",
        broker_name: "",
        kind: ConfigType::List,
        doc: "replicas throttled on the leader side (no replication on one broker)",
        get: |c| c.leader_replication_throttled_replicas.clone(),
        set: |c, v| {
            c.leader_replication_throttled_replicas = throttled(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "local.retention.bytes",
        broker_name: "log.local.retention.bytes",
        kind: ConfigType::Long,
        doc: "with tiered storage, bytes kept on local disk (-2: retention.bytes); no tiered storage here",
        get: |c| c.local_retention_bytes.to_string(),
        set: |c, v| {
            c.local_retention_bytes = long(v, -2)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "local.retention.ms",
        broker_name: "log.local.retention.ms",
        kind: ConfigType::Long,
        doc: "with tiered storage, time kept on local disk (-2: retention.ms); no tiered storage here",
        get: |c| c.local_retention_ms.to_string(),
        set: |c, v| {
            c.local_retention_ms = long(v, -2)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "max.compaction.lag.ms",
        broker_name: "log.cleaner.max.compaction.lag.ms",
        kind: ConfigType::Long,
        doc: "longest a record may stay uncompacted (accepted)",
        get: |c| c.max_compaction_lag_ms.to_string(),
        set: |c, v| {
            c.max_compaction_lag_ms = long(v, 1)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        kind: ConfigType::Int,
        doc: "the largest record batch accepted",
        get: |c| c.message_max_bytes.to_string(),
        set: |c, v| {
            c.message_max_bytes = long(v, 0)?.min(i32::MAX as i64) as usize;
            Ok(())
        },
    },
    ConfigDef {
        name: "message.downconversion.enable",
        broker_name: "log.message.downconversion.enable",
        kind: ConfigType::Boolean,
        doc: "deprecated (Kafka 3.9): down-convert records for old fetchers",
        get: |c| c.message_downconversion_enable.to_string(),
        set: |c, v| {
            c.message_downconversion_enable = boolean(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "message.format.version",
        broker_name: "log.message.format.version",
        kind: ConfigType::String,
        doc: "deprecated (Kafka 3.9): ignored, batches are stored in format v2",
        get: |c| c.message_format_version.clone(),
        set: |c, v| {
            c.message_format_version = format_version(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "message.timestamp.after.max.ms",
        broker_name: "log.message.timestamp.after.max.ms",
        kind: ConfigType::Long,
        doc: "how far ahead of the broker clock a CreateTime timestamp may be (accepted)",
        get: |c| c.message_timestamp_after_max_ms.to_string(),
        set: |c, v| {
            c.message_timestamp_after_max_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "message.timestamp.before.max.ms",
        broker_name: "log.message.timestamp.before.max.ms",
        kind: ConfigType::Long,
        doc: "how far behind the broker clock a CreateTime timestamp may be (accepted)",
        get: |c| c.message_timestamp_before_max_ms.to_string(),
        set: |c, v| {
            c.message_timestamp_before_max_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "message.timestamp.difference.max.ms",
        broker_name: "log.message.timestamp.difference.max.ms",
        kind: ConfigType::Long,
        doc: "deprecated (Kafka 3.9): largest gap between a timestamp and the broker clock",
        get: |c| c.message_timestamp_difference_max_ms.to_string(),
        set: |c, v| {
            c.message_timestamp_difference_max_ms = long(v, 0)?;
            Ok(())
        },
    },
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
    ConfigDef {
        name: "min.compaction.lag.ms",
        broker_name: "log.cleaner.min.compaction.lag.ms",
        kind: ConfigType::Long,
        doc: "records younger than this are never compacted",
        get: |c| c.min_compaction_lag_ms.to_string(),
        set: |c, v| {
            c.min_compaction_lag_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "min.insync.replicas",
        broker_name: "min.insync.replicas",
        kind: ConfigType::Int,
        doc: "in-sync replicas an acks=all write needs (accepted; one broker has one)",
        get: |c| c.min_insync_replicas.to_string(),
        set: |c, v| {
            c.min_insync_replicas = int(v, 1, i32::MAX as i64)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "preallocate",
        broker_name: "log.preallocate",
        kind: ConfigType::Boolean,
        doc: "preallocate segment files when they are created (accepted)",
        get: |c| c.preallocate.to_string(),
        set: |c, v| {
            c.preallocate = boolean(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "remote.log.copy.disable",
        broker_name: "",
        kind: ConfigType::Boolean,
        doc: "stop copying segments to tiered storage (no tiered storage here)",
        get: |c| c.remote_log_copy_disable.to_string(),
        set: |c, v| {
            c.remote_log_copy_disable = boolean(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "remote.log.delete.on.disable",
        broker_name: "",
        kind: ConfigType::Boolean,
        doc: "delete tiered data when tiered storage is turned off (no tiered storage here)",
        get: |c| c.remote_log_delete_on_disable.to_string(),
        set: |c, v| {
            c.remote_log_delete_on_disable = boolean(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "remote.storage.enable",
        broker_name: "",
        kind: ConfigType::Boolean,
        doc: "tiered storage for the topic: this broker has none, so only false is accepted",
        get: |c| c.remote_storage_enable.to_string(),
        set: |c, v| {
            c.remote_storage_enable = no_tiered_storage(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "retention.bytes",
        broker_name: "log.retention.bytes",
        kind: ConfigType::Long,
        doc: "delete the oldest segments while a partition is larger than this (-1: no limit)",
        get: |c| c.retention_bytes.to_string(),
        set: |c, v| {
            c.retention_bytes = long(v, -1)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "retention.ms",
        broker_name: "log.retention.ms",
        kind: ConfigType::Long,
        doc: "delete segments whose newest record is older than this (-1: keep forever)",
        get: |c| c.retention_ms.to_string(),
        set: |c, v| {
            c.retention_ms = long(v, -1)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "segment.bytes",
        broker_name: "log.segment.bytes",
        kind: ConfigType::Int,
        doc: "roll the active segment at this size",
        get: |c| c.segment_bytes.to_string(),
        set: |c, v| {
            c.segment_bytes = long(v, 14)?.min(i32::MAX as i64) as u64;
            Ok(())
        },
    },
    ConfigDef {
        name: "segment.index.bytes",
        broker_name: "log.index.size.max.bytes",
        kind: ConfigType::Int,
        doc: "size of a segment's offset index (accepted; strom's indexes grow as needed)",
        get: |c| c.segment_index_bytes.to_string(),
        set: |c, v| {
            c.segment_index_bytes = int(v, 4, i32::MAX as i64)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "segment.jitter.ms",
        broker_name: "log.roll.jitter.ms",
        kind: ConfigType::Long,
        doc: "random time taken off segment.ms so segments do not all roll at once (accepted)",
        get: |c| c.segment_jitter_ms.to_string(),
        set: |c, v| {
            c.segment_jitter_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "segment.ms",
        broker_name: "log.roll.ms",
        kind: ConfigType::Long,
        doc: "roll the active segment once it is this old",
        get: |c| c.roll_ms.to_string(),
        set: |c, v| {
            c.roll_ms = long(v, 1)? as u64;
            Ok(())
        },
    },
    ConfigDef {
        name: "unclean.leader.election.enable",
        broker_name: "unclean.leader.election.enable",
        kind: ConfigType::Boolean,
        doc: "let an out-of-sync replica lead (no replication on one broker)",
        get: |c| c.unclean_leader_election_enable.to_string(),
        set: |c, v| {
            c.unclean_leader_election_enable = boolean(v)?;
            Ok(())
        },
    },
];

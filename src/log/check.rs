//! `strom log check DIR` and `strom log repair DIR`: what Kafka's DumpLogSegments
//! tells about a log, plus the repair its recovery would make. Run with the broker
//! stopped.
//!
//! For every partition directory, each segment is read batch by batch: framing,
//! magic, CRC and increasing offsets; its indexes must exist and agree with it;
//! consecutive segments must not leave offsets out. Repair follows Kafka's rule
//! that a log is a prefix: the first damaged segment is truncated before its first
//! bad batch and every later segment is removed (their offsets could no longer
//! follow on), indexes found wanting are removed to be rebuilt at the next start,
//! and the producer-state snapshot and clean-shutdown marker go so that the next
//! start recovers from the log itself.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::manager::CLEAN_SHUTDOWN_FILE;
use super::offset_index::OffsetIndex;
use super::producer_state::ProducerStateManager;
use super::segment::{scan_why, segment_path, Check};
use super::time_index::TimeIndex;
use super::unified_log::list_segments;

/// One thing found wrong.
#[derive(Debug, Clone)]
pub struct Finding {
    pub file: PathBuf,
    pub position: u64,
    pub problem: String,
    /// Data damage (repair truncates), rather than a missing index or a gap.
    pub damage: bool,
}

/// What one partition directory holds and what is wrong with it.
#[derive(Debug, Default)]
pub struct PartitionCheck {
    pub dir: PathBuf,
    pub segments: usize,
    pub batches: u64,
    /// One past the last offset of the intact prefix of the log.
    pub log_end_offset: i64,
    pub findings: Vec<Finding>,
    /// The first damaged segment and the position to truncate it to.
    truncate: Option<(i64, u64)>,
    /// Segments after the damage, which repair removes.
    after_damage: Vec<i64>,
    /// Segments whose index files repair removes, to be rebuilt.
    reindex: Vec<i64>,
}

impl PartitionCheck {
    pub fn is_damaged(&self) -> bool {
        self.findings.iter().any(|f| f.damage)
    }
}

/// Check every partition directory under `data_dir`.
pub fn check_data_dir(data_dir: &Path) -> io::Result<Vec<PartitionCheck>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(data_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.to_string_lossy().ends_with("-delete"))
        .collect();
    dirs.sort();
    dirs.iter().map(|d| check_partition(d)).collect()
}

/// Check one partition directory.
pub fn check_partition(dir: &Path) -> io::Result<PartitionCheck> {
    let mut check = PartitionCheck {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let bases = list_segments(dir)?;
    check.segments = bases.len();
    // The cleaner leaves offsets out of compacted logs: not a gap to report there.
    let compacted = is_compacted(dir);
    let mut expected_next: Option<i64> = None;
    for (i, &base) in bases.iter().enumerate() {
        let path = segment_path(dir, base, "log");
        let file = File::open(&path)?;
        let size = file.metadata()?.len();
        let mut last: Option<i64> = None;
        let mut batches = 0;
        let (end, why) = scan_why(&file, 0, size, Check::segment(base, base), |b| {
            last = Some(b.header.last_offset());
            batches += 1;
        })?;
        check.batches += batches;
        let mut note = |position: u64, problem: String, damage: bool| {
            check.findings.push(Finding {
                file: path.clone(),
                position,
                problem,
                damage,
            })
        };
        if let Some(next) = expected_next.filter(|&n| n < base && !compacted) {
            note(0, format!("offsets {next}..{} are in no segment", base - 1), false);
        }
        let damaged_at = (end < size).then(|| (end, why.unwrap_or("damaged batch").to_string()));
        if let Some((position, why)) = damaged_at {
            note(position, format!("{why}; {} bytes after it", size - position), true);
            check.truncate = Some((base, position));
            check.after_damage = bases[i + 1..].to_vec();
            check.log_end_offset = last.map_or(base, |l| l + 1);
            for &later in &check.after_damage {
                check.findings.push(Finding {
                    file: segment_path(dir, later, "log"),
                    position: 0,
                    problem: "follows a damaged segment".into(),
                    damage: true,
                });
            }
            check.reindex.push(base);
            return Ok(check);
        }
        // Indexes: present, whole, and pointing at the batches they name.
        let index_ok = match OffsetIndex::open(&segment_path(dir, base, "index"), base, size)? {
            Some(index) => super::segment::index_matches_log(&file, &index, size)?,
            None => false,
        };
        let time_ok = TimeIndex::open(&segment_path(dir, base, "timeindex"), base)?.is_some();
        if !index_ok || !time_ok {
            let what = if index_ok { "timeindex" } else { "index" };
            note(0, format!("{what} file missing or inconsistent with the log"), false);
            check.reindex.push(base);
        }
        expected_next = Some(last.map_or(base, |l| l + 1));
        check.log_end_offset = expected_next.unwrap_or(base);
    }
    Ok(check)
}

/// Whether the topic of partition directory `dir` is compacted, by its config
/// overrides (kept with partition 0) or by being the offsets topic.
fn is_compacted(dir: &Path) -> bool {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let Some((topic, _)) = name.rsplit_once('-') else {
        return false;
    };
    if topic == super::manager::OFFSETS_TOPIC {
        return true;
    }
    let Some(parent) = dir.parent() else { return false };
    let overrides = super::manager::read_overrides(&parent.join(format!("{topic}-0")));
    overrides.get("cleanup.policy").is_some_and(|p| p.contains("compact"))
}

/// Make the repair that `check` describes; returns what was done.
pub fn repair(data_dir: &Path, check: &PartitionCheck) -> io::Result<Vec<String>> {
    let dir = &check.dir;
    let mut done = Vec::new();
    if let Some((base, position)) = check.truncate {
        let path = segment_path(dir, base, "log");
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        file.set_len(position)?;
        file.sync_all()?;
        done.push(format!("truncated {} to {position} bytes", path.display()));
    }
    for &base in &check.after_damage {
        for ext in ["log", "index", "timeindex"] {
            remove_if_present(&segment_path(dir, base, ext))?;
        }
        done.push(format!("removed {}", segment_path(dir, base, "log").display()));
    }
    for &base in &check.reindex {
        for ext in ["index", "timeindex"] {
            remove_if_present(&segment_path(dir, base, ext))?;
        }
        done.push(format!(
            "removed the indexes of {} (rebuilt at the next start)",
            segment_path(dir, base, "log").display()
        ));
    }
    if !done.is_empty() {
        ProducerStateManager::remove_snapshots(dir)?;
        remove_if_present(&data_dir.join(CLEAN_SHUTDOWN_FILE))?;
        crate::util::fs::sync_dir(dir)?;
    }
    Ok(done)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::batch::{self, tests::sample_batch};

    /// A partition directory `name` with segments at 0 and 10, three records each:
    /// offsets 3..9 are in neither.
    fn gapped(root: &Path, name: &str, configs: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("topic-config.properties"), configs).unwrap();
        for base in [0, 10] {
            let mut b = sample_batch(3, 0);
            batch::assign_offsets(&mut b, base, 0);
            std::fs::write(segment_path(&dir, base, "log"), &b).unwrap();
        }
        dir
    }

    #[test]
    fn gaps_are_reported_except_where_compaction_leaves_them() {
        let root = tempfile::tempdir().unwrap();
        let plain = check_partition(&gapped(root.path(), "plain-0", "")).unwrap();
        assert!(
            plain.findings.iter().any(|f| f.problem.contains("3..9")),
            "{:?}",
            plain.findings
        );
        assert!(!plain.is_damaged());
        let compacted = check_partition(&gapped(root.path(), "kept-0", "cleanup.policy=compact\n")).unwrap();
        assert!(
            compacted.findings.iter().all(|f| !f.problem.contains("no segment")),
            "{:?}",
            compacted.findings
        );
        assert_eq!(compacted.batches, 2);
    }
}

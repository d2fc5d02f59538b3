//! What a partition's directory holds: its segments' base offsets, the files of
//! segments deleted before the last stop, and offsets no segment holds.

use super::*;

/// Log offsets that no segment holds: a segment file truncated or deleted by
/// something other than the broker. Consumers would skip them without a word, so
/// the broker says it. (On a compacted topic the cleaner may leave such gaps.)
pub(super) fn report_gaps<'a>(dir: &Path, config: &LogConfig, segments: impl Iterator<Item = &'a LogSegment>) {
    if config.cleanup_compact {
        return;
    }
    let mut previous: Option<&LogSegment> = None;
    for seg in segments {
        if let Some(p) = previous.filter(|p| p.next_offset() < seg.base_offset) {
            tracing::error!(
                dir = %dir.display(),
                missing_from = p.next_offset(),
                missing_to = seg.base_offset - 1,
                "offsets missing from the log (a segment truncated or deleted); see `strom log check`"
            );
        }
        previous = Some(seg);
    }
}

/// Files of segments deleted before the last stop, whose delay was not over:
/// nothing reads them any more.
pub(super) fn remove_retired(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(segment::DELETED_SUFFIX) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<i64>> {
    segment::offset_files(dir, "log")
}

//! Kafka's checkpoint files: small text files a broker rewrites whole, read at
//! start. The format (Kafka's `CheckpointFile`), kept so Kafka's tools and
//! documentation apply:
//!
//! ```text
//! 0            <- format version
//! 2            <- number of entries
//! 0 0          <- one entry per line, fields separated by spaces
//! 3 1507
//! ```
//!
//! Used for `leader-epoch-checkpoint` (per partition: `epoch start_offset`) and,
//! with replication, `replication-offset-checkpoint` (per data directory:
//! `topic partition high_watermark`). Written atomically (a temporary file,
//! fsynced, renamed), so a crash leaves the old file or the new one.

use std::path::Path;

use crate::error::{Error, Result};
use crate::util;

const VERSION: &str = "0";

/// One line of a checkpoint file.
pub trait CheckpointEntry: Sized {
    /// The entry's fields, separated by single spaces.
    fn to_line(&self) -> String;
    /// The entry from a line's fields; None when they do not make one.
    fn from_fields(fields: &[&str]) -> Option<Self>;
}

/// The entries of the checkpoint file at `path`; None when there is no file.
/// A file that is not a checkpoint (a bad version, count or entry) is an error
/// naming the file and the line.
pub fn read<T: CheckpointEntry>(path: &Path) -> Result<Option<Vec<T>>> {
    let corrupt = |line: usize, reason| Error::CorruptLog {
        file: path.display().to_string(),
        position: line as u64,
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt(1, "not text"))?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(VERSION) {
        return Err(corrupt(1, "not a version 0 checkpoint file"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt(2, "the entry count is not a number"))?;
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        entries.push(T::from_fields(&fields).ok_or_else(|| corrupt(i + 3, "a malformed entry"))?);
    }
    if entries.len() != count {
        return Err(corrupt(2, "the entry count does not match the entries"));
    }
    Ok(Some(entries))
}

/// Replace the checkpoint file at `path` with `entries`, atomically and durably.
pub fn write<T: CheckpointEntry>(path: &Path, entries: &[T]) -> std::io::Result<()> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for entry in entries {
        text.push_str(&entry.to_line());
        text.push('\n');
    }
    util::fs::write_atomically(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Pair(i32, i64);

    impl CheckpointEntry for Pair {
        fn to_line(&self) -> String {
            format!("{} {}", self.0, self.1)
        }
        fn from_fields(fields: &[&str]) -> Option<Pair> {
            match fields {
                [a, b] => Some(Pair(a.parse().ok()?, b.parse().ok()?)),
                _ => None,
            }
        }
    }

    #[test]
    fn round_trip_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leader-epoch-checkpoint");
        assert_eq!(read::<Pair>(&path).unwrap(), None, "no file");
        write(&path, &[Pair(0, 0), Pair(3, 1507)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n2\n0 0\n3 1507\n");
        assert_eq!(read::<Pair>(&path).unwrap(), Some(vec![Pair(0, 0), Pair(3, 1507)]));
        write::<Pair>(&path, &[]).unwrap();
        assert_eq!(read::<Pair>(&path).unwrap(), Some(vec![]));
    }

    #[test]
    fn bytes_that_are_not_text_are_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leader-epoch-checkpoint");
        std::fs::write(&path, b"0\n1\n0 \xff\n").unwrap();
        assert!(matches!(
            read::<Pair>(&path),
            Err(Error::CorruptLog { position: 1, .. })
        ));
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leader-epoch-checkpoint");
        for (text, line) in [
            ("1\n0\n", 1),
            ("0\nx\n", 2),
            ("0\n2\n0 0\n", 2),
            ("0\n1\n0 zero\n", 3),
            ("0\n1\n0 0 0\n", 3),
            ("", 1),
            ("0\n1\n0 \u{fffd}\n", 3),
        ] {
            std::fs::write(&path, text).unwrap();
            match read::<Pair>(&path) {
                Err(Error::CorruptLog { file, position, .. }) => {
                    assert!(file.ends_with("leader-epoch-checkpoint"));
                    assert_eq!(position, line, "{text:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}

//! Reading records for display (the web console's message browser): records of a topic read straight from its
//! partitions' logs (below the high watermark, as a consumer sees them), from an
//! offset, a time or the newest; a bounded search over keys, values and headers
//! that says how much it scanned; and the positions a live tail follows.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::log::manager::Topic;
use crate::log::unified_log::UnifiedLog;
use crate::record::batch::Batches;
use crate::record::records::{max_uncompressed, walk, Walk};

/// Most records one page shows, and most a search may scan.
pub const MAX_LIMIT: usize = 1000;
pub const MAX_SCAN: u64 = 1_000_000;
/// Most bytes of one key, value or header value shown (the rest is cut and the
/// record says so), and most bytes of records one page holds.
pub const MAX_FIELD: usize = 256 * 1024;
pub const MAX_PAGE_BYTES: usize = 8 << 20;
/// What one read of a log asks for.
const READ_BYTES: usize = 1 << 20;

/// Bytes for JSON: UTF-8 text as is, anything else as base64; null stays null.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Data {
    Text(String),
    Base64(String),
}

impl Data {
    /// At most [`MAX_FIELD`] bytes of `bytes`, and whether some were cut.
    pub fn of(bytes: Option<&[u8]>) -> (Option<Data>, bool) {
        let Some(b) = bytes else {
            return (None, false);
        };
        let cut = b.len() > MAX_FIELD;
        let shown = &b[..b.len().min(MAX_FIELD)];
        let data = match std::str::from_utf8(shown) {
            Ok(s) => Data::Text(s.to_string()),
            // Cut inside a character: the text up to it.
            Err(e) if cut && e.error_len().is_none() => {
                Data::Text(String::from_utf8_lossy(&shown[..e.valid_up_to()]).into_owned())
            }
            Err(_) => Data::Base64(base64::engine::general_purpose::STANDARD.encode(shown)),
        };
        (Some(data), cut)
    }

    fn contains(&self, needle: &str) -> bool {
        match self {
            Data::Text(s) => s.to_lowercase().contains(needle),
            Data::Base64(_) => false,
        }
    }
}

/// One record as the console shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowsedRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: &'static str,
    pub key: Option<Data>,
    pub value: Option<Data>,
    pub headers: Vec<(String, Option<Data>)>,
    /// Bytes of the record as stored (uncompressed).
    pub size: usize,
    /// Written by a transactional producer (it may have been aborted).
    pub transactional: bool,
    /// A key, value or header was longer than [`MAX_FIELD`] and is cut.
    pub truncated: bool,
}

impl BrowsedRecord {
    /// Whether the lower-cased `needle` is in the key, value or a header.
    fn matches(&self, needle: &str) -> bool {
        let hit = |d: &Option<Data>| d.as_ref().is_some_and(|d| d.contains(needle));
        hit(&self.key)
            || hit(&self.value)
            || self
                .headers
                .iter()
                .any(|(k, v)| k.to_lowercase().contains(needle) || hit(v))
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    /// The last records before the high watermark.
    Newest,
    Offset(i64),
    /// The first record at or after this time (epoch ms).
    Timestamp(i64),
}

#[derive(Debug, Clone)]
pub struct Query {
    /// One partition, or all.
    pub partition: Option<i32>,
    pub start: Start,
    /// Per partition, where to go on from (a previous page's `next`).
    pub positions: BTreeMap<i32, i64>,
    pub limit: usize,
    /// Lower-cased text to look for; None shows every record.
    pub search: Option<String>,
    /// Most records a search looks at, over all partitions.
    pub scan_limit: u64,
}

/// A page of records and what it took to find them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub records: Vec<BrowsedRecord>,
    /// Records looked at (a search's work; equal to what is shown otherwise).
    pub scanned: u64,
    /// Every partition was read up to its high watermark.
    pub reached_end: bool,
    /// Per partition, the offset after the last record looked at.
    pub next: BTreeMap<i32, i64>,
    /// Per partition, the high watermark when read.
    pub high_watermarks: BTreeMap<i32, i64>,
    /// Batches passed over because they could not be read.
    pub unreadable: Vec<String>,
}

/// Visit the records of `log` from `from` below `upto`, in offset order,
/// until `f` says stop. Returns the offset after the last record visited (or
/// `upto`). Control batches (transaction markers) are skipped.
pub fn read_records(
    log: &UnifiedLog,
    (from, upto): (i64, i64),
    partition: i32,
    reading: &mut Reading<'_>,
    mut f: impl FnMut(BrowsedRecord) -> Walk,
) -> Result<i64> {
    // Batches may decompress to what the log accepted (the validator's bound).
    let limit = max_uncompressed(log.config().message_max_bytes);
    let mut offset = from.max(log.log_start_offset());
    while offset < upto {
        if (reading.stop)() {
            break;
        }
        let data = match log.read(offset, READ_BYTES) {
            Ok(d) => d,
            // Retention removed what was asked for: go on from the new start.
            Err(Error::OffsetOutOfRange { log_start_offset, .. }) if log_start_offset > offset => {
                offset = log_start_offset;
                continue;
            }
            Err(e) => return Err(e),
        };
        if data.is_empty() {
            break;
        }
        let before = offset;
        let mut stop = false;
        for (at, header) in Batches::new(&data) {
            if header.base_offset >= upto || stop {
                break;
            }
            if header.last_offset() < offset {
                continue;
            }
            if header.is_control() {
                offset = header.last_offset() + 1;
                continue;
            }
            let batch = &data[at..at + header.total_size()];
            let log_append = header.is_log_append_time();
            let walked = walk(batch, &header, limit, |r| {
                let abs = header.base_offset + r.offset_delta as i64;
                if abs < offset {
                    return Ok(Walk::Continue);
                }
                if abs >= upto {
                    stop = true;
                    return Ok(Walk::Stop);
                }
                let (key, key_cut) = Data::of(r.key);
                let (value, value_cut) = Data::of(r.value);
                let mut truncated = key_cut || value_cut;
                let headers = r
                    .headers()
                    .into_iter()
                    .map(|(k, v)| {
                        let (v, cut) = Data::of(v);
                        truncated |= cut;
                        (String::from_utf8_lossy(&k[..k.len().min(MAX_FIELD)]).into_owned(), v)
                    })
                    .collect();
                let record = BrowsedRecord {
                    partition,
                    offset: abs,
                    timestamp: if log_append {
                        header.max_timestamp
                    } else {
                        header.base_timestamp + r.timestamp_delta
                    },
                    timestamp_type: if log_append { "LogAppendTime" } else { "CreateTime" },
                    key,
                    value,
                    headers,
                    size: r.raw.len(),
                    transactional: header.is_transactional(),
                    truncated,
                };
                offset = abs + 1;
                if f(record) == Walk::Stop {
                    stop = true;
                    return Ok(Walk::Stop);
                }
                Ok(Walk::Continue)
            });
            if let Err(e) = walked {
                // A batch that cannot be read is passed over, and said so.
                reading.unreadable.push(format!(
                    "partition {partition}, offsets {}..={}: {e}",
                    header.base_offset,
                    header.last_offset()
                ));
                offset = offset.max(header.last_offset() + 1);
                continue;
            }
            if !stop {
                offset = offset.max(header.last_offset() + 1);
            }
        }
        if stop {
            return Ok(offset);
        }
        if offset == before {
            // Nothing whole could be read here: do not spin.
            break;
        }
    }
    Ok(offset.min(upto).max(from))
}

/// What a reader of the log is told and tells: when to stop (shutdown), and
/// the batches it could not read.
pub struct Reading<'a> {
    pub stop: &'a dyn Fn() -> bool,
    pub unreadable: Vec<String>,
}

/// Where a partition's page starts.
fn start_of(log: &UnifiedLog, start: Start, back: u64) -> Result<i64> {
    let (low, high) = (log.log_start_offset(), log.high_watermark());
    Ok(match start {
        Start::Earliest => low,
        Start::Newest => high.saturating_sub(back as i64).max(low),
        Start::Offset(o) => o.clamp(low, high),
        Start::Timestamp(ts) => log.offset_for_timestamp(ts)?.map_or(high, |(_, o)| o.max(low)),
    })
}

/// One page of `topic` as `q` asks.
pub fn browse(topic: &Topic, q: &Query, stop: &dyn Fn() -> bool) -> Result<Page> {
    let mut reading = Reading {
        stop,
        unreadable: Vec::new(),
    };
    let limit = q.limit.clamp(1, MAX_LIMIT);
    let partitions: Vec<&std::sync::Arc<UnifiedLog>> = topic
        .partitions
        .iter()
        .filter(|p| q.partition.is_none_or(|want| p.index == want))
        .collect();
    if partitions.is_empty() {
        return Err(Error::UnknownTopicOrPartition {
            topic: topic.name.clone(),
            partition: q.partition.unwrap_or(-1),
        });
    }
    let scan_limit = q.scan_limit.clamp(1, MAX_SCAN);
    let share = (scan_limit / partitions.len() as u64).max(1);
    let mut page = Page {
        records: Vec::new(),
        scanned: 0,
        reached_end: true,
        next: BTreeMap::new(),
        high_watermarks: BTreeMap::new(),
        unreadable: Vec::new(),
    };
    let mut found: Vec<BrowsedRecord> = Vec::new();
    let mut page_bytes = 0usize;
    for log in partitions {
        if page_bytes >= MAX_PAGE_BYTES {
            // Full: this partition is not read at all this time.
            page.reached_end = false;
            break;
        }
        let hw = log.high_watermark();
        page.high_watermarks.insert(log.index, hw);
        let back = if q.search.is_some() { share } else { limit as u64 };
        let from = match q.positions.get(&log.index) {
            Some(&o) => o.clamp(log.log_start_offset(), hw),
            None => start_of(log, q.start, back)?,
        };
        let mut scanned = 0u64;
        let mut kept = 0usize;
        let next = read_records(log, (from, hw), log.index, &mut reading, |r| {
            scanned += 1;
            let keep = q.search.as_deref().is_none_or(|needle| r.matches(needle));
            if keep {
                kept += 1;
                page_bytes += r.size.min(3 * MAX_FIELD);
                found.push(r);
            }
            if page_bytes >= MAX_PAGE_BYTES {
                return Walk::Stop;
            }
            let budget_spent = match q.search {
                Some(_) => scanned >= share,
                None => false,
            };
            if kept >= limit || budget_spent {
                Walk::Stop
            } else {
                Walk::Continue
            }
        })?;
        page.scanned += scanned;
        page.reached_end &= next >= hw;
        page.next.insert(log.index, next);
    }
    // Across partitions, in time order (offset order within one).
    found.sort_by_key(|r| (r.timestamp, r.partition, r.offset));
    if q.start == Start::Newest && q.search.is_none() && q.positions.is_empty() {
        let skip = found.len().saturating_sub(limit);
        found.drain(..skip);
    } else if found.len() > limit {
        // What did not fit is where the next page of its partition starts;
        // of each partition a page keeps an unbroken run of offsets (its
        // records' times need not grow), so nothing is shown twice.
        let mut cut: BTreeMap<i32, i64> = BTreeMap::new();
        for r in found.drain(limit..) {
            let c = cut.entry(r.partition).or_insert(r.offset);
            *c = (*c).min(r.offset);
        }
        found.retain(|r| cut.get(&r.partition).is_none_or(|&c| r.offset < c));
        for (p, c) in cut {
            page.next.insert(p, c);
            page.reached_end = false;
        }
    }
    page.unreadable = reading.unreadable;
    page.records = found;
    Ok(page)
}

/// Parse `0:12,3:40` (partition:offset pairs).
pub fn parse_positions(text: &str) -> std::result::Result<BTreeMap<i32, i64>, String> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| {
            let (p, o) = pair
                .split_once(':')
                .ok_or_else(|| format!("{pair:?}: expected PARTITION:OFFSET"))?;
            let p = p.trim().parse().map_err(|_| format!("{p:?} is not a partition"))?;
            let o = o.trim().parse().map_err(|_| format!("{o:?} is not an offset"))?;
            Ok((p, o))
        })
        .collect()
}

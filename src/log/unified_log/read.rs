//! Reading a partition: the file ranges a fetch sends, checked before they are
//! served, and the records ListOffsets looks for by time.

use super::*;

impl UnifiedLog {
    /// Whole batches from `offset` on, up to `max_bytes` but at least one batch.
    /// Empty when `offset` is the log end offset.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes> {
        match self.read_slice(offset, max_bytes)? {
            Some(slice) => Ok(slice.read()?),
            None => Ok(Bytes::new()),
        }
    }

    /// Where in which file the batches of [`UnifiedLog::read`] are, without reading
    /// them: what a fetch sends to the socket. None when `offset` is the log end offset.
    pub fn read_slice(&self, offset: i64, max_bytes: usize) -> Result<Option<FileSlice>> {
        self.read_slice_below(offset, max_bytes, i64::MAX)
    }

    /// [`Self::read_slice`] of the batches below offset `upper` only (a batch
    /// boundary: the last stable offset, for read_committed fetches). None when
    /// `offset` is at or past it.
    pub fn read_slice_below(&self, offset: i64, max_bytes: usize, upper: i64) -> Result<Option<FileSlice>> {
        let mut offset = offset;
        loop {
            let (file, from, end, next_base, hint, verified, segment_end, base) = {
                let log = self.lock();
                let leo = log.log_end_offset();
                if offset == leo || (offset >= upper && offset <= leo) {
                    return Ok(None);
                }
                if offset < log.log_start_offset || offset > leo {
                    return Err(Error::OffsetOutOfRange {
                        offset,
                        log_start_offset: log.log_start_offset,
                        log_end_offset: leo,
                    });
                }
                let (seg, next) = log.segment_for(offset);
                let from = seg.locate(offset);
                // The batch sought starts at or after `from`, so a boundary at or
                // below from + max_bytes is within reach of any read of it.
                let hint = seg.boundary_at_or_below(from + max_bytes as u64);
                let (verified, segment_end) = (seg.verified(), seg.next_offset());
                (
                    seg.file(),
                    from,
                    seg.size(),
                    next,
                    hint,
                    verified,
                    segment_end,
                    seg.base_offset,
                )
            };
            let corrupt = |position: u64, reason: &'static str| {
                let file = segment::segment_path(&self.dir, base, "log").display().to_string();
                tracing::error!(%file, position, offset, reason, "damaged log data; refusing to serve it");
                Error::CorruptLog { file, position, reason }
            };
            let found =
                segment::find_batch(&file, from, end, offset).map_err(|e| match segment::Damaged::position(&e) {
                    Some(position) => corrupt(position, "batch header out of bounds or order"),
                    None => e.into(),
                })?;
            match found {
                Some(b) => {
                    // The base offset is not covered by the CRC: it must at least lie
                    // within the segment.
                    if b.header.base_offset < base || b.header.last_offset() >= segment_end {
                        return Err(corrupt(b.position, "batch offsets outside its segment"));
                    }
                    let len = segment::batch_extent(&file, b.position, end, max_bytes, hint)?;
                    if len == 0 {
                        return Err(corrupt(b.position, "batch length out of bounds"));
                    }
                    let mut slice = FileSlice {
                        file,
                        position: b.position,
                        len: len as usize,
                    };
                    let check = segment::Check::Batches {
                        segment_base: base,
                        first_offset: base,
                        end_offset: segment_end,
                    };
                    match segment::check_slice(&slice, &verified, check)? {
                        // The intact batches before the damage are served; the
                        // fetch that reaches the damage is refused.
                        Some((position, _)) if position > slice.position => {
                            slice.len = (position - slice.position) as usize;
                        }
                        Some((position, reason)) => return Err(corrupt(position, reason)),
                        None => {}
                    }
                    // Nothing at or past `upper` (which starts a batch).
                    if upper < segment_end {
                        let stop =
                            segment::find_batch(&slice.file, slice.position, slice.position + slice.len as u64, upper)?
                                .map_or(slice.position + slice.len as u64, |at| at.position);
                        slice.len = (stop - slice.position) as usize;
                        if slice.len == 0 {
                            return Ok(None);
                        }
                    }
                    return Ok(Some(slice));
                }
                // The segment says it holds `offset`, but its batches do not lead
                // there: a damaged length sent the walk astray.
                None if offset < segment_end => return Err(corrupt(from, "batch lengths do not lead to the offset")),
                None => match next_base {
                    Some(next) => offset = next,
                    None => return Ok(None),
                },
            }
        }
    }

    /// The first record with a timestamp at or after `timestamp`: (timestamp, offset).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let (file, from, end) = {
            let log = self.lock();
            let Some(seg) = log.segments().find(|s| s.max_timestamp() >= timestamp) else {
                return Ok(None);
            };
            let start = seg.locate_time(timestamp).max(log.log_start_offset);
            (seg.file(), seg.locate(start), seg.size())
        };
        let mut pos = from;
        while let Some(b) = segment::find_batch(&file, pos, end, i64::MIN)? {
            if b.header.max_timestamp >= timestamp {
                let found = first_record_where(&file, &b, |ts| ts >= timestamp)?;
                return Ok(Some(found.unwrap_or((b.header.max_timestamp, b.header.base_offset))));
            }
            pos = b.position + b.header.total_size() as u64;
        }
        Ok(None)
    }

    /// The record with the greatest timestamp (the first if several share it).
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let (file, from, end, max_ts, batch_offset) = {
            let log = self.lock();
            let mut best: Option<&LogSegment> = None;
            for seg in log.segments().filter(|s| !s.is_empty()) {
                if best.is_none_or(|b| seg.max_timestamp() > b.max_timestamp()) {
                    best = Some(seg);
                }
            }
            let Some(seg) = best else { return Ok(None) };
            let at = seg.offset_of_max_timestamp();
            (seg.file(), seg.locate(at), seg.size(), seg.max_timestamp(), at)
        };
        let Some(b) = segment::find_batch(&file, from, end, batch_offset)? else {
            return Ok(None);
        };
        let offset = first_record_where(&file, &b, |ts| ts == max_ts)?.map_or(b.header.base_offset, |(_, o)| o);
        Ok(Some((max_ts, offset)))
    }
}

/// (timestamp, offset) of the first record of a stored batch whose timestamp
/// satisfies `wanted`. With LogAppendTime every record carries the batch's max
/// timestamp, so the header answers; otherwise the records are walked, compressed
/// ones as a bounded stream.
fn first_record_where(
    file: &File,
    b: &segment::ScannedBatch,
    wanted: impl Fn(i64) -> bool,
) -> Result<Option<(i64, i64)>> {
    let h = &b.header;
    if h.is_log_append_time() {
        return Ok(wanted(h.max_timestamp).then_some((h.max_timestamp, h.base_offset)));
    }
    let mut batch = vec![0u8; h.total_size()];
    file.read_exact_at(&mut batch, b.position)?;
    let mut found = None;
    let max_uncompressed = records::max_uncompressed(batch.len());
    records::walk(&batch, h, max_uncompressed, |r| {
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        if wanted(ts) {
            found = Some((ts, h.base_offset + r.offset_delta as i64));
            return Ok(Walk::Stop);
        }
        Ok(Walk::Continue)
    })?;
    Ok(found)
}

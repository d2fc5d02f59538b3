//! Reading a segment file batch by batch: the checks recovery, fetches and
//! `strom log check` share ([`Check`], [`scan`]), finding the batch of an offset,
//! and checking the file ranges a fetch sends ([`check_slice`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::{ScannedBatch, Verified, SCAN_CHUNK};
use crate::record::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use crate::record::control;
use crate::record::file_slice::FileSlice;

/// What [`scan`] checks of each batch beyond its framing.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    Framing,
    /// Everything recovery relies on: [`batch::verify_stored_batch`] (magic, CRC),
    /// offsets that grow from `first_offset` on, stay below `end_offset`, and stay
    /// within what the segment's indexes can express relative to `segment_base`.
    Batches {
        segment_base: i64,
        first_offset: i64,
        end_offset: i64,
    },
}

impl Check {
    /// All of a segment's batches, wherever it ends.
    pub fn segment(segment_base: i64, first_offset: i64) -> Check {
        Check::Batches {
            segment_base,
            first_offset,
            end_offset: i64::MAX,
        }
    }

    /// Whether the batch `h` (bytes `batch`) may follow, or what is wrong with it;
    /// `next` is the lowest base offset it may have, advanced past it when it is
    /// accepted.
    fn accepts(&self, batch: &[u8], h: &BatchHeader, next: &mut i64) -> Result<(), &'static str> {
        let Check::Batches {
            segment_base,
            end_offset,
            ..
        } = *self
        else {
            return Ok(());
        };
        batch::verify_stored_batch(batch, h)?;
        let last = h
            .base_offset
            .checked_add(h.last_offset_delta as i64)
            .filter(|&last| last - segment_base <= i32::MAX as i64 && last < end_offset);
        let Some(last) = last else {
            return Err("offsets outside the segment");
        };
        if h.base_offset < *next {
            return Err("offsets do not increase");
        }
        *next = last + 1;
        Ok(())
    }
}

/// Walk the batches of `file` in `[from, end)`, calling `f` for each complete one
/// that passes `check`. Returns the position after the last batch accepted: `end`
/// unless the file has a torn or damaged tail.
pub fn scan(file: &File, from: u64, end: u64, check: Check, f: impl FnMut(&ScannedBatch)) -> io::Result<u64> {
    Ok(scan_why(file, from, end, check, f)?.0)
}

/// [`scan`], also saying what is wrong where it stopped early.
pub fn scan_why(
    file: &File,
    from: u64,
    end: u64,
    check: Check,
    mut f: impl FnMut(&ScannedBatch),
) -> io::Result<(u64, Option<&'static str>)> {
    const TORN: &str = "batch length out of bounds";
    let mut next = match check {
        Check::Framing => i64::MIN,
        Check::Batches { first_offset, .. } => first_offset,
    };
    let mut pos = from;
    let mut buf = Vec::new();
    while pos < end {
        let want = ((end - pos) as usize).min(SCAN_CHUNK);
        buf.resize(want, 0);
        file.read_exact_at(&mut buf, pos)?;
        let mut consumed = 0usize;
        loop {
            let rest = &buf[consumed..];
            match batch::next_batch(rest) {
                Ok(Some(h)) => {
                    if let Err(why) = check.accepts(&rest[..h.total_size()], &h, &mut next) {
                        return Ok((pos + consumed as u64, Some(why)));
                    }
                    f(&ScannedBatch {
                        position: pos + consumed as u64,
                        header: h,
                        marker: control::read_marker(&rest[..h.total_size()], &h),
                    });
                    consumed += h.total_size();
                }
                Ok(None) => break,
                Err(_) => return Ok((pos + consumed as u64, Some(TORN))),
            }
        }
        if consumed == 0 {
            // The next batch is larger than the chunk, or incomplete at the end.
            let header_end = pos + batch::LOG_OVERHEAD as u64;
            if want < SCAN_CHUNK || header_end > end {
                return Ok((pos, Some(TORN)));
            }
            let mut head = [0u8; batch::LOG_OVERHEAD];
            file.read_exact_at(&mut head, pos)?;
            let length = batch::batch_length(&head).unwrap_or(0);
            let total = batch::LOG_OVERHEAD as u64 + length.max(0) as u64;
            if pos + total > end {
                return Ok((pos, Some(TORN)));
            }
            buf.resize(total as usize, 0);
            file.read_exact_at(&mut buf, pos)?;
            let h = match batch::next_batch(&buf) {
                Ok(Some(h)) => h,
                _ => return Ok((pos, Some(TORN))),
            };
            if let Err(why) = check.accepts(&buf, &h, &mut next) {
                return Ok((pos, Some(why)));
            }
            f(&ScannedBatch {
                position: pos,
                header: h,
                marker: control::read_marker(&buf, &h),
            });
            pos += h.total_size() as u64;
        } else {
            pos += consumed as u64;
        }
    }
    Ok((pos, None))
}

/// Find the first batch in `[from, end)` whose last offset is at least `offset`.
/// `Ok(None)` at the end. A header that cannot be (a length below a header's,
/// offsets that do not grow from one batch to the next, or that overflow) is damage:
/// an error naming its position.
pub fn find_batch(file: &File, from: u64, end: u64, offset: i64) -> io::Result<Option<ScannedBatch>> {
    let mut pos = from;
    let mut header = [0u8; BATCH_HEADER_LEN];
    let mut previous_last: Option<i64> = None;
    while pos + BATCH_HEADER_LEN as u64 <= end {
        file.read_exact_at(&mut header, pos)?;
        let damaged = || io::Error::new(io::ErrorKind::InvalidData, Damaged(pos));
        let h = BatchHeader::parse(&header).ok_or_else(damaged)?;
        let sane_length = h.batch_length as i64 >= (BATCH_HEADER_LEN - batch::LOG_OVERHEAD) as i64;
        let last = h
            .base_offset
            .checked_add(h.last_offset_delta as i64)
            .filter(|_| h.last_offset_delta >= 0);
        let follows = previous_last.is_none_or(|p| h.base_offset > p);
        let Some(last) = last.filter(|_| sane_length && follows) else {
            return Err(damaged());
        };
        if last >= offset {
            return Ok(Some(ScannedBatch {
                position: pos,
                header: h,
                marker: None,
            }));
        }
        previous_last = Some(last);
        pos += h.total_size() as u64;
    }
    Ok(None)
}

/// The error [`find_batch`] returns for damage, with its position.
#[derive(Debug, thiserror::Error)]
#[error("damaged batch header at byte {0}")]
pub struct Damaged(pub u64);

impl Damaged {
    /// The position, if `e` is a [`Damaged`].
    pub fn position(e: &io::Error) -> Option<u64> {
        e.get_ref().and_then(|i| i.downcast_ref::<Damaged>()).map(|d| d.0)
    }
}

/// Check the batches of `slice` before they are served, unless `verified` covers
/// it already: `check` (framing, CRC, offsets within the segment and growing). The
/// first bad one's position and what is wrong with it.
pub fn check_slice(slice: &FileSlice, verified: &Verified, check: Check) -> io::Result<Option<(u64, &'static str)>> {
    let range = slice.range();
    if verified.covers(&range) {
        return Ok(None);
    }
    let (end, why) = scan_why(&slice.file, range.start, range.end, check, |_| {})?;
    if end < range.end {
        return Ok(Some((end, why.unwrap_or("damaged batch"))));
    }
    verified.add(range);
    Ok(None)
}

/// How many bytes of whole batches start at `from` (a batch boundary): as many as
/// fit in `max_bytes`, but at least the first batch, never past `end`. Only batch
/// lengths are read; `hint` is a known batch boundary (from the offset index) at
/// or below `from + max_bytes`, from which the walk may start instead of `from`.
pub fn batch_extent(file: &File, from: u64, end: u64, max_bytes: usize, hint: u64) -> io::Result<u64> {
    let batch_len = |pos: u64| -> io::Result<Option<u64>> {
        if pos + batch::LOG_OVERHEAD as u64 > end {
            return Ok(None);
        }
        let mut head = [0u8; batch::LOG_OVERHEAD];
        file.read_exact_at(&mut head, pos)?;
        let len = batch::batch_length(&head).unwrap_or(0);
        Ok((len > 0).then(|| batch::LOG_OVERHEAD as u64 + len as u64))
    };
    let Some(first) = batch_len(from)? else {
        return Ok(0);
    };
    let limit = (from + max_bytes as u64).min(end);
    if from + first >= limit {
        return Ok(first.min(end - from));
    }
    let mut pos = if hint > from && hint <= limit {
        hint
    } else {
        from + first
    };
    while let Some(len) = batch_len(pos)? {
        if pos + len > limit {
            break;
        }
        pos += len;
    }
    Ok(pos - from)
}

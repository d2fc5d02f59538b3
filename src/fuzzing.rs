//! The fuzz targets' bodies, here so that the fuzzers (`fuzz/`, cargo-fuzz on a
//! nightly toolchain) and the corpus replay test (`tests/fuzz_corpus.rs`, on any
//! toolchain) run exactly the same code. Each takes arbitrary bytes and must never
//! panic, hang or allocate without bound; what it returns does not matter.
#![doc(hidden)]

use std::path::Path;

use bytes::{Bytes, BytesMut};

use crate::handlers::APIS;
use crate::log::config::LogConfig;
use crate::log::unified_log::UnifiedLog;
use crate::protocol::frame::parse_frame;
use crate::protocol::header::parse_request;
use crate::record::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use crate::record::records::{self, Walk};

/// Frames and request headers, as they come off a socket.
pub fn frames(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = parse_frame(&mut buf, 1 << 20) {
        let _ = parse_request(frame);
    }
}

/// The body of a request of every advertised (API, version): the first byte picks
/// the API from the registry, the second the version (in its range and just
/// outside it), the rest is the body.
pub fn request(data: &[u8]) {
    let [which, version, body @ ..] = data else { return };
    let spec = &APIS[*which as usize % APIS.len()];
    let span = (spec.max - spec.min + 3) as u8;
    let version = spec.min - 1 + (version % span) as i16;
    let body = Bytes::copy_from_slice(body);
    // Old versions are rewritten first, as the broker does.
    let Some((version, mut body)) = crate::protocol::legacy::upgrade_request(spec.key, version, body) else {
        return;
    };
    let _ = kafka_protocol::messages::RequestKind::decode(spec.key, &mut body, version);
}

/// A produce request's batch, as the broker validates it: framing, header, CRC,
/// then every record (of any codec).
pub fn batch(data: &[u8]) {
    let Ok(Some(header)) = batch::next_batch(data) else {
        return;
    };
    if batch::validate_batch(data, &header).is_ok() {
        walk_all(data, &header);
    }
}

/// The record walker behind a valid header and CRC: the first byte picks the
/// codec (0–7, so undefined ones too), the next four the record count; the rest
/// is the records section.
pub fn records(data: &[u8]) {
    let [codec, c0, c1, c2, c3, section @ ..] = data else {
        return;
    };
    let count = i32::from_be_bytes([*c0, *c1, *c2, *c3]);
    let header = BatchHeader {
        base_offset: 0,
        batch_length: 0,
        partition_leader_epoch: 0,
        magic: batch::MAGIC_V2,
        crc: 0,
        attributes: (*codec & 0x07) as i16,
        last_offset_delta: count.wrapping_sub(1),
        base_timestamp: 0,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: count,
    };
    let batch = batch::encode_batch(&header, section);
    if let Ok(Some(h)) = batch::next_batch(&batch) {
        if batch::validate_batch(&batch, &h).is_ok() {
            walk_all(&batch, &h);
        }
    }
    let owned = Bytes::from(batch);
    if let Ok(Some(h)) = batch::next_batch(&owned) {
        if let Ok(kept) = records::records(&owned, &h) {
            let _ = records::rebuild(&h, &kept);
        }
    }
}

fn walk_all(batch: &[u8], header: &BatchHeader) {
    let _ = records::walk(batch, header, 4 << 20, |r| {
        std::hint::black_box(r);
        Ok(Walk::Continue)
    });
}

/// Recovery of a partition directory holding one damaged segment: the first two
/// bytes say whether the last shutdown was clean (top bit) and the length of an
/// offset index to write beside it; the rest is the `.log` file. The partition is
/// opened, read from every offset it claims (up to 64), by time, and appended to.
pub fn segment(data: &[u8], dir: &Path) {
    let [i0, i1, rest @ ..] = data else { return };
    let clean = i0 & 0x80 != 0;
    let index_len = (u16::from_be_bytes([i0 & 0x7f, *i1]) as usize).min(rest.len()) / 8 * 8;
    let (index, log) = rest.split_at(index_len);
    let _ = std::fs::remove_dir_all(dir);
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let write = |ext: &str, bytes: &[u8]| std::fs::write(dir.join(format!("00000000000000000000.{ext}")), bytes);
    if write("log", log).and_then(|_| write("index", index)).is_err() {
        return;
    }
    let Ok(p) = UnifiedLog::open("fuzz", 0, dir, LogConfig::default(), clean, 0) else {
        return;
    };
    let (start, end) = p.offsets();
    for offset in start..end.min(start.saturating_add(64)) {
        let _ = p.read(offset, 1 << 20);
    }
    let _ = p.offset_for_timestamp(0);
    let _ = p.max_timestamp();
    let head = [0u8; BATCH_HEADER_LEN];
    let _ = p.append(&head, 0);
}

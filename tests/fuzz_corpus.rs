//! The fuzz corpus (`fuzz/corpus/TARGET/`) replayed through the very functions the
//! fuzzers run (`strom::fuzzing`): every input a fuzzer kept, crashes it found and
//! were fixed included, stays a regression test on any toolchain.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` writes the seed inputs
//! the fuzzers start from.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use strom::fuzzing;
use strom::record::batch;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn replay(target: &str, f: impl Fn(&[u8])) {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus(target)).unwrap() {
        let path = entry.unwrap().path();
        // A fuzzer running on the same corpus may replace files as it goes.
        let Ok(data) = std::fs::read(&path) else { continue };
        f(&data);
        n += 1;
    }
    assert!(n > 0, "the {target} corpus is empty");
}

#[test]
fn frames() {
    replay("frames", fuzzing::frames);
}

#[test]
fn request() {
    replay("request", fuzzing::request);
}

#[test]
fn batch() {
    replay("batch", fuzzing::batch);
}

#[test]
fn records() {
    replay("records", fuzzing::records);
}

#[test]
fn segment() {
    let dir = tempfile::tempdir().unwrap();
    replay("segment", |data| fuzzing::segment(data, &dir.path().join("p")));
}

fn batch_of(codec: Compression, n: usize) -> Vec<u8> {
    strom::record::testing::numbered_batch(codec, n).unwrap()
}

#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seeds() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus(target)).unwrap();
        std::fs::write(corpus(target).join(format!("seed-{name}")), bytes).unwrap();
    };
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    for (name, codec) in codecs {
        let b = batch_of(codec, 3);
        write("batch", name, &b);
        let mut r = vec![b[21] & 0x07];
        r.extend_from_slice(&3i32.to_be_bytes());
        r.extend_from_slice(&b[batch::BATCH_HEADER_LEN..]);
        write("records", name, &r);
    }
    // Request bodies: each API's default request at its highest version.
    for (i, spec) in strom::handlers::APIS.iter().enumerate() {
        let version = spec.max;
        let mut body = BytesMut::new();
        let encoded = match kafka_protocol::messages::RequestKind::decode(spec.key, &mut Bytes::new(), version) {
            Ok(k) => k.encode(&mut body, version).is_ok(),
            Err(_) => false,
        };
        let span = (spec.max - spec.min + 3) as u8;
        let mut input = vec![i as u8, (version - spec.min + 1) as u8 % span];
        if encoded {
            input.extend_from_slice(&body);
        }
        write("request", &format!("{:?}", spec.key), &input);
    }
    // Frames: an ApiVersions request and a Metadata request, back to back.
    let mut frames = Vec::new();
    for (key, version) in [(ApiKey::ApiVersions, 3), (ApiKey::Metadata, 12)] {
        let mut h = RequestHeader::default();
        h.request_api_key = key as i16;
        h.request_api_version = version;
        h.correlation_id = 7;
        h.client_id = Some(StrBytes::from_static_str("seed"));
        let mut buf = BytesMut::new();
        h.encode(&mut buf, key.request_header_version(version)).unwrap();
        buf.extend_from_slice(&[0, 0, 0]);
        frames.extend_from_slice(&(buf.len() as i32).to_be_bytes());
        frames.extend_from_slice(&buf);
    }
    write("frames", "two-requests", &frames);
    // Segments: three batches with offsets 0.., with and without an index.
    let mut log = Vec::new();
    let mut next = 0i64;
    for (_, codec) in &codecs[..3] {
        let mut b = batch_of(*codec, 3);
        batch::assign_offsets(&mut b, next, 0);
        next += 3;
        log.extend_from_slice(&b);
    }
    let mut plain = vec![0, 0];
    plain.extend_from_slice(&log);
    write("segment", "three-batches", &plain);
    let mut indexed = vec![0, 8];
    indexed.extend_from_slice(&3u32.to_be_bytes());
    let second = batch::next_batch(&log).unwrap().unwrap().total_size() as u32;
    indexed.extend_from_slice(&second.to_be_bytes());
    indexed.extend_from_slice(&log);
    write("segment", "indexed", &indexed);
}

//! Streaming decompression of a record batch's records section, for every codec
//! Kafka defines (attributes bits 0–2: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
//!
//! Every reader is bounded: it fails once more than `max_bytes` come out, so a
//! small batch that expands to gigabytes (a compression bomb) costs at most
//! `max_bytes` of work and a few fixed buffers of memory.

use std::io::{self, Read};

use crate::error::{Error, Result};

pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// zstd frames may ask for a window of up to 2^31 bytes; no client compresses a
/// record batch with one above 2^24 (16 MiB), so larger ones are refused rather
/// than allocated.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// The error inside the `io::Error` a reader returns once its output passes the bound.
#[derive(Debug, thiserror::Error)]
#[error("decompressed records exceed the limit")]
struct TooLarge;

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TooLarge)
}

/// A reader of the decompressed records in `section`, which is compressed with
/// `codec`, yielding at most `max_bytes`.
pub fn reader(codec: i16, section: &[u8], max_bytes: u64) -> Result<Box<dyn Read + '_>> {
    let corrupt = |_| Error::CorruptMessage("record batch does not decompress");
    let inner: Box<dyn Read + '_> = match codec {
        NONE => Box::new(section),
        GZIP => Box::new(flate2::bufread::MultiGzDecoder::new(section)),
        SNAPPY => Box::new(SnappyReader::new(section, max_bytes)?),
        LZ4 => Box::new(Lz4Whole(Some(lz4::Decoder::new(section).map_err(corrupt)?))),
        ZSTD => {
            let mut d = zstd::stream::read::Decoder::with_buffer(section).map_err(corrupt)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
            Box::new(d)
        }
        _ => return Err(Error::CorruptMessage("unknown compression codec")),
    };
    Ok(Box::new(Bounded { inner, left: max_bytes }))
}

/// `plain` compressed with `codec` at `level` (`None`: the codec's default), framed
/// as Kafka's clients frame it: gzip, snappy-java's framing, an LZ4 frame of
/// independent blocks, a zstd frame.
pub fn compress(codec: i16, level: Option<i32>, plain: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let fail = |_| Error::CorruptMessage("records do not compress");
    match codec {
        NONE => Ok(plain.to_vec()),
        GZIP => {
            let level = match level {
                Some(l @ 1..=9) => flate2::Compression::new(l as u32),
                _ => flate2::Compression::default(),
            };
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(plain).map_err(fail)?;
            e.finish().map_err(fail)
        }
        SNAPPY => {
            use kafka_protocol::compression::{Compressor, Snappy};
            let mut out = bytes::BytesMut::new();
            Snappy::compress(&mut out, |b: &mut bytes::BytesMut| {
                b.extend_from_slice(plain);
                Ok(())
            })
            .map_err(|_| Error::CorruptMessage("records do not compress"))?;
            Ok(out.to_vec())
        }
        LZ4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(level.unwrap_or(9).max(0) as u32)
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())
                .map_err(fail)?;
            e.write_all(plain).map_err(fail)?;
            let (out, finished) = e.finish();
            finished.map_err(fail)?;
            Ok(out)
        }
        ZSTD => zstd::stream::encode_all(plain, level.unwrap_or(3)).map_err(fail),
        _ => Err(Error::CorruptMessage("unknown compression codec")),
    }
}

/// Map an error from a [`reader`] to what the client is told.
pub fn read_error(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<TooLarge>()) {
        Error::InvalidRecord("the batch decompresses to more than the broker accepts")
    } else {
        Error::CorruptMessage("record batch does not decompress")
    }
}

struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte more than allowed, to tell "exactly at the limit" from
        // "past it".
        let want = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(too_large());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// An LZ4 frame that must fill the section: the decoder stops at the frame's
/// end, so bytes after it would otherwise pass unseen.
struct Lz4Whole<'a>(Option<lz4::Decoder<&'a [u8]>>);

impl Read for Lz4Whole<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(decoder) = self.0.as_mut() else {
            return Ok(0);
        };
        let n = decoder.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(decoder) = self.0.take() {
                let (rest, finished) = decoder.finish();
                finished?;
                if !rest.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "bytes after the LZ4 frame"));
                }
            }
        }
        Ok(n)
    }
}

/// Snappy as Kafka's clients write it: either snappy-java's framing (a 16-byte
/// header, then blocks of a 4-byte big-endian length and a raw snappy block), or
/// one raw snappy block. Each block is decompressed on its own, after its declared
/// length is checked against the bound.
struct SnappyReader<'a> {
    rest: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    at: usize,
    left: u64,
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

impl<'a> SnappyReader<'a> {
    fn new(section: &'a [u8], max_bytes: u64) -> Result<SnappyReader<'a>> {
        let framed = section.len() >= XERIAL_HEADER_LEN && section.starts_with(XERIAL_MAGIC);
        Ok(SnappyReader {
            rest: if framed { &section[XERIAL_HEADER_LEN..] } else { section },
            framed,
            block: Vec::new(),
            at: 0,
            left: max_bytes,
        })
    }

    /// Decompress the next block; false at the end of the section.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if self.framed {
            let Some((len, rest)) = self.rest.split_first_chunk::<4>() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "truncated snappy block length",
                ));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > rest.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated snappy block"));
            }
            let (block, after) = rest.split_at(len);
            self.rest = after;
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        let len = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if len as u64 > self.left {
            return Err(too_large());
        }
        self.left -= len as u64;
        self.block.resize(len, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.at = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_and_level_round_trips() {
        let plain: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for (codec, levels) in [
            (NONE, vec![None]),
            (GZIP, vec![None, Some(-1), Some(1), Some(9)]),
            (SNAPPY, vec![None]),
            (LZ4, vec![None, Some(1), Some(17)]),
            (ZSTD, vec![None, Some(-5), Some(1), Some(19)]),
        ] {
            for level in levels {
                let packed = compress(codec, level, &plain).unwrap();
                let mut back = Vec::new();
                reader(codec, &packed, 1 << 30).unwrap().read_to_end(&mut back).unwrap();
                assert_eq!(back, plain, "codec {codec} level {level:?}");
            }
        }
    }
}

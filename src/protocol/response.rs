//! A response on its way to the socket, with the record data of fetches left in
//! the segment files until it is written.
//!
//! Kafka serves fetches by `sendfile(2)`: record batches go from the page cache to
//! the socket without passing through the broker's memory. strom does the same
//! while still encoding every response with the kafka-protocol codec:
//!
//! 1. the fetch handler puts a *stand-in* in each partition's `records` field, a
//!    `Bytes` of the right length that points into a static all-zero block at a
//!    position that numbers the file range it stands for ([`Splices::stand_in`]);
//! 2. the response is encoded into a [`SpliceBuf`], which copies everything the
//!    codec writes except a stand-in: there it cuts the output and records the file
//!    range instead;
//! 3. the connection's writer sends the pieces in order, file ranges by
//!    `sendfile` ([`ResponseFrame::write_to`]).
//!
//! The bytes on the wire are exactly what the codec would have produced with the
//! records copied in.

use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::LazyLock;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use std::os::unix::fs::FileExt;

use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;

use crate::record::file_slice::FileSlice;

/// Largest file range that gets a stand-in: more than any response carries (the
/// fetch handler caps record data at 1 GiB), so fetched data is never copied into
/// memory. A larger range would be read in.
const MAX_SPLICE_LEN: usize = 1 << 30;
/// Most stand-ins in one response; more partitions with data are read into memory.
const MAX_SPLICES: usize = 4096;

/// The stand-ins' backing: never written, and read only if a codec copied a
/// stand-in where a file range should be (then clients would get zeros, never
/// another client's memory). A read-only anonymous mapping, made on first use: it
/// takes address space but no memory and no commit charge. Empty if it cannot be
/// mapped, and then every range is read into memory instead.
static STAND_IN: LazyLock<&'static [u8]> = LazyLock::new(|| {
    let len = MAX_SPLICE_LEN + MAX_SPLICES;
    // SAFETY: a fresh private anonymous mapping, not aliased by anything; it is
    // never unmapped, so the 'static slice over it stays valid.
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if at == libc::MAP_FAILED {
            tracing::warn!("no address space for fetch stand-ins; fetched data is copied");
            return &[];
        }
        std::slice::from_raw_parts(at as *const u8, len)
    }
});

/// The file ranges a response's stand-ins refer to, numbered by their position.
#[derive(Debug, Default)]
pub struct Splices {
    files: Vec<FileSlice>,
}

impl Splices {
    /// Whether no file range was put in the response.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The file range a stand-in put in a message refers to (None for bytes
    /// that are no stand-in).
    pub fn slice_for(&self, stand_in: &[u8]) -> Option<&FileSlice> {
        let k = (stand_in.as_ptr() as usize).checked_sub(STAND_IN.as_ptr() as usize)?;
        if stand_in.is_empty() || STAND_IN.is_empty() {
            return None;
        }
        self.files.get(k)
    }

    /// `Bytes` to put in a message where `slice`'s records belong. When too many or
    /// too large to splice, the records themselves, read from the file.
    pub fn stand_in(&mut self, slice: FileSlice) -> io::Result<Bytes> {
        let k = self.files.len();
        let backing: &'static [u8] = *STAND_IN;
        let Some(stand_in) = backing.get(k..k + slice.len) else {
            return slice.read();
        };
        if k >= MAX_SPLICES || slice.len == 0 {
            return slice.read();
        }
        self.files.push(slice);
        Ok(Bytes::from_static(stand_in))
    }
}

/// A response message whose record fields are stand-ins for the file ranges in
/// `splices` (a fetch response).
pub struct Spliced<T> {
    pub message: T,
    pub splices: Splices,
}

/// One piece of a response.
#[derive(Debug)]
pub enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

/// A whole response as sent: the size prefix, header and body, in pieces.
#[derive(Debug)]
pub struct ResponseFrame {
    chunks: Vec<Chunk>,
}

impl From<Bytes> for ResponseFrame {
    fn from(b: Bytes) -> Self {
        ResponseFrame {
            chunks: vec![Chunk::Bytes(b)],
        }
    }
}

impl ResponseFrame {
    /// Total bytes on the wire, size prefix included.
    pub fn len(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| match c {
                Chunk::Bytes(b) => b.len(),
                Chunk::File(f) => f.len,
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame as one buffer, file ranges read in (for tests and tools).
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        let mut out = BytesMut::with_capacity(self.len());
        for c in &self.chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(f) => out.extend_from_slice(&f.read()?),
            }
        }
        Ok(out.freeze())
    }

    /// Write the frame; file ranges go from the page cache to the socket.
    pub async fn write_to(&self, writer: &mut OwnedWriteHalf) -> io::Result<()> {
        for (i, c) in self.chunks.iter().enumerate() {
            let last = i + 1 == self.chunks.len();
            match c {
                Chunk::Bytes(b) if last => writer.write_all(b).await?,
                // More of the frame follows: the kernel holds these bytes back to
                // send them with the records instead of as a small segment of
                // their own (which the client's kernel would process, and often
                // wake the client for, separately).
                Chunk::Bytes(b) => send_more(writer, b).await?,
                Chunk::File(f) => send_file(writer, f).await?,
            }
        }
        Ok(())
    }
}

/// How much of a file range a buffered writer reads in at a time.
const READ_PIECE: usize = 256 * 1024;

impl ResponseFrame {
    /// Write the frame through a writer that must see every byte (TLS): file
    /// ranges are read in pieces and written like the rest. The caller flushes.
    pub async fn write_buffered<W: AsyncWrite + Unpin>(&self, writer: &mut W) -> io::Result<()> {
        let mut piece = Vec::new();
        for c in &self.chunks {
            match c {
                Chunk::Bytes(b) => writer.write_all(b).await?,
                Chunk::File(f) => {
                    let mut at = 0;
                    while at < f.len {
                        let n = (f.len - at).min(READ_PIECE);
                        piece.resize(n, 0);
                        // Page-cache reads of data just fetched: short, and not
                        // worth a blocking-pool hop per piece.
                        f.file.read_exact_at(&mut piece, f.position + at as u64)?;
                        writer.write_all(&piece).await?;
                        at += n;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `send(2)` `bytes` with MSG_MORE, waiting while the socket is full.
async fn send_more(writer: &mut OwnedWriteHalf, mut bytes: &[u8]) -> io::Result<()> {
    let stream = writer.as_ref();
    let socket = stream.as_raw_fd();
    while !bytes.is_empty() {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: `bytes` is a live slice of `bytes.len()` bytes and the socket
            // stays open for the call (the stream is borrowed).
            let n = unsafe {
                libc::send(
                    socket,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_MORE | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `sendfile(2)` the whole of `slice` to the socket, waiting while it is full.
async fn send_file(writer: &mut OwnedWriteHalf, slice: &FileSlice) -> io::Result<()> {
    let stream = writer.as_ref();
    let (socket, file) = (stream.as_raw_fd(), slice.file.as_raw_fd());
    let mut offset = slice.position as libc::off_t;
    let mut left = slice.len;
    while left > 0 {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors stay open for the call (the stream and the
            // Arc<File> are borrowed), and `offset` is a valid off_t to update.
            let n = unsafe { libc::sendfile(socket, file, &mut offset, left) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            // The file ended early: the frame's promised length cannot be kept, so
            // the connection must not go on.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than its slice",
                ))
            }
            Ok(n) => left -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What a response is encoded into: copies what the codec writes, except that a
/// stand-in becomes a cut and a file range.
pub struct SpliceBuf {
    /// Bytes since the last cut (the first ones hold the size prefix).
    current: BytesMut,
    /// The pieces before `current`.
    chunks: Vec<Chunk>,
    /// Bytes in `chunks`.
    before: usize,
    splices: Vec<FileSlice>,
}

impl SpliceBuf {
    pub fn new(splices: Splices, capacity: usize) -> SpliceBuf {
        SpliceBuf {
            current: BytesMut::with_capacity(capacity),
            chunks: Vec::new(),
            before: 0,
            splices: splices.files,
        }
    }

    /// The number of the stand-in at `src`, if it is one.
    fn stand_in_of(&self, src: &[u8]) -> Option<usize> {
        let k = (src.as_ptr() as usize).checked_sub(STAND_IN.as_ptr() as usize)?;
        if STAND_IN.is_empty() {
            return None;
        }
        (k < self.splices.len() && !src.is_empty()).then_some(k)
    }

    /// The finished frame, its first four bytes (written as a placeholder by the
    /// caller) set to the length of everything after them; None when that length
    /// does not fit the i32 a frame's size is.
    pub fn finish(mut self) -> Option<ResponseFrame> {
        let total = self.before + self.current.len();
        let size = i32::try_from(total.checked_sub(4)?).ok()?.to_be_bytes();
        match self.chunks.first_mut() {
            // The size prefix is in the first cut-off piece: rebuild that (small) piece.
            Some(Chunk::Bytes(first)) => {
                let mut head = BytesMut::from(&first[..]);
                head[..4].copy_from_slice(&size);
                *first = head.freeze();
            }
            _ => self.current[..4].copy_from_slice(&size),
        }
        if !self.current.is_empty() {
            self.chunks.push(Chunk::Bytes(self.current.freeze()));
        }
        Some(ResponseFrame { chunks: self.chunks })
    }
}

// SAFETY: every method forwards to the BytesMut that holds the bytes being written,
// so its guarantees (chunk_mut is writable, advance_mut after initialising) hold.
unsafe impl BufMut for SpliceBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut()`, which is
        // `current`'s.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        // A stand-in, or a prefix of one (the codec writes them whole), is the same
        // length of its file range.
        let Some(slice) = self
            .stand_in_of(src)
            .map(|k| &self.splices[k])
            .filter(|f| src.len() <= f.len)
        else {
            self.current.put_slice(src);
            return;
        };
        let slice = FileSlice {
            len: src.len(),
            ..slice.clone()
        };
        let cut = self.current.split().freeze();
        self.before += cut.len() + slice.len;
        self.chunks.push(Chunk::Bytes(cut));
        self.chunks.push(Chunk::File(slice));
    }
}

// Message encoders never seek (only record-batch encoders leave gaps), so the
// positions below are those of the whole frame and cuts are never revisited.
impl ByteBufMut for SpliceBuf {
    fn offset(&self) -> usize {
        self.before + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        let local = offset.checked_sub(self.before).expect("no seek before a cut");
        self.current.seek(local);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let local = r.start.checked_sub(self.before).expect("no range before a cut")..r.end - self.before;
        self.current.range(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, Arc<std::fs::File>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        let file = Arc::new(f.reopen().unwrap());
        (f, file)
    }

    #[test]
    fn stand_ins_become_file_ranges_and_the_frame_matches_a_plain_encoding() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use kafka_protocol::messages::FetchResponse;
        use kafka_protocol::protocol::Encodable;

        let (_keep, file) = file_with(b"0123456789abcdefghij");
        let ranges = [(2u64, 5usize), (10, 10)];
        let mut splices = Splices::default();
        let build = |records: Vec<Bytes>| {
            let mut topic = FetchableTopicResponse::default();
            for (i, r) in records.into_iter().enumerate() {
                let mut p = PartitionData::default();
                p.partition_index = i as i32;
                p.records = Some(r);
                topic.partitions.push(p);
            }
            let mut response = FetchResponse::default();
            response.responses.push(topic);
            response
        };
        let stand_ins: Vec<Bytes> = ranges
            .iter()
            .map(|&(position, len)| {
                splices
                    .stand_in(FileSlice {
                        file: file.clone(),
                        position,
                        len,
                    })
                    .unwrap()
            })
            .collect();
        for version in [4, 12, 16] {
            let mut spliced = SpliceBuf::new(
                Splices {
                    files: splices.files.clone(),
                },
                64,
            );
            spliced.put_i32(0);
            build(stand_ins.clone()).encode(&mut spliced, version).unwrap();
            let frame = spliced.finish().unwrap();
            assert_eq!(frame.chunks.iter().filter(|c| matches!(c, Chunk::File(_))).count(), 2);

            let mut plain = BytesMut::new();
            plain.put_i32(0);
            let real = vec![Bytes::from_static(b"23456"), Bytes::from_static(b"abcdefghij")];
            build(real).encode(&mut plain, version).unwrap();
            let size = (plain.len() - 4) as i32;
            plain[..4].copy_from_slice(&size.to_be_bytes());
            assert_eq!(frame.to_bytes().unwrap(), plain.freeze(), "v{version}");
            assert_eq!(frame.len(), frame.to_bytes().unwrap().len());
        }
    }

    #[test]
    fn without_stand_ins_a_frame_is_one_piece() {
        let mut b = SpliceBuf::new(Splices::default(), 16);
        b.put_i32(0);
        b.put_slice(b"hello");
        let frame = b.finish().unwrap();
        assert_eq!(frame.chunks.len(), 1);
        assert_eq!(&frame.to_bytes().unwrap()[..], b"\0\0\0\x05hello");
    }

    #[test]
    fn oversized_or_empty_ranges_are_read_not_spliced() {
        let (_keep, file) = file_with(b"abc");
        let mut splices = Splices::default();
        let empty = splices
            .stand_in(FileSlice {
                file: file.clone(),
                position: 0,
                len: 0,
            })
            .unwrap();
        assert!(empty.is_empty());
        let whole = splices
            .stand_in(FileSlice {
                file,
                position: 0,
                len: 3,
            })
            .unwrap();
        assert_eq!(splices.files.len(), 1);
        assert_eq!(whole.len(), 3);
    }
}

//! The one reader of big-endian fields and Kafka varints that strom's own
//! formats are parsed with: batch headers, records, `__consumer_offsets` keys
//! and values, and the producer-state snapshot. Every read is bounded by the
//! bytes left; running out is `None`, never a panic, and the caller names the
//! error (each format has its own).

/// A cursor over a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct ByteReader<'a> {
    rest: &'a [u8],
}

/// Most bytes a zigzag varint holding an i32 takes.
pub const VARINT_MAX: usize = 5;
/// Most bytes a zigzag varlong holding an i64 takes.
pub const VARLONG_MAX: usize = 10;

impl<'a> ByteReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteReader { rest: bytes }
    }

    /// What has not been read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(taken)
    }

    /// The next `N` bytes, as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (a, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*a)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }
    pub fn i8(&mut self) -> Option<i8> {
        self.array().map(i8::from_be_bytes)
    }
    pub fn i16(&mut self) -> Option<i16> {
        self.array().map(i16::from_be_bytes)
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }

    /// A zigzag varint of at most `max` bytes ([`VARINT_MAX`], [`VARLONG_MAX`]), as
    /// Kafka's records use. `None` if the bytes end first or it is longer.
    pub fn varint(&mut self, max: usize) -> Option<i64> {
        let mut value: u64 = 0;
        for i in 0..max {
            let b = self.u8()?;
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    }
}

/// The i32 at byte `at` of `b`, if `b` is long enough (a field at a known offset).
pub fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    ByteReader::new(b.get(at..)?).i32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields_and_stops_at_the_end() {
        let bytes = [0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 9];
        let mut r = ByteReader::new(&bytes);
        assert_eq!(r.i16(), Some(1));
        assert_eq!(r.i32(), Some(2));
        assert_eq!(r.i64(), Some(3));
        assert_eq!(r.i16(), None);
        assert_eq!(r.u8(), Some(9));
        assert!(r.is_empty());
        assert_eq!(i32_at(&bytes, 2), Some(2));
        assert_eq!(i32_at(&bytes, 12), None);
    }

    #[test]
    fn varints_are_zigzag_and_bounded() {
        // 1 → 2, −1 → 1, 300 → 600 = 0xd8 0x04
        let mut r = ByteReader::new(&[0x02, 0x01, 0xd8, 0x04]);
        assert_eq!(r.varint(VARINT_MAX), Some(1));
        assert_eq!(r.varint(VARINT_MAX), Some(-1));
        assert_eq!(r.varint(VARINT_MAX), Some(300));
        assert_eq!(ByteReader::new(&[0x80; 6]).varint(VARINT_MAX), None);
        assert_eq!(ByteReader::new(&[0x80]).varint(VARINT_MAX), None);
    }
}

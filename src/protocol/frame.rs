//! Kafka framing: every request and response is a 4-byte big-endian size followed
//! by that many bytes.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {max} (socket.request.max.bytes; sasl.server.max.receive.size before a SASL login)")]
    TooLarge { size: i64, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
}

/// Take one complete frame's payload off the front of `buf`.
///
/// `Ok(None)` means "not enough bytes yet": read more and call again. A size that is
/// negative or above `max` is an error after which the connection must be closed,
/// since the stream can no longer be trusted.
pub fn parse_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    if size as usize > max {
        return Err(FrameError::TooLarge { size: size as i64, max });
    }
    let total = 4 + size as usize;
    if buf.len() < total {
        // Make room for the rest of the frame in one allocation.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size as usize).freeze()))
}

/// Prefix an encoded response with its size.
pub fn write_frame(out: &mut BytesMut, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_frames_wait_for_more() {
        let mut b = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(parse_frame(&mut b, 100), Ok(None));
        b.extend_from_slice(&[5, 1, 2]);
        assert_eq!(parse_frame(&mut b, 100), Ok(None));
        b.extend_from_slice(&[3, 4, 5, 9]);
        assert_eq!(
            parse_frame(&mut b, 100).unwrap().unwrap(),
            Bytes::from_static(&[1, 2, 3, 4, 5])
        );
        assert_eq!(&b[..], &[9]);
    }

    #[test]
    fn pipelined_frames_come_out_in_order() {
        let mut b = BytesMut::new();
        write_frame(&mut b, b"one");
        write_frame(&mut b, b"two");
        assert_eq!(&parse_frame(&mut b, 10).unwrap().unwrap()[..], b"one");
        assert_eq!(&parse_frame(&mut b, 10).unwrap().unwrap()[..], b"two");
        assert_eq!(parse_frame(&mut b, 10), Ok(None));
    }

    #[test]
    fn oversized_and_negative_frames_are_rejected() {
        let mut b = BytesMut::from(&1000i32.to_be_bytes()[..]);
        assert!(matches!(
            parse_frame(&mut b, 999),
            Err(FrameError::TooLarge { size: 1000, .. })
        ));
        let mut b = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(parse_frame(&mut b, 999), Err(FrameError::Negative(-1)));
    }
}

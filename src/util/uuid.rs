//! Kafka's text form of UUIDs (topic ids, cluster ids).

/// Kafka's text form of a UUID (topic ids, cluster ids): URL-safe base64 of the 16
/// bytes, without padding (22 characters).
pub fn to_base64(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The inverse of [`to_base64`].
pub fn from_base64(s: &str) -> Option<uuid::Uuid> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim().trim_end_matches('=');
    if s.len() != 22 {
        return None;
    }
    let mut out = Vec::with_capacity(16);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    uuid::Uuid::from_slice(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_base64_round_trips() {
        for _ in 0..100 {
            let id = uuid::Uuid::new_v4();
            let s = to_base64(&id);
            assert_eq!(s.len(), 22);
            assert_eq!(from_base64(&s), Some(id));
        }
        assert_eq!(to_base64(&uuid::Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(from_base64("short"), None);
    }
}

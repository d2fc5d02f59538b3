//! The wall clock, read in one place. State machines take `now` as a parameter;
//! only the edges (handlers, background tasks) call this.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: Kafka's timestamp unit.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

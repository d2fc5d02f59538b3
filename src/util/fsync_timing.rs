//! How long fsyncs take, for the metrics (`strom_log_fsync_duration_seconds`):
//! one histogram for the process, fed by the log, which knows no broker.

use std::sync::LazyLock;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// 100 µs … ~3.3 s.
static FSYNC_SECONDS: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(exponential_buckets(0.000_1, 2.0, 16)));

/// Record one fsync round of a partition's files.
pub fn observed(seconds: f64) {
    FSYNC_SECONDS.observe(seconds);
}

/// The histogram (a handle sharing its counts), to register.
pub fn histogram() -> Histogram {
    FSYNC_SECONDS.clone()
}

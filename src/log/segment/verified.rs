//! What of a segment file is known to be intact.

/// The range of a segment file whose batches are known to be intact since this
/// broker opened it: what it appended itself (validated on produce), what recovery
/// validated, and what fetches have checked. Data at rest is checked (CRC, framing,
/// offsets) the first time a fetch would send it, so each byte is read once more
/// per broker start, and a damaged batch is reported instead of served.
#[derive(Debug, Default)]
pub struct Verified(std::sync::Mutex<std::ops::Range<u64>>);

impl Verified {
    pub(super) fn covers(&self, r: &std::ops::Range<u64>) -> bool {
        let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.start <= r.start && r.end <= v.end
    }

    /// Add a range of intact batches: merged when it touches the known range,
    /// taking its place when that is empty.
    pub fn add(&self, r: std::ops::Range<u64>) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.is_empty() {
            *v = r;
        } else if r.start <= v.end && v.start <= r.end {
            *v = v.start.min(r.start)..v.end.max(r.end);
        }
    }
}

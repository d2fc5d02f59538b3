#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

/// One directory per fuzzing process, in memory where /dev/shm exists.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        base.join(format!("strom-fuzz-segment-{}", std::process::id()))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| strom::fuzzing::segment(data, dir()));

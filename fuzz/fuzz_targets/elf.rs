//! `--binary` may name any file: its ELF headers are parsed by root to tell static, dynamic, Go
//! and scripts apart. Any bytes must give a classification or an error, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One file for the whole run, on tmpfs where there is one, rewritten for each input.
fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        PathBuf::from(format!("{base}/lowport-fuzz-elf-{}", std::process::id()))
    })
}

fuzz_target!(|bytes: &[u8]| {
    std::fs::write(file(), bytes).unwrap();
    let _ = lowport::facts::elf::classify(file());
});

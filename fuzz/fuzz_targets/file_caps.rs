//! `security.capability` values come from files anyone may have written under `--root`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let _ = lowport::facts::caps::FileCaps::parse(raw);
});

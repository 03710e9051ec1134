//! A run's journal is read back by `rollback` and `history` as root; another user may have
//! written it. Parsing and validating any bytes must end in records or a refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = lowport::apply::journal::parse(bytes);
});

//! A saved plan (`apply --plan FILE`) is input to a root process: loading any text must end in a
//! plan or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = lowport::plan::Plan::load(text, "fuzz");
});

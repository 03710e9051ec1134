//! fabio's properties file (`--profile fabio --config FILE`) is read by root to find the ports.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    for profile in lowport::profile::all() {
        let _ = lowport::profile::privileged_listeners(&profile, text);
    }
});

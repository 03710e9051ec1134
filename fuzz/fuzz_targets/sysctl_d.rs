//! sysctl.d files under `--root` are read to find who sets `ip_unprivileged_port_start` at boot.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = lowport::facts::sysctl_value(text, lowport::facts::UNPRIVILEGED_PORT_START);
});

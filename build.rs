//! Links GCC's unwinder statically (`libgcc_eh.a`, as `gcc -static-libgcc` does) instead of
//! loading `libgcc_s.so.1` at every start. lowport is started once per change, so start-up is
//! a large part of what it costs: loading that library and running its constructor (which
//! probes the CPU with `cpuid`, an exit to the hypervisor on a VM) took about 0.4 ms per start
//! here, and release builds abort on panic, so they do not even unwind. Rust's standard library
//! asks for `-lgcc_s` by name; a linker script of that name in a directory searched first
//! answers with the static archive. Where the compiler has no `libgcc_eh.a`, or the target is
//! not Linux with glibc, nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    // The C compiler that links for rustc (cc unless configured otherwise) knows where its own
    // runtime is; it prints the bare name back when it has none.
    let cc = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let archive = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !archive.is_absolute() || !archive.is_file() {
        return;
    }
    let dir = PathBuf::from(var("OUT_DIR")).join("unwind");
    std::fs::create_dir_all(&dir).expect("OUT_DIR");
    std::fs::write(
        dir.join("libgcc_s.a"),
        format!("INPUT(\"{}\")\n", archive.display()),
    )
    .expect("OUT_DIR");
    println!("cargo:rustc-link-search=native={}", dir.display());
}

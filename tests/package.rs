//! The Debian package, built with cargo-deb from the test build and installed with `dpkg -i` on
//! this (CI) machine: the program, its man pages and completions land where Debian looks for
//! them, the state directory is root-only, and the installed program runs. It is removed again
//! at the end; the state directory stays, as it does for operators (its journals undo applies).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::support::*;

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_deb_installs_the_program_its_pages_completions_and_a_private_state_dir() {
    if !is_root_or_skip(
        "the_deb_installs_the_program_its_pages_completions_and_a_private_state_dir",
    ) {
        return;
    }
    let deb_tool = Command::new("cargo").args(["deb", "--version"]).output();
    if !deb_tool.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED (cargo-deb not installed; .ci/run installs it)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    ok(Command::new(manifest.join("packaging/build-deb"))
        .args(["dev", "-o"])
        .arg(out.path())
        .env("LOWPORT_DEB_NO_BUILD", "1"));
    let deb = out
        .path()
        .join(format!("lowport_{}-1_amd64.deb", env!("CARGO_PKG_VERSION")));
    let contents = ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/bin/lowport",
        "./usr/share/man/man1/lowport.1.gz",
        "./usr/share/man/man1/lowport-verify.1.gz",
        "./usr/share/bash-completion/completions/lowport",
        "./usr/share/zsh/vendor-completions/_lowport",
        "./usr/share/fish/vendor_completions.d/lowport.fish",
        "./usr/share/doc/lowport/README.md",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }

    ok(Command::new("dpkg").arg("-i").arg(&deb));
    let version = ok(Command::new("/usr/bin/lowport").arg("--version"));
    assert_eq!(
        version.trim(),
        format!("lowport {}", env!("CARGO_PKG_VERSION"))
    );
    let detect = ok(Command::new("/usr/bin/lowport").arg("detect"));
    assert!(detect.contains("Host "), "{detect}");
    let state = std::fs::metadata("/var/lib/lowport").unwrap();
    assert_eq!((state.mode() & 0o7777, state.uid()), (0o700, 0));
    let page = ok(Command::new("man").args(["-w", "lowport-verify"]));
    assert_eq!(page.trim(), "/usr/share/man/man1/lowport-verify.1.gz");
    ok(Command::new("dpkg").args(["-r", "lowport"]));
    assert!(!Path::new("/usr/bin/lowport").exists());
}

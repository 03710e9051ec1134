//! What operators expect around the program: shell completions and manual pages generated from
//! the clap definitions, checked by the real shells and groff; examples in every `--help`.

use std::process::Command;

use crate::support::*;

fn stdout_of(args: &[&str]) -> String {
    Lowport::new().args(args).run().code(0).stdout
}

/// Runs `program args…` with `script` as its last argument; None when the program is missing.
fn run(program: &str, args: &[&str], script: &str) -> Option<std::process::Output> {
    match Command::new(program).args(args).arg(script).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED ({program} not installed; .ci/run installs it)");
            None
        }
        r => Some(r.unwrap()),
    }
}

#[test]
fn bash_completion_parses_and_completes_subcommands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lowport.bash");
    std::fs::write(&file, stdout_of(&["completions", "bash"])).unwrap();
    let f = file.to_str().unwrap();
    let check = run("bash", &["-n"], f).unwrap();
    assert!(check.status.success(), "{check:?}");
    // What bash does on Tab: the words so far, the index of the one completed, the function
    // `complete -F` registered.
    let script = format!(
        "source {f}; complete -p lowport; \
         COMP_WORDS=(lowport ver); COMP_CWORD=1; _lowport lowport ver lowport; \
         echo \"sub: ${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(lowport verify --al); COMP_CWORD=2; _lowport lowport --al verify; \
         echo \"opt: ${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(lowport completions ''); COMP_CWORD=2; _lowport lowport '' completions; \
         echo \"shells: ${{COMPREPLY[*]}}\""
    );
    let out = run("bash", &["-c"], &script).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("-F _lowport lowport"), "{text}");
    assert!(text.contains("sub: verify\n"), "{text}");
    assert!(text.contains("opt: --all\n"), "{text}");
    assert!(text.contains("bash elvish fish powershell zsh\n"), "{text}");
}

#[test]
fn zsh_and_fish_completions_are_valid_scripts() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, args) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"][..])] {
        let file = dir.path().join(shell);
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("verify"), "{script}");
        std::fs::write(&file, script).unwrap();
        if let Some(out) = run(shell, args, file.to_str().unwrap()) {
            assert!(out.status.success(), "{shell}: {out:?}");
        }
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let mut pages = vec![stdout_of(&["man"])];
    for sub in [
        "detect",
        "methods",
        "plan",
        "apply",
        "rollback",
        "history",
        "verify",
        "completions",
        "man",
    ] {
        let page = stdout_of(&["man", sub]);
        assert!(
            page.contains(&format!(".TH lowport-{sub} 1")),
            "{}",
            &page[..200.min(page.len())]
        );
        pages.push(page);
    }
    assert!(pages[0].contains("lowport\\-verify(1)") || pages[0].contains("verify"));
    let dir = tempfile::tempdir().unwrap();
    for (n, page) in pages.iter().enumerate() {
        let file = dir.path().join(format!("{n}.1"));
        std::fs::write(&file, page).unwrap();
        // -ww: every warning; -z: format, print nothing. man -l renders as a reader sees it.
        let groff = run("groff", &["-man", "-ww", "-z"], file.to_str().unwrap()).unwrap();
        let warnings = String::from_utf8_lossy(&groff.stderr);
        assert!(groff.status.success() && warnings.is_empty(), "{warnings}");
        let man = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(man.status.success() && man.stderr.is_empty(), "{man:?}");
        let shown = String::from_utf8_lossy(&man.stdout);
        assert!(
            shown.contains("SYNOPSIS") && shown.contains("OPTIONS"),
            "{shown}"
        );
    }
    Lowport::new()
        .args(["man", "__bind"])
        .run()
        .code(2)
        .stderr_has("no subcommand '__bind'");
}

#[test]
fn every_help_ends_with_examples_and_the_exit_codes_are_listed() {
    let verify = stdout_of(&["verify", "--help"]);
    assert!(
        verify.contains("Examples:\n  lowport verify --port 80 --user nobody"),
        "{verify}"
    );
    assert!(verify.contains("sudo lowport verify --all"), "{verify}");
    let apply = stdout_of(&["apply", "--help"]);
    assert!(
        apply.contains("sudo lowport apply --plan plan.json"),
        "{apply}"
    );
    let top = stdout_of(&["--help"]);
    assert!(top.contains("10  verify --all: drift found"), "{top}");
}

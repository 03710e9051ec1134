//! Plain-text rendering of engine values for the scripted front end. All of it is derived from
//! the same values `--json` prints, so text and JSON cannot disagree, and all of it passes
//! through [`clean`]: names, paths, file contents and diffs come from input.

use std::fmt::Write;

use crate::apply::{Event, Run};
use crate::facts::Facts;
use crate::facts::elf::ExecKind;
use crate::methods::Assessment;
use crate::plan::Plan;
use crate::runner::RunHealth;
use crate::verify::{Outcome, Report, Verdict};

/// Neutralises what a terminal would act on rather than show: every control character except the
/// newline and tab that structure the text (ESC, CR, backspace, DEL, the C1 range) and the
/// bidirectional overrides that reorder a line, each written as a visible escape (`\u{1b}`).
pub fn clean(s: &str) -> String {
    let acts = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.contains(acts) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if acts(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// What a non-Linux host's facts hold beyond the common ones.
fn platform(s: &mut String, p: &crate::facts::platform::Platform) {
    if let Some(i) = &p.interface {
        let _ = writeln!(s, "  Interface: {i} (default route)");
    }
    for (k, v) in &p.sysctls {
        let _ = writeln!(s, "  {k} = {}", v.as_deref().unwrap_or("absent"));
    }
    for (m, loaded) in &p.modules {
        let _ = writeln!(
            s,
            "  module {m}: {}",
            if *loaded { "loaded" } else { "not loaded" }
        );
    }
    for (file, text) in &p.files {
        let state = text.as_ref().map_or("absent".to_string(), |t| {
            format!("{} lines", t.lines().count())
        });
        let _ = writeln!(s, "  {}: {state}", file.display());
    }
}

pub fn facts(f: &Facts) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Host {} ({}), root {}",
        f.hostname,
        f.os.family,
        f.root.display()
    );
    let os = if f.os.pretty_name.is_empty() {
        "unknown (no os-release found)".to_string()
    } else {
        format!(
            "{} (id {}, version {})",
            f.os.pretty_name, f.os.id, f.os.version_id
        )
    };
    let _ = writeln!(s, "  OS:      {os}");
    let _ = writeln!(s, "  Kernel:  {}", f.os.kernel);
    let systemd = match (f.init.systemd, f.init.systemd_version) {
        (true, Some(v)) => format!("systemd {v}"),
        (true, None) => "systemd".to_string(),
        (false, _) => format!("{} (not systemd)", f.init.pid1),
    };
    let _ = writeln!(s, "  Init:    {systemd}");
    let _ = writeln!(s, "  Root:    {} (euid {})", yes_no(f.is_root), f.euid);
    let tools: Vec<String> = f
        .tools
        .iter()
        .map(|(t, p)| {
            if p.is_some() {
                t.clone()
            } else {
                format!("{t} (missing)")
            }
        })
        .collect();
    let _ = writeln!(s, "  Tools:   {}", tools.join(", "));
    if let Some(os) = &f.target_os {
        let _ = writeln!(
            s,
            "  ! a stock {os} install (a representative document), not a real host: plan with \
             --facts FILE from the host itself for exact changes"
        );
    }
    if f.os.family == "linux" {
        let start = f
            .unprivileged_port_start
            .map_or("absent (kernel < 4.11)".into(), |v| v.to_string());
        let _ = writeln!(s, "  net.ipv4.ip_unprivileged_port_start = {start}");
        if let Some((lo, hi)) = f.local_port_range {
            let _ = writeln!(s, "  net.ipv4.ip_local_port_range = {lo} {hi}");
        }
        for set in &f.unprivileged_port_start_files {
            let _ = writeln!(
                s,
                "    set at boot by {} = {}",
                set.file.display(),
                set.value
            );
        }
        if f.kernel_no_file_caps {
            let _ = writeln!(s, "  ! kernel booted with no_file_caps");
        }
        if !f.bounding_set_has_net_bind_service {
            let _ = writeln!(s, "  ! cap_net_bind_service is not in the bounding set");
        }
    } else {
        platform(&mut s, &f.platform);
    }
    if let Some(b) = &f.binary {
        let _ = writeln!(s, "Binary {} -> {}", b.requested, b.path.display());
        for l in &b.symlinks {
            let _ = writeln!(s, "  via symlink {}", l.display());
        }
        let kind = match &b.exec {
            ExecKind::Elf { static_linked, go } => format!(
                "ELF, {}{}",
                if *static_linked { "static" } else { "dynamic" },
                if *go { ", Go" } else { "" }
            ),
            ExecKind::Script { interpreter } => format!("script run by {interpreter}"),
            ExecKind::Other => "not an executable format lowport knows".into(),
        };
        let _ = writeln!(s, "  Kind:    {kind}");
        if let Some(i) = &b.interpreter {
            let _ = writeln!(s, "  ! it is the interpreter {i}");
        }
        let _ = writeln!(s, "  Owner:   {}:{} mode {:04o}", b.owner, b.group, b.mode);
        for e in &b.acl {
            let _ = writeln!(s, "  ACL:     {}", e.text());
        }
        if let Some(m) = &b.mount {
            let _ = writeln!(
                s,
                "  Mount:   {} ({}){}",
                m.mount_point.display(),
                m.fstype,
                if m.nosuid() { ", nosuid" } else { "" }
            );
        }
        let caps = b
            .capability
            .as_ref()
            .map_or("none".to_string(), |c| c.text.clone());
        let _ = writeln!(s, "  Caps:    {caps}");
        for w in &b.writable_by_non_root {
            let _ = writeln!(s, "  ! {w}");
        }
        for u in &b.units {
            let nnp = if u.no_new_privileges {
                " (NoNewPrivileges)"
            } else {
                ""
            };
            let _ = writeln!(s, "  Started by unit {}{nnp}", u.name);
        }
    }
    for p in &f.ports {
        let here: Vec<String> = f
            .listeners
            .iter()
            .filter(|l| l.port == *p)
            .map(|l| {
                let who = l
                    .command
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default();
                let pid = l.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
                format!("{} {}{who}{pid} uid {}", l.proto, l.address, l.uid)
            })
            .collect();
        let state = if here.is_empty() {
            "free".to_string()
        } else {
            here.join("; ")
        };
        let _ = writeln!(s, "Port {p}: {state}");
    }
    clean(&s)
}

pub fn methods(list: &[Assessment]) -> String {
    let mut s = String::new();
    let recommended = crate::methods::recommended(list);
    for (i, a) in list.iter().enumerate() {
        let avail = if a.available {
            "available"
        } else {
            "UNAVAILABLE"
        };
        let mark = if recommended == Some(i) {
            " (recommended here)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{:<8} risk {:<6} {avail:<11}  {}{mark}",
            a.id, a.risk, a.doc.title
        );
        let _ = writeln!(s, "  {}", a.doc.summary);
        let _ = writeln!(s, "  Scope: {}", a.doc.scope);
        let _ = writeln!(s, "  Persistence: {}", a.doc.persistence);
        let _ = writeln!(s, "  Undo: {}", a.doc.undo);
        for r in &a.doc.risks {
            let _ = writeln!(s, "  risk: {r}");
        }
        for b in &a.check.blockers {
            let _ = writeln!(s, "  unavailable: {b}");
        }
        for m in &a.check.input {
            let _ = writeln!(s, "  needs: {m}");
        }
        for w in &a.check.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        s.push('\n');
    }
    clean(&s)
}

pub fn plan(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Plan: {} ({}), risk {}", p.method, p.title, p.risk);
    let _ = writeln!(
        s,
        "Host {}, root {}, fingerprint {}",
        p.hostname,
        p.root.display(),
        p.fingerprint
    );
    if p.from_facts {
        let _ = writeln!(
            s,
            "Made from a facts document, for review and export: `lowport apply` refuses it"
        );
    }
    for w in &p.warnings {
        let _ = writeln!(s, "  ! {w}");
    }
    let pending = p.pending().count();
    let _ = writeln!(
        s,
        "Steps: {pending} to change, {} already in place",
        p.steps.len() - pending
    );
    for (i, st) in p.steps.iter().enumerate() {
        let mark = if st.in_place {
            " (already in place, skipped)"
        } else {
            ""
        };
        let _ = writeln!(s, "  {}. {}{mark}", i + 1, st.summary);
        for argv in &st.commands {
            let _ = writeln!(s, "     runs: {}", shell_words::join(argv));
        }
        let _ = writeln!(s, "     undo: {}", st.undo);
        for line in st.exposure.iter().flat_map(|e| e.lines()) {
            let _ = writeln!(s, "     security: {line}");
        }
        if let Some(d) = st.diff.as_deref().filter(|d| !d.is_empty() && !st.in_place) {
            for line in d.lines() {
                let _ = writeln!(s, "     {line}");
            }
        }
    }
    clean(&s)
}

pub fn event(e: &Event) -> String {
    clean(&match e {
        Event::Started { run } => format!("run {run} started"),
        Event::Skipped { step, summary } => {
            format!("[{step}] skipped, already in place: {summary}")
        }
        Event::Running { step, summary } => format!("[{step}] {summary} ..."),
        Event::Done { step } => format!("[{step}] done"),
        Event::Failed { step, error } => format!("[{step}] FAILED: {error}"),
        Event::RollingBack { reason } => format!("rolling back ({reason})"),
        Event::Undone { step, target } => format!("[{step}] undone ({target})"),
        Event::UndoFailed { step, error } => format!("[{step}] UNDO FAILED: {error}"),
        Event::Verified { report } => verify(report).trim_end().to_string(),
        Event::Note { text } => text.clone(),
    })
}

pub fn verify(r: &Report) -> String {
    let mut s = String::new();
    for c in &r.checks {
        let mark = match c.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Inconclusive => "??  ",
        };
        // Evidence (a service's log) spans lines: keep them under the detail column.
        let detail = c.detail.replace('\n', &format!("\n{:20}", ""));
        let _ = writeln!(s, "  {mark} {:<12} {detail}", c.name);
    }
    match r.status {
        Verdict::Verified => _ = writeln!(s, "verified: proved {}", r.proved),
        Verdict::NotVerified => _ = writeln!(s, "NOT verified: proved {}", r.proved),
        Verdict::NotStarted => _ = writeln!(s, "not verified yet: {}", r.proved),
    }
    clean(&s)
}

pub fn history(runs: &[Run]) -> String {
    if runs.is_empty() {
        return "No runs recorded.\n".into();
    }
    let mut s = String::new();
    // Columns as wide as their widest entry, so that every run lines up.
    let width = |f: &dyn Fn(&Run) -> usize| runs.iter().map(f).max().unwrap_or(0);
    let id = width(&|r| r.id.len());
    let method = width(&|r| r.plan.method.as_str().len());
    for r in runs {
        let (time, who) = r
            .started()
            .map(|(t, w)| (time(t), w.describe()))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<id$}  {time}  {:<method$} {:<20} by {who}",
            r.id,
            r.plan.method.as_str(),
            r.status().to_string()
        );
    }
    clean(&s)
}

/// `verify --all`: one block per run, drifted targets and failed checks first-class, and the fix.
pub fn health(runs: &[RunHealth]) -> String {
    if runs.is_empty() {
        return "No applied runs to check.\n".into();
    }
    let mut s = String::new();
    for r in runs {
        let verdict = if r.in_place { "in place" } else { "DRIFT" };
        let _ = writeln!(
            s,
            "{}  {:<18} root {}  {verdict}",
            r.id,
            r.method,
            r.root.display()
        );
        for c in &r.steps {
            let mark = if c.in_place { "ok  " } else { "LOST" };
            let _ = writeln!(s, "  {mark} step {}: {}", c.step, c.detail);
        }
        if let Some(v) = &r.verify {
            s.push_str(&verify(v));
        }
        if let Some(e) = &r.error {
            let _ = writeln!(s, "  error: {e}");
        }
        if let Some(fix) = &r.fix {
            let _ = writeln!(s, "  fix: {}", shell_words::join(fix));
        }
    }
    let drifted = runs.iter().filter(|r| !r.in_place).count();
    let _ = match drifted {
        0 => writeln!(s, "All {} run(s) in place.", runs.len()),
        n => writeln!(s, "{n} of {} run(s) drifted.", runs.len()),
    };
    s
}

/// A journal's time (seconds since 1970) in RFC 3339; one that no such date can show (a damaged
/// or forged record: year 10000 or later) as the number it is, never a panic.
pub fn time(secs: u64) -> String {
    const YEAR_10000: u64 = 253_402_300_800;
    let at = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs));
    match at {
        Some(t) if secs < YEAR_10000 => humantime::format_rfc3339_seconds(t).to_string(),
        _ => format!("{secs} s after 1970"),
    }
}

/// The command that applies a saved plan, naming lowport by the absolute path it runs from
/// (`exe`): sudo's secure_path often lacks where it was built or installed (`target/release`,
/// `~/.cargo/bin`), followed by the global `options` the plan was made with (`--root`,
/// `--state-dir`). Paths are quoted for a POSIX shell. For a caller that is not root
/// (`sudo`), the plan file is theirs, and apply refuses a plan anyone but root could have
/// written: the command hands it to root first, after the operator's review.
pub fn apply_plan_command(
    exe: &std::path::Path,
    options: &[String],
    plan: &std::path::Path,
    sha256: &str,
    sudo: bool,
) -> String {
    let exe = shell_words::join(
        std::iter::once(exe.to_string_lossy().as_ref()).chain(options.iter().map(String::as_str)),
    );
    let plan = shell_words::quote(&plan.to_string_lossy()).into_owned();
    let apply = format!("{exe} apply --plan {plan} --plan-sha256 {sha256}");
    if sudo {
        format!("sudo chown root: {plan} && sudo chmod go-w {plan} && sudo {apply}")
    } else {
        apply
    }
}

#[cfg(test)]
mod tests {
    use super::{apply_plan_command, clean, time};

    #[test]
    fn clean_shows_what_a_terminal_would_act_on() {
        assert_eq!(clean("a\tb\nc"), "a\tb\nc");
        assert_eq!(clean("x\u{1b}[2Jy"), "x\\u{1b}[2Jy");
        assert_eq!(clean("a\rb\u{7f}\u{9b}"), "a\\u{d}b\\u{7f}\\u{9b}");
        assert_eq!(clean("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(clean("fabio é ✓"), "fabio é ✓");
    }

    #[test]
    fn any_journal_time_is_shown() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(time(253_402_300_800), "253402300800 s after 1970");
        assert_eq!(time(u64::MAX), format!("{} s after 1970", u64::MAX));
    }

    #[test]
    fn the_apply_command_is_absolute_quoted_and_hands_the_plan_to_root() {
        let exe = std::path::Path::new("/home/op/my tools/lowport");
        let plan = std::path::Path::new("/home/op/plan.json");
        let sum = "ab".repeat(32);
        assert_eq!(
            apply_plan_command(exe, &[], plan, &sum, false),
            format!(
                "'/home/op/my tools/lowport' apply --plan /home/op/plan.json --plan-sha256 {sum}"
            )
        );
        let state = ["--state-dir".to_string(), "/srv/low port".to_string()];
        assert_eq!(
            apply_plan_command(exe, &state, plan, &sum, false),
            format!(
                "'/home/op/my tools/lowport' --state-dir '/srv/low port' apply --plan \
                 /home/op/plan.json --plan-sha256 {sum}"
            )
        );
        assert_eq!(
            apply_plan_command(exe, &[], plan, &sum, true),
            format!(
                "sudo chown root: /home/op/plan.json && sudo chmod go-w /home/op/plan.json && \
                 sudo '/home/op/my tools/lowport' apply --plan /home/op/plan.json --plan-sha256 \
                 {sum}"
            )
        );
    }
}

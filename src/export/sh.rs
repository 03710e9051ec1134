//! POSIX sh: the plan as one standalone script, `lowport.sh [check|apply|undo]`, made from the
//! plan's data alone (each step's action and the state it was planned against), for any OS
//! family whose plans use the primitive actions. `check` reads only; `apply` first proves that
//! every target is still as the plan found it (or already as planned) and changes nothing
//! otherwise, then keeps what each step replaces in a root-only state directory so that `undo`
//! puts it back exactly. Every value from the plan is a single-quoted word (`validate::sh_quoted`)
//! and every file's content a quoted here-document whose text is never expanded; the script uses
//! no `eval`, and runs the plan's commands as the argv vectors they are.

use super::{File, provenance};
use crate::error::{Error, Result};
use crate::plan::{Action, FileState, Plan, State, Step};
use crate::validate::{sh_heredoc_delimiter, sh_quoted};

fn bad(what: String) -> Error {
    Error::Invalid(format!(
        "the plan cannot be exported as a shell script: {what}"
    ))
}

use super::one_line;

fn q(what: &str, s: &str) -> Result<String> {
    sh_quoted(what, s).map_err(bad)
}

/// What differs between the OS families the script runs on.
struct Os {
    /// Prints the sha256 of standard input, the hash first.
    digest: &'static str,
    /// How a kernel setting is read and written.
    sysctl: Sysctl,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sysctl {
    /// Files under /proc/sys, as lowport's own executor writes them.
    ProcSys,
    /// `sysctl -n KEY`; `sysctl KEY=VALUE` (FreeBSD, OpenBSD) or with `-w` (NetBSD, macOS).
    Tool { w: bool },
    /// Solaris and illumos have no sysctl.
    None,
}

fn os(family: &str) -> Result<Os> {
    let (digest, sysctl) = match family {
        "linux" => ("sha256sum", Sysctl::ProcSys),
        "freebsd" | "openbsd" => ("sha256 -q", Sysctl::Tool { w: false }),
        "netbsd" => ("cksum -a SHA256 -q", Sysctl::Tool { w: true }),
        "macos" => ("shasum -a 256", Sysctl::Tool { w: true }),
        "illumos" | "solaris" => ("digest -a sha256", Sysctl::None),
        "windows" => {
            return Err(bad(
                "it is a Windows plan: export it with --format powershell".into(),
            ));
        }
        other => {
            return Err(bad(format!(
                "no shell script is known for OS family {other}"
            )));
        }
    };
    Ok(Os { digest, sysctl })
}

/// The program that prints the sha256 of standard input on `family` (shared with the facts
/// script, which records file hashes the same way).
pub(super) fn digest_command(family: &str) -> Option<&'static str> {
    os(family).ok().map(|o| o.digest)
}

/// Shell functions every script uses: messages, the sha256 of a file, an entry's mode, owner,
/// group and size from `ls -ld` (the POSIX long format; awk turns the mode string into octal,
/// with Solaris' `l` for a setgid bit without execute), and a link's target.
pub(super) const HELPERS: &str = r#"say() { printf '%s\n' "$*"; }
digest() {
	h=$(DIGEST < "$1") || return 1
	printf '%s\n' "${h%% *}"
}
# shellcheck disable=SC2012 # ls -l is the portable way to read an entry's mode and owner
meta() {
	ls "$1" -- "$2" | awk '{ s = $1; m = 0
		if (substr(s, 2, 1) == "r") m += 256
		if (substr(s, 3, 1) == "w") m += 128
		c = substr(s, 4, 1); if (c == "x" || c == "s") m += 64; if (c == "s" || c == "S") m += 2048
		if (substr(s, 5, 1) == "r") m += 32
		if (substr(s, 6, 1) == "w") m += 16
		c = substr(s, 7, 1); if (c == "x" || c == "s") m += 8; if (c == "s" || c == "S" || c == "l") m += 1024
		if (substr(s, 8, 1) == "r") m += 4
		if (substr(s, 9, 1) == "w") m += 2
		c = substr(s, 10, 1); if (c == "x" || c == "t") m += 1; if (c == "t" || c == "T") m += 512
		printf "%04o %s %s %s\n", m, $3, $4, $5 }'
}
linkto() {
	l=$(ls -ld -- "$1") || return 1
	printf '%s\n' "${l#*" $1 -> "}"
}
"#;

/// Functions that keep and restore a replaced entry (a file copy with its mode, owner and
/// times; a link; or the fact that nothing was there) and the directories a step creates.
const KEEP: &str = r#"keep() {
	if [ -L "$2" ]; then linkto "$2" > "$S/$1.link"
	elif [ -e "$2" ]; then cp -p "$2" "$S/$1.old"
	else : > "$S/$1.absent"; fi
}
kept() {
	if [ -f "$S/$1.link" ]; then [ -L "$2" ] && [ "$(linkto "$2")" = "$(cat "$S/$1.link")" ]
	elif [ -f "$S/$1.old" ]; then [ -f "$2" ] && [ ! -L "$2" ] && [ "$(digest "$2")" = "$(digest "$S/$1.old")" ]
	elif [ -f "$S/$1.absent" ]; then [ ! -e "$2" ] && [ ! -L "$2" ]
	else return 1; fi
}
restore() {
	rm -f "$2.lowport-tmp"
	if [ -f "$S/$1.link" ]; then
		ln -s "$(cat "$S/$1.link")" "$2.lowport-tmp"
		mv -f "$2.lowport-tmp" "$2"
	elif [ -f "$S/$1.old" ]; then
		cp -p "$S/$1.old" "$2.lowport-tmp"
		mv -f "$2.lowport-tmp" "$2"
	elif [ -f "$S/$1.absent" ]; then
		rm -f "$2"
	fi
}
mkdirs() {
	d=$2
	set --
	while [ -n "$d" ] && [ ! -d "$d" ]; do set -- "$d" "$@"; d=${d%/*}; done
	for d in "$@"; do mkdir -m 0755 "$d"; printf '%s\n' "$d" >> "$S/$STEP.dirs"; done
}
rmdirs() {
	[ -f "$S/$1.dirs" ] || return 0
	awk '{ l[NR] = $0 } END { for (i = NR; i > 0; i--) print l[i] }' "$S/$1.dirs" > "$S/$1.rdirs"
	while IFS= read -r d; do rmdir "$d" 2>/dev/null || :; done < "$S/$1.rdirs"
}
"#;

/// An owner and group as `chown` and `meta "$LS"` take them: under a root, the ids its own
/// account files give the names (the host's name service knows only the host's accounts); on
/// the host itself, the names.
const IDS: &str = r#"if [ -z "$R" ]; then LS=-ld; else LS=-ldn; fi
ids() {
	U=$1; G=$2
	[ -n "$R" ] || return 0
	U=$(awk -F: -v n="$1" '$1 == n { print $3; exit }' "$R/etc/passwd"); U=${U:-$1}
	G=$(awk -F: -v n="$2" '$1 == n { print $3; exit }' "$R/etc/group"); G=${G:-$2}
}
"#;

/// The file capability of an entry as getcap prints it (its last word), empty without one.
const CAPS: &str = r#"capof() {
	c=$(getcap "$1") || return 1
	[ -n "$c" ] || return 0
	printf '%s\n' "${c##* }"
}
"#;

/// Every step of the plan, in the script's words.
struct Steps {
    /// The functions of each step: `state_N`, `apply_N`, `undo_state_N`, `undo_N`.
    funcs: String,
    /// Programs the steps need besides the POSIX utilities.
    needs: Vec<&'static str>,
    keep: bool,
    caps: bool,
    ids: bool,
}

/// An in-root path as a shell word under the root variable `$R`.
fn at(p: &std::path::Path) -> Result<String> {
    Ok(format!("\"$R\"{}", q("path", &p.display().to_string())?))
}

/// The mode, uid, gid (and size, when `size`) a state recorded, as `meta -ldn` prints them.
fn recorded_meta(f: &FileState, size: bool) -> Option<String> {
    let mut s = format!("{:04o} {} {}", f.mode?, f.uid?, f.gid?);
    if size {
        let bytes = f.identity.as_deref()?.split(':').nth(2)?;
        s.push(' ');
        s.push_str(bytes);
    }
    Some(s)
}

/// `dev:ino:size:mtime-seconds` from an identity (`dev:ino:size:mtime-ns`), as GNU stat prints
/// it: what Linux can check of a binary the plan holds no hash of.
fn identity_seconds(identity: &str) -> Option<String> {
    let mut parts = identity.split(':');
    let (dev, ino, size) = (parts.next()?, parts.next()?, parts.next()?);
    let ns: i128 = parts.next()?.parse().ok()?;
    Some(format!(
        "{dev}:{ino}:{size}:{}",
        ns.div_euclid(1_000_000_000)
    ))
}

/// The state test of a file or link the plan holds no state of: to be made only where nothing is.
fn unseen(shown: &str) -> Result<String> {
    Ok(format!(
        "if [ -e \"$p\" ] || [ -L \"$p\" ]; then ST={}; else ST=unknown; fi",
        q(
            "message",
            &format!(
                "drift: {shown} exists, and the plan did not know it (plan with --facts from \
                 this host to replace it)"
            )
        )?
    ))
}

/// The text of a step's functions.
fn step(n: usize, st: &Step, plan: &Plan, os: &Os, out: &mut Steps) -> Result<()> {
    let drift = |msg: &str| -> Result<String> { q("message", &format!("drift: {msg}")) };
    let f = &mut out.funcs;
    match &st.action {
        Action::WriteFile {
            path,
            content,
            mode,
            owner,
            group,
        } => {
            out.keep = true;
            out.ids = true;
            let p = at(path)?;
            let shown = path.display();
            let sha = crate::plan::action::sha256(content.as_bytes());
            let (owner_q, group_q) = (q("owner", owner)?, q("group", group)?);
            // Up to the last newline in a here-document, the rest (one line) with printf.
            let (body, tail) = match content.rfind('\n') {
                Some(i) => content.split_at(i + 1),
                None => ("", content.as_str()),
            };
            let mut write = String::new();
            if !body.is_empty() {
                let delim = sh_heredoc_delimiter("file content", body).map_err(bad)?;
                write.push_str(&format!("\tcat >> \"$t\" <<'{delim}'\n{body}{delim}\n"));
            }
            if !tail.is_empty() {
                write.push_str(&format!(
                    "\tprintf '%s' {} >> \"$t\"\n",
                    q("file content", tail)?
                ));
            }
            let before = match &st.before {
                State::File(b) if !b.exists => format!(
                    "if [ -e \"$p\" ] || [ -L \"$p\" ]; then ST={}; else ST=before; fi",
                    drift(&format!("{shown} exists; the plan found none"))?
                ),
                State::File(FileState { link: Some(t), .. }) => format!(
                    "if [ -L \"$p\" ] && [ \"$(linkto \"$p\")\" = {} ]; then ST=before; else ST={}; fi",
                    q("path", &t.display().to_string())?,
                    drift(&format!(
                        "{shown} is no longer the link to {} the plan found",
                        t.display()
                    ))?
                ),
                State::File(b) => {
                    let mut tests = vec!["[ -f \"$p\" ]".to_string(), "[ ! -L \"$p\" ]".into()];
                    if let Some(h) = &b.sha256 {
                        tests.push(format!("[ \"$(digest \"$p\")\" = {} ]", q("hash", h)?));
                    }
                    if let Some(m) = recorded_meta(b, false) {
                        tests.push(format!(
                            "[ \"$(meta -ldn \"$p\" | cut -d' ' -f1-3)\" = {} ]",
                            q("mode", &m)?
                        ));
                    }
                    format!(
                        "if {}; then ST=before; else ST={}; fi",
                        tests.join(" && "),
                        drift(&format!(
                            "{shown} changed since the plan (its content, mode or owner)"
                        ))?
                    )
                }
                // A file the plan did not see (planned from a document without it) is never
                // overwritten: its text may hold what the planned one lacks.
                _ => unseen(&shown.to_string())?,
            };
            f.push_str(&format!(
                r#"state_{n}() {{
	p={p}
	ids {owner_q} {group_q}
	if [ -f "$p" ] && [ ! -L "$p" ] && [ "$(digest "$p")" = '{sha}' ] && [ "$(meta "$LS" "$p" | cut -d' ' -f1-3)" = "{mode:04o} $U $G" ]; then ST=in_place; return 0; fi
	{before}
}}
apply_{n}() {{
	p={p}
	[ ! -d "$p" ] || fail "$p is a directory"
	keep {n} "$p"
	mkdirs {n} "${{p%/*}}"
	t="$p.lowport-tmp"
	rm -f "$t"
	set -C
	: > "$t"
	set +C
{write}	[ "$(digest "$t")" = '{sha}' ] || fail "the file written for $p is not the planned text"
	ids {owner_q} {group_q}
	chown "$U:$G" "$t"
	chmod {mode:04o} "$t"
	mv -f "$t" "$p"
}}
undo_state_{n}() {{
	p={p}
	state_{n}
	if [ "$ST" = in_place ]; then ST=applied
	elif kept {n} "$p"; then ST=restored
	else ST={changed}; fi
}}
undo_{n}() {{
	p={p}
	restore {n} "$p"
	rmdirs {n}
}}
"#,
                changed = drift(&format!("{shown} changed since apply"))?,
            ));
        }
        Action::SetOwnerMode {
            path,
            owner,
            group,
            mode,
        } => {
            let p = at(path)?;
            let shown = path.display();
            let (owner_q, group_q) = (q("owner", owner)?, q("group", group)?);
            let linux = plan.family == "linux";
            out.caps |= linux;
            out.ids = true;
            let before = match &st.before {
                State::File(b) => {
                    let mut tests = vec!["[ -e \"$p\" ]".to_string()];
                    if let Some(m) = recorded_meta(b, true) {
                        tests.push(format!("[ \"$(meta -ldn \"$p\")\" = {} ]", q("mode", &m)?));
                    }
                    format!(
                        "if {}; then ST=before; else ST={}; fi",
                        tests.join(" && "),
                        drift(&format!(
                            "{shown}'s owner, mode or size changed since the plan"
                        ))?
                    )
                }
                _ => "ST=unknown".into(),
            };
            // chown clears a file capability (Linux): the one the file had is put back after.
            let (keep_cap, put_cap) = if linux {
                (
                    format!("\tcapof \"$p\" > \"$S/{n}.cap\"\n"),
                    format!(
                        "\tif [ -s \"$S/{n}.cap\" ]; then setcap \"$(cat \"$S/{n}.cap\")\" \"$p\"; fi\n"
                    ),
                )
            } else {
                (String::new(), String::new())
            };
            f.push_str(&format!(
                r#"state_{n}() {{
	p={p}
	ids {owner_q} {group_q}
	if [ -e "$p" ] && [ "$(meta "$LS" "$p" | cut -d' ' -f1-3)" = "{mode:04o} $U $G" ]; then ST=in_place; return 0; fi
	{before}
}}
apply_{n}() {{
	p={p}
	meta -ldn "$p" | cut -d' ' -f1-3 > "$S/{n}.meta"
{keep_cap}	ids {owner_q} {group_q}
	chown "$U:$G" "$p"
	chmod {mode:04o} "$p"
}}
undo_state_{n}() {{
	p={p}
	state_{n}
	if [ "$ST" = in_place ]; then ST=applied
	elif [ "$(meta -ldn "$p" | cut -d' ' -f1-3)" = "$(cat "$S/{n}.meta")" ]; then ST=restored
	else ST={changed}; fi
}}
undo_{n}() {{
	p={p}
	[ -f "$S/{n}.meta" ] || return 0
	read -r m u g < "$S/{n}.meta"
	chown "$u:$g" "$p"
	chmod "$m" "$p"
{put_cap}}}
"#,
                changed = drift(&format!("{shown}'s owner or mode changed since apply"))?,
            ));
        }
        Action::SetFileCap { path, caps } => {
            if plan.family != "linux" {
                return Err(bad(format!(
                    "step {n} sets a Linux file capability on a {} host",
                    plan.family
                )));
            }
            out.caps = true;
            out.needs.extend(["getcap", "setcap"]);
            let p = at(path)?;
            let shown = path.display();
            // getcap prints `NAME=ep` (libcap 2.4x and later) or `NAME+ep` (older).
            let forms = [caps.replace("=+", "="), caps.replace("=+", "+")];
            let held = format!(
                "{{ c=$(capof \"$p\"); [ \"$c\" = {} ] || [ \"$c\" = {} ]; }}",
                q("capability", &forms[0])?,
                q("capability", &forms[1])?
            );
            let before = match &st.before {
                State::File(b) => {
                    let mut tests = vec!["[ -f \"$p\" ]".to_string()];
                    let had = b.capability().map(|c| c.text).unwrap_or_default();
                    let old = had.replacen('=', "+", 1);
                    tests.push(format!(
                        "{{ c=$(capof \"$p\"); [ \"$c\" = {} ] || [ \"$c\" = {} ]; }}",
                        q("capability", &had)?,
                        q("capability", &old)?
                    ));
                    // The binary is recognised as the executor does: device, inode, size and
                    // modification time (whole seconds), which chown and setcap leave alone.
                    match b.identity.as_deref().and_then(identity_seconds) {
                        Some(id) => tests.push(format!(
                            "[ \"$(stat -c '%d:%i:%s:%Y' \"$p\")\" = {} ]",
                            q("identity", &id)?
                        )),
                        None => {
                            if let Some(m) = recorded_meta(b, true) {
                                let size = m.rsplit(' ').next().unwrap_or_default();
                                tests.push(format!(
                                    "[ \"$(meta -ldn \"$p\" | cut -d' ' -f4)\" = {} ]",
                                    q("size", size)?
                                ));
                            }
                        }
                    }
                    format!(
                        "if {}; then ST=before; else ST={}; fi",
                        tests.join(" && "),
                        drift(&format!(
                            "{shown} is not the file the plan found (replaced, or its \
                             capability changed)"
                        ))?
                    )
                }
                _ => "ST=unknown".into(),
            };
            f.push_str(&format!(
                r#"state_{n}() {{
	p={p}
	if [ -f "$p" ] && {held}; then ST=in_place; return 0; fi
	{before}
}}
apply_{n}() {{
	p={p}
	capof "$p" > "$S/{n}.cap"
	setcap {caps_q} "$p"
}}
undo_state_{n}() {{
	p={p}
	state_{n}
	if [ "$ST" = in_place ]; then ST=applied
	elif [ "$(capof "$p")" = "$(cat "$S/{n}.cap")" ]; then ST=restored
	else ST={changed}; fi
}}
undo_{n}() {{
	p={p}
	[ -f "$S/{n}.cap" ] || return 0
	if [ -s "$S/{n}.cap" ]; then setcap "$(cat "$S/{n}.cap")" "$p"; else setcap -r "$p"; fi
}}
"#,
                caps_q = q("capability", caps)?,
                changed = drift(&format!("{shown}'s capability changed since apply"))?,
            ));
        }
        Action::SetSysctl { key, value } => {
            let (read, write) = match os.sysctl {
                Sysctl::ProcSys => {
                    let file = q(
                        "key",
                        &crate::sysctl::proc_sys_path(key).display().to_string(),
                    )?;
                    (
                        format!("tr -s '\\t ' '  ' < {file}"),
                        format!("printf '%s\\n' \"$1\" > {file}"),
                    )
                }
                Sysctl::Tool { w } => {
                    out.needs.push("sysctl");
                    let k = q("key", key)?;
                    let w = if w { "-w " } else { "" };
                    (
                        format!("sysctl -n {k}"),
                        format!("sysctl {w}{k}=\"$1\" > /dev/null"),
                    )
                }
                Sysctl::None => {
                    return Err(bad(format!(
                        "step {n} sets the kernel setting {key}, and {} has no sysctl",
                        plan.family
                    )));
                }
            };
            let v = q("value", value)?;
            let before = match &st.before {
                State::Sysctl { value: Some(was) } => {
                    let was = was.split_whitespace().collect::<Vec<_>>().join(" ");
                    format!(
                        "if [ \"$(read_{n})\" = {} ]; then ST=before; else ST={}; fi",
                        q("value", &was)?,
                        drift(&format!("{key} is no longer {was}, as the plan found it"))?
                    )
                }
                _ => "ST=unknown".into(),
            };
            f.push_str(&format!(
                r#"read_{n}() {{ {read}; }}
write_{n}() {{ {write}; }}
state_{n}() {{
	if [ "$(read_{n})" = {v} ]; then ST=in_place; return 0; fi
	{before}
}}
apply_{n}() {{
	read_{n} > "$S/{n}.sysctl"
	write_{n} {v}
}}
undo_state_{n}() {{
	state_{n}
	if [ "$ST" = in_place ]; then ST=applied
	elif [ "$(read_{n})" = "$(cat "$S/{n}.sysctl")" ]; then ST=restored
	else ST={changed}; fi
}}
undo_{n}() {{
	[ -f "$S/{n}.sysctl" ] || return 0
	write_{n} "$(cat "$S/{n}.sysctl")"
}}
"#,
                changed = drift(&format!("{key} changed since apply"))?,
            ));
        }
        Action::Symlink { path, target } => {
            out.keep = true;
            let p = at(path)?;
            let shown = path.display();
            let t = q("path", &target.display().to_string())?;
            let before = match &st.before {
                State::Link { target: None } => format!(
                    "if [ -e \"$p\" ] || [ -L \"$p\" ]; then ST={}; else ST=before; fi",
                    drift(&format!("{shown} exists; the plan found none"))?
                ),
                State::Link { target: Some(was) } => format!(
                    "if [ -L \"$p\" ] && [ \"$(linkto \"$p\")\" = {} ]; then ST=before; else ST={}; fi",
                    q("path", &was.display().to_string())?,
                    drift(&format!("{shown} changed since the plan"))?
                ),
                _ => unseen(&shown.to_string())?,
            };
            f.push_str(&format!(
                r#"state_{n}() {{
	p={p}
	if [ -L "$p" ] && [ "$(linkto "$p")" = {t} ]; then ST=in_place; return 0; fi
	{before}
}}
apply_{n}() {{
	p={p}
	[ ! -d "$p" ] || [ -L "$p" ] || fail "$p is a directory"
	keep {n} "$p"
	mkdirs {n} "${{p%/*}}"
	rm -f "$p.lowport-tmp"
	ln -s {t} "$p.lowport-tmp"
	mv -f "$p.lowport-tmp" "$p"
}}
undo_state_{n}() {{
	p={p}
	state_{n}
	if [ "$ST" = in_place ]; then ST=applied
	elif kept {n} "$p"; then ST=restored
	else ST={changed}; fi
}}
undo_{n}() {{
	p={p}
	restore {n} "$p"
	rmdirs {n}
}}
"#,
                changed = drift(&format!("{shown} changed since apply"))?,
            ));
        }
        Action::CreateUser { name } => create_user(n, name, st, plan, f)?,
        Action::RunCommands {
            what,
            run,
            undo,
            check,
        } => {
            let argv = |a: &[String]| -> Result<String> {
                a.iter()
                    .map(|w| q("command word", w))
                    .collect::<Result<Vec<_>>>()
                    .map(|w| w.join(" "))
            };
            let lines = |list: &[Vec<String>]| -> Result<String> {
                let mut s = String::new();
                for a in list {
                    s.push_str(&format!("\t{}\n", argv(a)?));
                }
                if s.is_empty() {
                    s.push_str("\t:\n");
                }
                Ok(s)
            };
            // With a check the host says whether the effect is in place; without one, whether
            // this script's apply ran the step (its mark in the state directory).
            let (state, undo_state) = match check {
                Some(c) => {
                    let c = argv(c)?;
                    (
                        format!(
                            "if {{ {c}; }} > /dev/null 2>&1; then ST=in_place; else ST=before; fi"
                        ),
                        format!(
                            "if {{ {c}; }} > /dev/null 2>&1; then ST=applied; else ST=restored; fi"
                        ),
                    )
                }
                None => (
                    format!("if [ -f \"$S/{n}.done\" ]; then ST=in_place; else ST=before; fi"),
                    "ST=applied".to_string(),
                ),
            };
            f.push_str(&format!(
                "# {}\nstate_{n}() {{\n\t{state}\n}}\napply_{n}() {{\n{}}}\nundo_state_{n}() {{\n\t{undo_state}\n}}\nundo_{n}() {{\n{}}}\n",
                one_line(what),
                lines(run)?,
                lines(undo)?,
            ));
        }
    }
    Ok(())
}

/// The account files whose lines `useradd` adds, and the copies of them it leaves.
const ENTRY_FILES: [&str; 4] = ["passwd", "group", "shadow", "gshadow"];

/// A new system user: `useradd` exactly as the plan runs it; undo removes the lines it added to
/// the account files, as lowport's rollback does.
fn create_user(n: usize, name: &str, st: &Step, plan: &Plan, f: &mut String) -> Result<()> {
    // The argv is the plan's, checked to be lowport's useradd call for this user (a saved plan
    // is input): only the program's path comes from the plan.
    let prog = st
        .commands
        .first()
        .and_then(|a| a.first())
        .filter(|p| p.as_str() == "useradd" || p.ends_with("/useradd"))
        .ok_or_else(|| {
            bad(format!(
                "step {n} creates a user without its useradd command"
            ))
        })?;
    let root = crate::root::Root::new(plan.root.clone());
    let argv = crate::plan::action::useradd(&root, name, &|_| prog.clone());
    if st.commands != [argv.clone()] {
        return Err(bad(format!(
            "step {n}'s command is not lowport's useradd for {name}"
        )));
    }
    let argv = argv
        .iter()
        .map(|w| q("command word", w))
        .collect::<Result<Vec<_>>>()?
        .join(" ");
    let u = q("user", name)?;
    let before = match &st.before {
        State::Files {
            user_exists: false, ..
        } => "ST=before".to_string(),
        _ => "ST=unknown".to_string(),
    };
    let files = ENTRY_FILES.join(" ");
    f.push_str(&format!(
        r#"# The user {name}: undo removes exactly the lines useradd added to {files} (and puts
# back the `-` copies useradd made of them, while they are still those copies), so later accounts
# and edits stay. It does not remove what else useradd may touch (a mail spool, lastlog or
# faillog entries, an nscd cache), and it edits the files without shadow-utils' lock
# (/etc/.pwd.lock): run it when no other account change is going on. userdel is not used: it
# would remove more than useradd added.
user_{n}() {{
	if [ -z "$R" ]; then id -u {u} > /dev/null 2>&1
	else awk -F: -v n={u} '$1 == n {{ f = 1 }} END {{ exit !f }}' "$R/etc/passwd" 2>/dev/null; fi
}}
state_{n}() {{
	if user_{n}; then ST=in_place; return 0; fi
	{before}
}}
apply_{n}() {{
	for f in {files}; do
		for c in "$f" "$f-"; do
			if [ -f "$R/etc/$c" ]; then cp -p "$R/etc/$c" "$S/{n}.$c.old"; else : > "$S/{n}.$c.absent"; fi
		done
	done
	{argv}
	for f in {files}; do
		[ -f "$R/etc/$f" ] || continue
		awk -F: -v n={u} '$1 == n' "$R/etc/$f" > "$S/{n}.$f.added"
		if [ -f "$R/etc/$f-" ]; then digest "$R/etc/$f-" > "$S/{n}.$f-.new"; fi
	done
}}
undo_state_{n}() {{
	if ! user_{n}; then ST=restored; return 0; fi
	ST=applied
	for f in {files}; do
		[ -f "$S/{n}.$f.added" ] || continue
		awk -F: -v n={u} '$1 == n' "$R/etc/$f" > "$S/{n}.$f.now"
		if ! cmp -s "$S/{n}.$f.now" "$S/{n}.$f.added"; then
			ST={changed}
		fi
	done
}}
undo_{n}() {{
	for f in {files}; do
		e="$R/etc/$f"
		if [ -f "$S/{n}.$f.added" ] && [ -f "$e" ]; then
			rm -f "$e.lowport-tmp"
			cp -p "$e" "$e.lowport-tmp"
			awk -F: -v n={u} '$1 != n' "$e" > "$e.lowport-tmp"
			mv -f "$e.lowport-tmp" "$e"
		fi
		c="$e-"
		if [ -f "$S/{n}.$f-.new" ] && [ -f "$c" ] && [ "$(digest "$c")" = "$(cat "$S/{n}.$f-.new")" ]; then
			if [ -f "$S/{n}.$f-.old" ]; then
				rm -f "$c.lowport-tmp"
				cp -p "$S/{n}.$f-.old" "$c.lowport-tmp"
				mv -f "$c.lowport-tmp" "$c"
			elif [ -f "$S/{n}.$f-.absent" ]; then
				rm -f "$c"
			fi
		fi
	done
}}
"#,
        changed = q(
            "message",
            &format!("drift: the account entries of {name} changed since apply (a password or a member set)")
        )?,
    ));
    Ok(())
}

pub fn export(plan: &Plan) -> Result<Vec<File>> {
    let os = os(&plan.family)?;
    let root = plan.root.display().to_string();
    crate::validate::absolute_path(&root).map_err(bad)?;
    let root = if root == "/" {
        String::new()
    } else {
        root.trim_end_matches('/').to_string()
    };
    let fp = plan
        .fingerprint
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| bad(format!("'{}' is not a plan fingerprint", plan.fingerprint)))?;
    let mut steps = Steps {
        funcs: String::new(),
        needs: vec![os.digest.split(' ').next().unwrap_or_default()],
        keep: false,
        caps: false,
        ids: false,
    };
    for (i, st) in plan.steps.iter().enumerate() {
        step(i + 1, st, plan, &os, &mut steps)?;
    }
    let count = plan.steps.len();
    let numbers: Vec<String> = (1..=count).map(|n| n.to_string()).collect();
    let dispatch = |name: &str| {
        let mut s = format!("{name}() {{\n\tcase $1 in\n");
        for n in &numbers {
            s.push_str(&format!("\t{n}) {name}_{n} ;;\n"));
        }
        s.push_str("\tesac\n}\n");
        s
    };
    let mut summaries = String::from("summary() {\n\tcase $1 in\n");
    for (n, st) in numbers.iter().zip(&plan.steps) {
        let text = one_line(&st.summary);
        summaries.push_str(&format!("\t{n}) say {} ;;\n", q("summary", &text)?));
    }
    summaries.push_str("\tesac\n}\n");

    let mut needs = steps.needs.clone();
    needs.sort_unstable();
    needs.dedup();
    let netns = match (plan.family.as_str(), plan.netns) {
        ("linux", Some(ino)) => format!(
            "\t# The plan changes per-network-namespace state (namespace {ino}): nowhere else.\n\
             \t# shellcheck disable=SC2012 # the inode of a namespace file, not a file name\n\
             \tns=$(ls -iL /proc/self/ns/net | awk '{{ print $1 }}')\n\
             \t[ \"$ns\" = {ino} ] || refuse \"this shell runs in network namespace $ns; the plan \
             changes namespace {ino}\"\n"
        ),
        _ => String::new(),
    };
    let list = super::ports(plan)
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let who = match (&plan.verify.user, &plan.verify.service, &plan.verify.binary) {
        (Some(u), _, _) => format!(" by user {u}"),
        (None, Some(s), _) => format!(" by service {s}"),
        (None, None, Some(b)) => format!(" with {b}"),
        _ => String::new(),
    };
    let proof = q(
        "message",
        &format!(
            "Then prove that port(s) {list} can be bound{who}: `lowport verify` does, where \
             lowport is installed."
        ),
    )?;
    // Every header line stays a comment, whatever a facts document put in the host name.
    // SC2016: the plan's values are single-quoted so that nothing in them expands.
    let mut text = String::from("#!/bin/sh\n# shellcheck disable=SC2016\n");
    for l in provenance(plan, "").lines() {
        text.push_str(&format!("# {}\n", one_line(l)));
    }
    text.push_str(&format!(
        "# {title}\n#\n{usage}#\n# Exit codes: 0 done (or, for check, every step in place); 1 check: a step is not in place;\n\
         # 2 usage; 3 refused, nothing changed (the host changed since the plan, not root, another run);\n\
         # 4 a step failed, and what this run had changed was undone.\n\
         # What apply replaces is kept in $LOWPORT_STATE (default /var/lib/lowport-export/<fingerprint>\n\
         # under the plan's root), readable by root only; undo removes it.\n",
        title = one_line(&plan.title),
        usage = USAGE.lines().map(|l| format!("# {l}\n")).collect::<String>(),
    ));
    text.push_str(&format!(
        r#"set -eu
umask 077
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
LC_ALL=C
export LC_ALL
# The plan's root: every path is under it ('' when the plan is for / itself).
R={root}
FP={fp}
S=${{LOWPORT_STATE:-}}
if [ -z "$S" ]; then S=$R/var/lib/lowport-export/$FP; OWN_PARENT=1; else OWN_PARENT=; fi
FORCE=${{LOWPORT_FORCE:-0}}
STEPS='{forward}'
PHASE=
RAN=
LOCKED=
STEP=

usage() {{
	cat <<'LOWPORT_USAGE'
{usage}LOWPORT_USAGE
}}
refuse() {{ printf '%s: refused, nothing was changed: %s\n' "$0" "$*" >&2; exit 3; }}
fail() {{ printf '%s: %s\n' "$0" "$*" >&2; exit 4; }}
"#,
        root = q("root", &root)?,
        forward = numbers.join(" "),
        usage = USAGE,
    ));
    text.push_str(&HELPERS.replace("DIGEST", os.digest));
    if steps.keep {
        text.push_str(KEEP);
    }
    if steps.caps {
        text.push_str(CAPS);
    }
    if steps.ids {
        text.push_str(IDS);
    }
    text.push_str("\n# The steps.\n");
    text.push_str(&steps.funcs);
    text.push('\n');
    text.push_str(&summaries);
    for d in ["state", "apply", "undo_state", "undo"] {
        text.push_str(&dispatch(d));
    }
    text.push_str(&format!(
        r#"
need() {{ command -v "$1" > /dev/null 2>&1 || refuse "$1 is not installed (the script needs it)"; }}
tools() {{
{needs}}}
as_root() {{
	[ "$(id -u)" -eq 0 ] || refuse "$1 changes the host: run it as root"
{netns}}}
# The state directory holds this plan's fingerprint; no other directory is written to or removed.
ours() {{ [ -f "$S/plan" ] && [ "$(cat "$S/plan")" = "$FP" ]; }}
lock() {{
	if [ -e "$S" ] && ! ours; then refuse "$S exists and is not this plan's state directory"; fi
	mkdir -p "${{S%/*}}"
	if [ ! -d "$S" ]; then mkdir -m 0700 "$S"; printf '%s\n' "$FP" > "$S/plan"; fi
	mkdir "$S/lock" 2> /dev/null || refuse "another run holds $S/lock (remove it if none is running)"
	LOCKED=1
}}
clear() {{
	for f in "$S/$1".*; do
		if [ -e "$f" ]; then rm -f "$f"; fi
	done
}}
undo_one() {{
	undo_state "$1"
	if [ "$ST" = restored ]; then printf 'step %s: already as before: ' "$1"
	else undo "$1"; printf 'step %s: undone: ' "$1"; fi
	clear "$1"
}}
finish() {{
	rc=$?
	trap - EXIT
	if [ "$PHASE" = apply ] && [ "$rc" -ne 0 ]; then
		printf '%s: step %s failed; undoing what this run changed\n' "$0" "$STEP" >&2
		set +e
		for n in $RAN; do
			undo_one "$n" && summary "$n"
		done
		rc=4
	fi
	if [ -n "$LOCKED" ]; then rmdir "$S/lock"; fi
	exit "$rc"
}}

check_all() {{
	pending=0
	for n in $STEPS; do
		state "$n"
		case $ST in
		in_place) printf 'step %s: in place: ' "$n" ;;
		before) pending=$((pending + 1)); printf 'step %s: to do: ' "$n" ;;
		unknown) pending=$((pending + 1)); printf 'step %s: to do (the plan did not know its state): ' "$n" ;;
		*) pending=$((pending + 1)); printf 'step %s: CHANGED SINCE THE PLAN (%s): ' "$n" "${{ST#drift: }}" ;;
		esac
		summary "$n"
	done
	if [ "$pending" -eq 0 ]; then say "Every step is in place."; return 0; fi
	say "$pending of {count} steps are not in place."
	return 1
}}

apply_all() {{
	as_root apply
	tools
	changed=
	for n in $STEPS; do
		state "$n"
		case $ST in
		drift*) changed="$changed; step $n: ${{ST#drift: }}" ;;
		esac
	done
	[ -z "$changed" ] || refuse "the host changed since the plan${{changed}}"
	lock
	PHASE=apply
	for n in $STEPS; do
		state "$n"
		if [ "$ST" = in_place ]; then printf 'step %s: in place, skipped: ' "$n"; summary "$n"; continue; fi
		STEP=$n
		clear "$n"
		: > "$S/$n.begun"
		RAN="$n $RAN"
		apply "$n"
		: > "$S/$n.done"
		printf 'step %s: done: ' "$n"
		summary "$n"
	done
	PHASE=
	say "Applied. Undo with: sh $0 undo"
	say {proof}
}}

undo_all() {{
	as_root undo
	if [ ! -e "$S" ]; then say "Nothing to undo: $S does not exist (apply did not run here)."; return 0; fi
	tools
	lock
	reverse=
	for n in $STEPS; do
		if [ -f "$S/$n.begun" ]; then reverse="$n $reverse"; fi
	done
	changed=
	for n in $reverse; do
		undo_state "$n"
		case $ST in
		drift*) changed="$changed; step $n: ${{ST#drift: }}" ;;
		esac
	done
	if [ -n "$changed" ] && [ "$FORCE" != 1 ]; then
		refuse "changed since apply${{changed}} (LOWPORT_FORCE=1 undoes anyway, overwriting those changes)"
	fi
	for n in $reverse; do
		undo_one "$n"
		summary "$n"
	done
	rm -f "$S/plan"
	rmdir "$S/lock"
	LOCKED=
	rmdir "$S"
	if [ -n "$OWN_PARENT" ]; then rmdir "${{S%/*}}" 2> /dev/null || :; fi
	say "Undone."
}}

trap finish EXIT
trap 'exit 130' INT TERM HUP
case ${{1:-check}} in
check)
	[ "$(id -u)" -eq 0 ] || say "(not root: a check that needs root reads as not in place)"
	check_all ;;
apply) apply_all ;;
undo) undo_all ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
"#,
        needs = needs
            .iter()
            .map(|t| format!("\tneed {t}\n"))
            .collect::<String>(),
    ));
    Ok(vec![File {
        name: "lowport.sh".into(),
        text,
        executable: true,
    }])
}

const USAGE: &str = "\
Usage: sh lowport.sh [check|apply|undo]   (default: check)
  check  read only: print each step's state; exit 0 when every step is in place, else 1
  apply  as root: refuse (exit 3, nothing changed) unless every step is in place or still as
         the plan found it; then make the changes, skipping what is in place (a second apply
         changes nothing), and keep what they replace for undo; a failed step undoes the run
  undo   as root: put back what apply replaced, last step first; refuse (exit 3) when a target
         changed since apply, unless LOWPORT_FORCE=1
";

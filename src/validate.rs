//! Input validation: the only layer that turns operator text into typed values.
//!
//! Every function returns a message that names the bad value and says what is accepted, so clap
//! can print it and exit with code 2 before anything is read from or written to the host.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Ports below this need a grant; the tool refuses to "grant" ports that need none.
pub const FIRST_UNPRIVILEGED: u16 = 1024;

/// One `--port` argument: `N` for methods that grant a port, `LOW:HIGH` for methods that redirect
/// clients from a low port to a high one the service listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortArg {
    Grant(u16),
    Redirect { public: u16, backend: u16 },
}

impl std::fmt::Display for PortArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortArg::Grant(p) => write!(f, "{p}"),
            PortArg::Redirect { public, backend } => write!(f, "{public}:{backend}"),
        }
    }
}

/// A port number; `range` says which ports the caller takes, for the message.
fn number(s: &str, what: &str, range: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} '{s}' is not a number; give a port from {range}"
        ));
    }
    match s.parse::<u32>() {
        Ok(0) => Err(format!("{what} 0 is not a port; give a port from {range}")),
        Ok(n) if n > 65535 => Err(format!("{what} {s} is out of range: ports end at 65535")),
        Ok(n) => Ok(n as u16),
        Err(_) => Err(format!("{what} '{s}' is out of range: ports end at 65535")),
    }
}

fn privileged(p: u16, what: &str) -> Result<u16, String> {
    if p >= FIRST_UNPRIVILEGED {
        return Err(format!(
            "{what} {p} needs no grant: only ports 1 to 1023 are privileged on Linux"
        ));
    }
    Ok(p)
}

const PRIVILEGED: &str = "1 to 1023";

/// Parses `N` (1–1023) or `LOW:HIGH` (LOW 1–1023, HIGH 1024–65535).
pub fn port_arg(s: &str) -> Result<PortArg, String> {
    let s = s.trim();
    match s.split_once(':') {
        None => Ok(PortArg::Grant(privileged(
            number(s, "port", PRIVILEGED)?,
            "port",
        )?)),
        Some((low, high)) => {
            let public = privileged(number(low, "public port", PRIVILEGED)?, "public port")?;
            let backend = number(high, "backend port", "1024 to 65535")?;
            if backend < FIRST_UNPRIVILEGED {
                return Err(format!(
                    "backend port {backend} in '{s}' is privileged itself; the service must \
                     listen on a port from 1024 to 65535"
                ));
            }
            Ok(PortArg::Redirect { public, backend })
        }
    }
}

/// A list of ports separated by spaces or commas, as typed in a form or a prompt.
pub fn port_list(text: &str) -> Result<Vec<PortArg>, String> {
    text.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(port_arg)
        .collect()
}

/// Ports to grant, and (client port, service port) redirect pairs.
pub fn split_ports(ports: &[PortArg]) -> (Vec<u16>, Vec<(u16, u16)>) {
    let (mut grants, mut redirects) = (Vec::new(), Vec::new());
    for p in ports {
        match p {
            PortArg::Grant(n) => grants.push(*n),
            PortArg::Redirect { public, backend } => redirects.push((*public, *backend)),
        }
    }
    (grants, redirects)
}

/// User and group names: POSIX portable names (letters, digits, `.`, `_`, `-`), not starting with
/// `-`, not all digits (that would read as a numeric id), at most 32 characters.
pub fn account_name(s: &str) -> Result<String, String> {
    let what = "name";
    if s.is_empty() {
        return Err(format!(
            "empty {what}: give a user or group name such as 'fabio'"
        ));
    }
    if s.len() > 32 {
        return Err(format!(
            "'{s}' is longer than 32 characters, the portable limit for names"
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "'{s}' contains {c:?}; names may hold only letters, digits, '.', '_' and '-'"
        ));
    }
    if s.starts_with('-') {
        return Err(format!("'{s}' starts with '-'; names must not"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{s}' is all digits; give the name, not a numeric id"
        ));
    }
    if s == "." || s == ".." {
        return Err(format!("'{s}' is not a name"));
    }
    Ok(s.to_string())
}

/// A network interface (or OpenBSD interface group) name as pf.conf and npf.conf take it bare:
/// a letter, then letters, digits, `.`, `_` or `-`, at most 15 bytes (IFNAMSIZ less the NUL).
pub fn interface(s: &str) -> Result<String, String> {
    let ok = s.len() <= 15
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(format!(
            "interface {:?} is not an interface name: a letter, then letters, digits, '.', '_' \
             or '-', at most 15 characters (e.g. em0, vtnet0, en0)",
            s
        ));
    }
    Ok(s.to_string())
}

/// An absolute path without `..` components (they could climb out of `--root`).
pub fn absolute_path(s: &str) -> Result<PathBuf, String> {
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(format!(
            "'{s}' is not an absolute path; give a path starting with '/'"
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("'{s}' contains '..'; give the path without it"));
    }
    if s.len() > 4096 {
        return Err("path is longer than 4096 bytes".to_string());
    }
    no_control("path", s)?;
    Ok(p.to_path_buf())
}

/// `--binary`: an absolute path, or a command name looked up on PATH; for a Windows target, a
/// path on a drive ([`windows_path`]).
pub fn binary(s: &str) -> Result<String, String> {
    if is_drive_path(s) {
        return windows_path("--binary", s);
    }
    if s.starts_with('/') {
        return absolute_path(s).map(|_| s.to_string());
    }
    if s.contains('/') {
        return Err(format!(
            "'{s}' is a relative path; give an absolute path or a command name found on PATH"
        ));
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(format!("'{s}' is not a command name"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')))
    {
        return Err(format!("command name '{s}' contains {c:?}"));
    }
    Ok(s.to_string())
}

/// `--service`: a systemd service name (without or with `.service`), by systemd's own rules
/// (`unit_name_is_valid`): at most 255 bytes with the suffix, only `[A-Za-z0-9:_.\\-]`, and at most
/// one `@`, which must follow a non-empty prefix and be followed by an instance (a bare template
/// such as `foo@` cannot run).
pub fn service_name(s: &str) -> Result<String, String> {
    let name = s.strip_suffix(".service").unwrap_or(s);
    let bad = |why: &str| Err(format!("'{s}' is not a service name: {why}"));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() + ".service".len() > 255 {
        return bad("a unit name has at most 255 bytes");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_.\\-@".contains(*c)))
    {
        return bad(&format!(
            "{c:?} is not allowed; use letters, digits and ':', '_', '.', '\\', '-' (and one '@' \
             before an instance name)"
        ));
    }
    if name.starts_with(['-', '.']) {
        return bad("it must not start with '-' or '.'");
    }
    match name.split_once('@') {
        Some(("", _)) => bad("nothing comes before '@'"),
        Some((_, "")) => {
            bad("a template (ending in '@') cannot run; name an instance, e.g. 'NAME@INSTANCE'")
        }
        Some((_, instance)) if instance.contains('@') => bad("it holds more than one '@'"),
        _ => Ok(name.to_string()),
    }
}

/// `--state-directory`: a path relative to /var/lib, made of plain names.
pub fn state_directory(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a state directory; give a relative name under /var/lib such as 'fabio' \
             (letters, digits, '.', '_', '-', components joined by '/')"
        ))
    }
}

/// `--arg`: one argument for the service's binary. Any text but control characters, which would
/// break the unit file's line structure.
pub fn exec_arg(s: &str) -> Result<String, String> {
    no_control("argument", s)?;
    Ok(s.to_string())
}

/// Control characters (C0, DEL, C1) end or corrupt a line in every format lowport writes, and
/// move the cursor on a terminal: no value carries one.
fn no_control(what: &str, s: &str) -> Result<(), String> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{what} {s:?} contains the control character {c:?}; give it without"
        )),
        None => Ok(()),
    }
}

/// A list typed on one line (the interactive Args and Writable settings): split with POSIX shell
/// quoting, so `"hello world"` is one word; an unclosed quote is refused.
pub fn words(s: &str) -> Result<Vec<String>, String> {
    shell_words::split(s).map_err(|e| format!("{e}: close the quote, or escape it with \\"))
}

/// The binary's arguments typed on one line: shell-quoted words, each an [`exec_arg`].
pub fn exec_args(s: &str) -> Result<Vec<String>, String> {
    words(s)?.iter().map(|a| exec_arg(a)).collect()
}

/// Paths typed on one line: shell-quoted words, each an [`absolute_path`].
pub fn path_list(s: &str) -> Result<Vec<PathBuf>, String> {
    words(s)?.iter().map(|p| absolute_path(p)).collect()
}

/// A yes/no answer to an interactive prompt; empty is no.
pub fn yes_no(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(true),
        "" | "n" | "no" => Ok(false),
        _ => Err(format!("'{s}': answer yes or no")),
    }
}

// One rule per output format. Each checks a value for the syntax of the file it goes into and
// returns it written as that file needs it; the methods build file content only through these.

/// systemd unit files (`systemd.syntax(7)`): a value is the rest of one line. No control
/// characters, no trailing backslash (it would continue the line), and `%` doubled so systemd
/// does not expand a specifier.
pub fn unit_value(what: &str, s: &str) -> Result<String, String> {
    no_control(what, s)?;
    if s.ends_with('\\') {
        return Err(format!(
            "{what} {s:?} ends with a backslash, which would join the next line of the unit"
        ));
    }
    Ok(s.replace('%', "%%"))
}

/// A path in a unit setting that takes a space-separated list (`ReadWritePaths=`): absolute,
/// without `..`, and without whitespace, quotes or backslashes, which would split or quote it.
pub fn unit_path(what: &str, p: &Path) -> Result<String, String> {
    let s = p
        .to_str()
        .ok_or_else(|| format!("{what} {} is not valid UTF-8", p.display()))?;
    absolute_path(s).map_err(|e| format!("{what}: {e}"))?;
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || "\"'\\".contains(*c))
    {
        return Err(format!(
            "{what} {s:?} contains {c:?}, which a unit file would read as a separator or quote"
        ));
    }
    unit_value(what, s)
}

/// One word of an `ExecStart=` command line as systemd.service(5) reads it: specifiers (`%`) and
/// variable references (`$`) are doubled, words with spaces, quotes, backslashes or `;` are
/// double-quoted with C escapes. Control characters cannot be written and are refused.
pub fn exec_word(what: &str, w: &str) -> Result<String, String> {
    no_control(what, w)?;
    let w = w.replace('%', "%%").replace('$', "$$");
    if !w.is_empty() && !w.contains([' ', '"', '\'', '\\', ';']) {
        return Ok(w);
    }
    Ok(format!(
        "\"{}\"",
        w.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// A `key = value` line of a sysctl.d file (`sysctl.d(5)`): a dotted key of plain names, and a
/// value on one line.
pub fn sysctl_line(key: &str, value: &str) -> Result<String, String> {
    let key_ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    if !key_ok {
        return Err(format!("{key:?} is not a sysctl key"));
    }
    no_control("sysctl value", value)?;
    if value.trim() != value || value.is_empty() {
        return Err(format!(
            "sysctl value {value:?} is empty or has surrounding spaces"
        ));
    }
    Ok(format!("{key} = {value}\n"))
}

/// `--plan-sha256 HEX`: a SHA-256 as lowport prints it, 64 lowercase hex digits.
pub fn sha256_hex(s: &str) -> Result<String, String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a SHA-256 as `lowport plan --out` prints it (64 lowercase hex digits)"
        ))
    }
}

/// `rollback ID`: the run ids lowport itself generates.
pub fn run_id(s: &str) -> Result<String, String> {
    let ok =
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a run id; `lowport history` lists them (e.g. 7-20261129T010203Z)"
        ))
    }
}

/// YAML (as PyYAML reads it for Ansible and cloud-init, and as YAML 1.2 parsers do): a string as
/// one double-quoted scalar. Quotes and backslashes are escaped, and so is every character outside
/// YAML's printable set, including the line breaks YAML 1.1 knows besides `\n` (NEL, U+2028,
/// U+2029) and the byte-order mark: no value can end the string, start a key, or carry a
/// character a parser rejects.
pub fn yaml_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    s.chars().for_each(|c| yaml_escape(c, &mut out));
    out.push('"');
    out
}

fn yaml_escape(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        c if yaml_printable(c) => out.push(c),
        c if u32::from(c) <= 0xff => out.push_str(&format!("\\x{:02x}", u32::from(c))),
        c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
        c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
    }
}

/// [`yaml_quoted`] over several lines, for a key at `column`: a line ends after each newline and
/// after about 100 characters with an escaped line break (`\` at the end), which YAML removes
/// together with the next line's indentation; a space that would start a line is written
/// `\x20` so it is not taken for indentation. Linters that limit line length and forbid tabs
/// accept it, and it carries any text exactly.
pub fn yaml_quoted_lines(s: &str, column: usize) -> String {
    let pad = " ".repeat(column + 2);
    let mut out = String::from("\"");
    let mut width = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let before = out.len();
        if width == 0 && c == ' ' {
            out.push_str("\\x20");
        } else {
            yaml_escape(c, &mut out);
        }
        width += out.len() - before;
        if (c == '\n' || width >= 100) && chars.peek().is_some() {
            out.push_str("\\\n");
            out.push_str(&pad);
            width = 0;
        }
    }
    out.push_str("\"\n");
    out
}

/// Characters YAML carries as they are inside a scalar (c-printable, less its line breaks
/// other than `\n` and the byte-order mark).
fn yaml_printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A multi-line text as a YAML literal block scalar (`|`), for a key at column `column`: the
/// header carries an explicit indentation indicator (so a first line that starts with spaces is
/// not misread) and the chomping indicator that keeps exactly the text's trailing newlines; each
/// line is indented by `column + 2`. None when a literal block cannot carry the text exactly
/// (empty, a character that must be escaped, a tab, a line longer than 120 characters, or a line
/// of only blanks, which YAML reads as an empty line): quote it with [`yaml_quoted_lines`] then.
pub fn yaml_literal(s: &str, column: usize) -> Option<String> {
    let body = s.trim_end_matches('\n');
    let chomp = match s.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    // Tabs are exact in a literal block, but linters reject them; long lines too.
    let plain = |line: &str| {
        line.chars().all(yaml_printable)
            && line.len() <= 120
            && (line.is_empty() || !line.chars().all(|c| c == ' '))
    };
    if body.is_empty() || !body.split('\n').all(plain) {
        return None;
    }
    let pad = " ".repeat(column + 2);
    let mut out = format!("|2{chomp}\n");
    for line in s.split_inclusive('\n') {
        if line != "\n" {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    if chomp == "-" {
        out.push('\n');
    }
    Some(out)
}

/// A text as a YAML value for a key at `column`: a literal block where that is exact, else a
/// double-quoted scalar over several lines.
pub fn yaml_text(s: &str, column: usize) -> String {
    yaml_literal(s, column).unwrap_or_else(|| yaml_quoted_lines(s, column))
}

// --- pf and npf redirect methods (FreeBSD, OpenBSD, NetBSD, macOS) ---------------------------
// Their rule text takes only interface names (`interface` above) and numbers; the LaunchDaemon
// that reloads pf-macos's rules at boot is the one file with other values.

/// A `<string>` of an XML property list (launchd.plist(5)): `&`, `<` and `>` escaped; control
/// characters and U+FFFE/U+FFFF, which XML 1.0 cannot carry, refused.
pub fn plist_string(what: &str, s: &str) -> Result<String, String> {
    no_control(what, s)?;
    if s.contains(['\u{fffe}', '\u{ffff}']) {
        return Err(format!("{what} {s:?} holds a character XML cannot carry"));
    }
    Ok(s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;"))
}

#[cfg(test)]
mod pf_tests {
    #[test]
    fn plist_strings_are_escaped_and_control_characters_refused() {
        let s = super::plist_string;
        assert_eq!(s("p", "/sbin/pfctl").unwrap(), "/sbin/pfctl");
        assert_eq!(s("p", "a&b<c>d\"'").unwrap(), "a&amp;b&lt;c&gt;d\"'");
        assert!(s("p", "a\u{1}b").unwrap_err().contains("control character"));
        assert!(s("p", "a\nb").is_err());
        assert!(s("p", "\u{fffe}").is_err());
    }
}
// --- end of the pf and npf block ------------------------------------------------------------

// --- POSIX sh and PowerShell: the sh and powershell exports, and the facts script ---

/// One POSIX sh word that stands for `s` exactly: single-quoted, each `'` written `'\''`.
/// Inside single quotes every byte is literal (newlines, `$`, backslashes, non-ASCII), so this is
/// exact for any text but one holding NUL, which no shell word or here-document can carry:
/// refused.
pub fn sh_quoted(what: &str, s: &str) -> Result<String, String> {
    if s.contains('\0') {
        return Err(format!(
            "{what} contains a NUL byte, which a shell script cannot carry"
        ));
    }
    Ok(format!("'{}'", s.replace('\'', "'\\''")))
}

/// The delimiter of a quoted here-document (`<<'DELIM'`) that carries `text` exactly: a word
/// that is no line of `text`, so the text cannot end the here-document early. The text itself
/// is not expanded in such a here-document; NUL is refused as by [`sh_quoted`].
pub fn sh_heredoc_delimiter(what: &str, text: &str) -> Result<String, String> {
    sh_quoted(what, text)?;
    let mut delim = "LOWPORT_EOF".to_string();
    while text
        .lines()
        .any(|l| l == delim || l.trim_end_matches('\r') == delim)
    {
        delim.push('_');
    }
    Ok(delim)
}

/// PowerShell's quote characters: `'` and the typographic single quotes it reads as `'`.
const PS_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201a}', '\u{201b}'];

/// A PowerShell single-quoted string standing for `s`: nothing in it is expanded (`$`, backticks)
/// and each quote character is doubled, which PowerShell reads as that one character (it treats
/// the typographic quotes U+2018–U+201B as `'`). NUL is refused.
pub fn ps_quoted(what: &str, s: &str) -> Result<String, String> {
    if s.contains('\0') {
        return Err(format!("{what} contains a NUL byte"));
    }
    let mut out = String::from("'");
    for c in s.chars() {
        if PS_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    Ok(out)
}

/// One argument of a native program in a PowerShell script, quoted by [`ps_quoted`]. Windows
/// PowerShell 5.1 builds the program's command line without escaping: it drops an empty
/// argument, passes an embedded `"` unescaped, and wraps an argument with spaces in quotes that
/// a trailing backslash then escapes. Such arguments would reach the program changed: refused,
/// as are control characters (a command line is one line).
pub fn ps_native_arg(s: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "the argument {s:?} {why}, which Windows PowerShell 5.1 does not pass to a program \
             as it is"
        ))
    };
    if s.is_empty() {
        return bad("is empty");
    }
    if s.contains('"') {
        return bad("contains a double quote");
    }
    if s.contains(char::is_whitespace) && s.ends_with('\\') {
        return bad("holds a space and ends with a backslash");
    }
    no_control("argument", s)?;
    ps_quoted("argument", s)
}
// --- end of the sh and PowerShell block ---

// ---- macOS and Windows (issue 7; branch macwin) ----------------------------------------------
// The launchd label a LaunchDaemon is named by (its plist strings go through `plist_string`
// above), and the Windows paths and firewall rule names the windows method puts in netsh's argv.

/// The label of a LaunchDaemon lowport writes: reverse-DNS, at least two dot-separated names of
/// ASCII letters, digits, `-` and `_`, each starting with a letter or digit. At most 249 bytes, so
/// that `LABEL.plist` is a file name macOS accepts (255 bytes). `com.apple.` is Apple's own
/// namespace, where the system's daemons live: lowport writes nothing there.
pub fn launchd_label(s: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "'{s}' is not a launchd label lowport writes: {why}"
        ))
    };
    if s.len() > 249 {
        return bad("it is longer than 249 bytes");
    }
    let names: Vec<&str> = s.split('.').collect();
    if names.len() < 2 {
        return bad("give a reverse-DNS name such as com.example.fabio");
    }
    let name_ok = |n: &&str| {
        n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !names.iter().all(name_ok) {
        return bad(
            "each dot-separated name must start with a letter or digit and hold only letters, \
             digits, '-' and '_'",
        );
    }
    if s.to_ascii_lowercase().starts_with("com.apple.") {
        return bad("com.apple. is Apple's namespace");
    }
    Ok(s.to_string())
}

/// `X:` then a backslash: the absolute path of a Windows drive.
fn is_drive_path(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\'
}

/// An absolute Windows path on a drive (`C:\fabio\fabio.exe`), as `--binary` takes it for a
/// Windows target. Refused: other forms (relative, `\\server\share`, `/` separators), every
/// character Windows forbids in a file name (`<>:"/|?*` and control characters), empty, `.` and
/// `..` components, a component ending in a space or a dot (Windows strips those, so the path
/// would name another file than the one shown), and more than 259 characters (MAX_PATH, less
/// its NUL).
pub fn windows_path(what: &str, s: &str) -> Result<String, String> {
    let bad = |why: String| {
        Err(format!(
            "{what} {s:?} is not a Windows path lowport takes: {why}"
        ))
    };
    if !is_drive_path(s) {
        return bad("give a full path on a drive, e.g. C:\\fabio\\fabio.exe".into());
    }
    if s.chars().count() > 259 {
        return bad("it is longer than 259 characters".into());
    }
    no_control(what, s)?;
    for name in s[3..].split('\\') {
        if name.is_empty() || name == "." || name == ".." {
            return bad(format!("it has an empty, '.' or '..' component ({name:?})"));
        }
        if let Some(c) = name.chars().find(|c| "<>:\"/|?*".contains(*c)) {
            return bad(format!("{c:?} is not allowed in a Windows file name"));
        }
        if name.ends_with([' ', '.']) {
            return bad(format!(
                "{name:?} ends with a space or a dot, which Windows removes"
            ));
        }
    }
    Ok(s.to_string())
}

/// The program of a Windows Firewall rule (`netsh advfirewall firewall add rule program=…`): a
/// [`windows_path`] without `%`, since the firewall reads `%NAME%` in a rule's program as an
/// environment variable (its own rules name `%SystemRoot%\system32\svchost.exe`).
pub fn firewall_program(s: &str) -> Result<String, String> {
    let p = windows_path("--binary", s)?;
    if p.contains('%') {
        return Err(format!(
            "--binary {s:?} contains '%', which the firewall would read as an environment \
             variable in the rule's program path"
        ));
    }
    Ok(p)
}

/// The name of a Windows Firewall rule lowport adds: letters, digits, `.`, `_` and `-` (one
/// argv word for netsh, nothing to quote), starting with a letter or digit, at most 255 bytes.
pub fn firewall_rule_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' cannot name a firewall rule: give --service NAME of letters, digits, '.', '_' \
             and '-'"
        ))
    }
}

/// The file name a `--binary` value ends in, which a service is named after: for a Windows path
/// the part after the last `\`, without `.exe`.
pub fn binary_file_name(b: &str) -> Option<&str> {
    if is_drive_path(b) {
        let name = b.rsplit('\\').next()?;
        let stem = name
            .len()
            .checked_sub(4)
            .filter(|&i| name.is_char_boundary(i) && name[i..].eq_ignore_ascii_case(".exe"));
        return Some(stem.map_or(name, |i| &name[..i])).filter(|n| !n.is_empty());
    }
    Path::new(b).file_name()?.to_str()
}

#[cfg(test)]
mod macwin_tests {
    use super::*;

    #[test]
    fn plist_strings_escape_markup_and_refuse_what_xml_cannot_hold() {
        let p = |s| plist_string("arg", s).unwrap();
        assert_eq!(p("-cfg"), "-cfg");
        assert_eq!(p("a&b<c>d"), "a&amp;b&lt;c&gt;d");
        assert_eq!(p("x]]>y"), "x]]&gt;y");
        assert_eq!(p("&amp;"), "&amp;amp;");
        assert_eq!(p("\"quoted\" 'single' é 🦀"), "\"quoted\" 'single' é 🦀");
        for bad in [
            "a\rb",
            "a\nb",
            "tab\there",
            "nul\0",
            "\u{85}",
            "\u{fffe}",
            "\u{ffff}",
        ] {
            assert!(plist_string("arg", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn launchd_labels_are_reverse_dns_outside_apples_namespace() {
        for good in [
            "com.github.fabiolb.fabio",
            "local.lowport.fabio",
            "a.b",
            "x.y_z-1.2",
        ] {
            assert_eq!(launchd_label(good).as_deref(), Ok(good));
        }
        let long = format!("a.{}", "b".repeat(248));
        for bad in [
            "fabio",
            "",
            "a..b",
            ".a.b",
            "a.b.",
            "a.-b",
            "a.b c",
            "a.b/c",
            "a.b:c",
            "a.b@c",
            "com.apple.fabio",
            "COM.Apple.x",
            long.as_str(),
        ] {
            assert!(launchd_label(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn windows_paths_are_drive_paths_windows_reads_as_written() {
        for good in [
            r"C:\fabio\fabio.exe",
            r"d:\Program Files\fabio\fabio.exe",
            r"C:\R&D\fabio (1).exe",
        ] {
            assert_eq!(windows_path("p", good).as_deref(), Ok(good));
            assert_eq!(binary(good).as_deref(), Ok(good));
        }
        let long = format!(r"C:\{}", "a".repeat(257));
        for bad in [
            r"fabio.exe",
            r"\fabio\fabio.exe",
            r"\\server\share\fabio.exe",
            r"C:fabio.exe",
            "C:/fabio/fabio.exe",
            r"C:\fabio\..\windows\x.exe",
            r"C:\fabio\.\x.exe",
            r"C:\fabio\\x.exe",
            r"C:\fabio\",
            r"C:\fa:bio\x.exe",
            r"C:\fabio\x?.exe",
            r#"C:\fabio\"x".exe"#,
            "C:\\fabio\\x\n.exe",
            r"C:\fabio \x.exe",
            r"C:\fabio\x.exe.",
            long.as_str(),
        ] {
            assert!(windows_path("p", bad).is_err(), "{bad:?} accepted");
        }
        // A path Windows takes is still refused where a unix one is expected, and vice versa.
        assert!(binary(r"C:fabio").is_err());
        assert!(binary(r"a\b").is_err());
        assert!(firewall_program(r"C:\%SystemRoot%\x.exe").is_err());
        assert!(firewall_program(r"C:\fabio\fabio.exe").is_ok());
    }

    #[test]
    fn rule_names_and_binary_file_names() {
        assert!(firewall_rule_name("lowport-fabio-tcp-80-443").is_ok());
        for bad in ["", "-x", "a b", "a\"b", "all;x", r"C:\x"] {
            assert!(firewall_rule_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(binary_file_name(r"C:\fabio\fabio.exe"), Some("fabio"));
        assert_eq!(binary_file_name(r"C:\fabio\FABIO.EXE"), Some("FABIO"));
        assert_eq!(binary_file_name(r"C:\tools\caddy"), Some("caddy"));
        assert_eq!(binary_file_name(r"C:\tools\.exe"), None);
        assert_eq!(binary_file_name("/usr/local/bin/fabio"), Some("fabio"));
        assert_eq!(binary_file_name("fabio"), Some("fabio"));
    }
}
// ---- end of macOS and Windows ----------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_and_powershell_quoting() {
        assert_eq!(sh_quoted("v", "plain").unwrap(), "'plain'");
        assert_eq!(sh_quoted("v", "").unwrap(), "''");
        assert_eq!(sh_quoted("v", "it's").unwrap(), "'it'\\''s'");
        assert!(sh_quoted("v", "a\0b").is_err());
        assert_eq!(sh_heredoc_delimiter("f", "a\nb\n").unwrap(), "LOWPORT_EOF");
        assert_eq!(
            sh_heredoc_delimiter("f", "LOWPORT_EOF\nLOWPORT_EOF_\r\n").unwrap(),
            "LOWPORT_EOF__"
        );
        assert!(sh_heredoc_delimiter("f", "\0").is_err());
        assert_eq!(ps_quoted("v", "a'b$c`d").unwrap(), "'a''b$c`d'");
        assert_eq!(ps_quoted("v", "\u{2019}").unwrap(), "'\u{2019}\u{2019}'");
        assert_eq!(ps_native_arg("name=x y").unwrap(), "'name=x y'");
        assert_eq!(ps_native_arg("C:\\dir\\").unwrap(), "'C:\\dir\\'");
        for bad in ["", "a\"b", "C:\\Program Files\\", "a\nb"] {
            assert!(ps_native_arg(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port_arg("80"), Ok(PortArg::Grant(80)));
        assert_eq!(
            port_arg("443:8443"),
            Ok(PortArg::Redirect {
                public: 443,
                backend: 8443
            })
        );
        for bad in [
            "0",
            "1024",
            "65536",
            "-1",
            "8o",
            "",
            "80:80",
            "80:",
            ":8080",
            "99999999999",
        ] {
            assert!(port_arg(bad).is_err(), "{bad} accepted");
        }
        // Each side's message gives the range that side takes.
        let said = |s: &str| port_arg(s).unwrap_err();
        assert!(said("8o").ends_with("from 1 to 1023"), "{}", said("8o"));
        assert!(said("x:8080").ends_with("from 1 to 1023"));
        assert!(said("80:9999:1").ends_with("from 1024 to 65535"));
        assert!(said("80:0").ends_with("from 1024 to 65535"));
    }

    #[test]
    fn names() {
        assert!(account_name("fabio").is_ok());
        assert!(account_name("_www-data.1").is_ok());
        for bad in [
            "",
            "-x",
            "1000",
            "a b",
            "a:b",
            "root;id",
            "é",
            ".",
            &"a".repeat(33),
        ] {
            assert!(account_name(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn exec_words_are_quoted_as_systemd_reads_them() {
        let w = |s| exec_word("arg", s).unwrap();
        assert_eq!(w("-cfg"), "-cfg");
        assert_eq!(w("/etc/my app.properties"), "\"/etc/my app.properties\"");
        assert_eq!(w("50%"), "50%%");
        assert_eq!(w("$HOME"), "$$HOME");
        assert_eq!(w("a\"b"), "\"a\\\"b\"");
        assert_eq!(w("a\\"), "\"a\\\\\"");
        assert_eq!(w(""), "\"\"");
        for bad in ["a\nExecStartPre=+/bin/sh", "a\rb", "\u{1b}[2J", "\u{85}"] {
            assert!(exec_word("arg", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unit_values_and_paths_keep_to_one_line() {
        assert_eq!(unit_value("v", "50% off").unwrap(), "50%% off");
        assert!(unit_value("v", "x\\").is_err());
        assert!(unit_value("v", "a\nb").is_err());
        assert_eq!(unit_path("p", Path::new("/srv/data")).unwrap(), "/srv/data");
        for bad in [
            "/srv\nExecStartPre=+/x",
            "/srv data",
            "/a\"b",
            "srv",
            "/a/../b",
            "/a\\",
        ] {
            assert!(unit_path("p", Path::new(bad)).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            sysctl_line("net.ipv4.x", "80").unwrap(),
            "net.ipv4.x = 80\n"
        );
        assert!(sysctl_line("net.ipv4.x", "80\nkernel.y = 1").is_err());
        assert!(sysctl_line("a b", "1").is_err());
    }

    #[test]
    fn service_names_follow_systemd() {
        for good in ["fabio", "fabio.service", "a@b", "x:y_z.w-1", "a\\x2db"] {
            assert!(service_name(good).is_ok(), "{good} refused");
        }
        let long = "a".repeat(248);
        for bad in [
            "@",
            "foo@",
            "@x",
            "a@b@c",
            "",
            ".x",
            "-x",
            "a/b",
            "a b",
            "é",
            long.as_str(),
        ] {
            assert!(service_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(service_name(&"a".repeat(247)).is_ok());
        assert!(state_directory("fabio/cache").is_ok());
        for bad in ["", "/abs", "a/../b", "a//b", ".", "a b"] {
            assert!(state_directory(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn paths() {
        assert!(absolute_path("/usr/bin/x").is_ok());
        assert!(absolute_path("usr/bin").is_err());
        assert!(absolute_path("/usr/../etc").is_err());
        assert!(binary("fabio").is_ok());
        assert!(binary("./fabio").is_err());
        assert!(binary("a;b").is_err());
    }
}

// ---- FreeBSD (freebsd-portacl, freebsd-reservedhigh) ----------------------------------------

/// One mac_portacl(4) rule: a uid or gid, a protocol and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortaclRule {
    pub gid: bool,
    pub id: u32,
    pub udp: bool,
    pub port: u16,
}

impl std::fmt::Display for PortaclRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.gid { "gid" } else { "uid" };
        let proto = if self.udp { "udp" } else { "tcp" };
        write!(f, "{who}:{}:{proto}:{}", self.id, self.port)
    }
}

/// One element of `security.mac.portacl.rules`, `uid|gid:ID:tcp|udp:PORT`. The kernel parses the
/// numbers with strtol, which would also take a sign or leading blanks and truncates a port to 16
/// bits; lowport carries only plain decimal numbers in range, so a rule means the same in the
/// sysctl, in sysctl.conf and in the boot script's check (a comma-free, blank-free word).
pub fn portacl_rule(s: &str) -> Result<PortaclRule, String> {
    let bad = || {
        format!(
            "{s:?} is not a mac_portacl rule lowport can carry (uid|gid:ID:tcp|udp:PORT, \
             decimal numbers)"
        )
    };
    let parts: Vec<&str> = s.split(':').collect();
    let [who, id, proto, port] = parts.as_slice() else {
        return Err(bad());
    };
    fn number<T: std::str::FromStr>(t: &str) -> Option<T> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    }
    let gid = match *who {
        "uid" => false,
        "gid" => true,
        _ => return Err(bad()),
    };
    let udp = match *proto {
        "tcp" => false,
        "udp" => true,
        _ => return Err(bad()),
    };
    let id = number(id).ok_or_else(bad)?;
    let port = number(port).ok_or_else(bad)?;
    Ok(PortaclRule { gid, id, udp, port })
}

/// A `name=value` line of FreeBSD's sysctl.conf(5), as sysctl(8) -f reads it: a dotted name of
/// plain parts, and a value without blanks, quotes, `#` (a comment starts there) or control
/// characters, so it needs no quoting.
pub fn freebsd_sysctl_line(key: &str, value: &str) -> Result<String, String> {
    let key_ok = key.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if !key_ok {
        return Err(format!("{key:?} is not a FreeBSD sysctl name"));
    }
    no_control("sysctl value", value)?;
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || "#\"'\\".contains(c))
    {
        return Err(format!(
            "sysctl.conf value {value:?} is empty or holds a blank, a quote, a backslash or #"
        ));
    }
    Ok(format!("{key}={value}\n"))
}

/// A `name="value"` line of rc.conf(5) or loader.conf(5): a shell variable name, and a value the
/// double quotes carry as it is (no `"`, `\`, `$` or backquote, no control characters).
pub fn freebsd_conf_line(name: &str, value: &str) -> Result<String, String> {
    let mut bytes = name.bytes();
    let name_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !name_ok {
        return Err(format!(
            "{name:?} is not an rc.conf/loader.conf variable name"
        ));
    }
    no_control("value", value)?;
    if value.contains(['"', '\\', '$', '`']) {
        return Err(format!(
            "value {value:?} holds a quote, a backslash, $ or a backquote"
        ));
    }
    Ok(format!("{name}=\"{value}\"\n"))
}

#[cfg(test)]
mod freebsd_tests {
    use super::*;

    #[test]
    fn portacl_rules_are_plain_decimal_and_in_range() {
        let r = portacl_rule("uid:1001:tcp:80").unwrap();
        assert_eq!((r.gid, r.id, r.udp, r.port), (false, 1001, false, 80));
        assert_eq!(r.to_string(), "uid:1001:tcp:80");
        assert_eq!(
            portacl_rule("gid:0:udp:53").unwrap().to_string(),
            "gid:0:udp:53"
        );
        // Leading zeros are decimal to strtol as well: the same rule, written canonically.
        assert_eq!(
            portacl_rule("uid:080:tcp:080").unwrap().to_string(),
            "uid:80:tcp:80"
        );
        for bad in [
            "",
            "uid:1001:tcp",
            "uid:1001:tcp:80:1",
            "user:1001:tcp:80",
            "uid:fabio:tcp:80",
            "uid:1001:sctp:80",
            "uid:-1:tcp:80",
            "uid: 1001:tcp:80",
            "uid:+1:tcp:80",
            "uid:1001:tcp:65616",
            "uid:4294967296:tcp:80",
            "UID:1:tcp:80",
            "uid:1:tcp:80,uid:2:tcp:81",
        ] {
            assert!(portacl_rule(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn freebsd_config_lines() {
        assert_eq!(
            freebsd_sysctl_line("security.mac.portacl.rules", "uid:1:tcp:80,uid:1:tcp:443"),
            Ok("security.mac.portacl.rules=uid:1:tcp:80,uid:1:tcp:443\n".into())
        );
        for (k, v) in [
            ("net..x", "1"),
            ("net.x y", "1"),
            ("net.x", ""),
            ("net.x", "1 # c"),
            ("net.x", "\"1\""),
            ("net.x", "1\n2"),
        ] {
            assert!(freebsd_sysctl_line(k, v).is_err(), "{k:?}={v:?} accepted");
        }
        assert_eq!(
            freebsd_conf_line("mac_portacl_load", "YES"),
            Ok("mac_portacl_load=\"YES\"\n".into())
        );
        for (k, v) in [
            ("1x", "YES"),
            ("a-b", "YES"),
            ("", "YES"),
            ("x", "a\"b"),
            ("x", "$(id)"),
            ("x", "`id`"),
            ("x", "a\\"),
            ("x", "a\nb"),
        ] {
            assert!(freebsd_conf_line(k, v).is_err(), "{k:?}={v:?} accepted");
        }
    }
}

// ---- Solaris and illumos (smf, solaris-defaultpriv) -------------------------------------------
// SMF manifests are XML whose exec strings svc.startd hands to a shell, and /etc/user_attr has
// its own escapes.

/// XML (SMF service_bundle manifests): a value for a double-quoted attribute, equally valid as
/// element text. `&`, `<`, `>` and `"` become entities. Control characters are refused: XML 1.0
/// cannot hold most of them, and an attribute reads tab, CR and LF back as spaces; so are
/// U+FFFE and U+FFFF, which are not XML characters.
pub fn xml_attr(what: &str, s: &str) -> Result<String, String> {
    no_control(what, s)?;
    if let Some(c) = s.chars().find(|c| matches!(c, '\u{fffe}' | '\u{ffff}')) {
        return Err(format!(
            "{what} {s:?} contains {c:?}, which is not an XML character"
        ));
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// One word of an SMF `exec` string (smf_method(7)). svc.startd first expands its method tokens
/// (`%%` is `%`; any other `%` starts a token, and an invalid one fails the method), then runs
/// `/sbin/sh -c "exec STRING"`. So `%` is doubled, and a word holding anything but
/// `A-Za-z0-9/._,:+=@-` is single-quoted for the shell, a `'` written `'\''`. Control
/// characters cannot be carried through the manifest's attribute and are refused.
pub fn smf_exec_word(what: &str, w: &str) -> Result<String, String> {
    no_control(what, w)?;
    let w = w.replace('%', "%%");
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._,:+=@-%".contains(c));
    if plain {
        return Ok(w);
    }
    Ok(format!("'{}'", w.replace('\'', "'\\''")))
}

/// An SMF service name as svccfg takes it for `site/NAME` (libuutil's `uu_check_name`): a
/// letter, then letters, digits, `-` or `_`; at most 114 bytes, so that `site/NAME` stays within
/// the repository's names of 119 bytes (REP_PROTOCOL_NAME_LEN less its terminator).
pub fn smf_name(s: &str) -> Result<String, String> {
    let ok = s.len() <= 114
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not an SMF service name: a letter, then letters, digits, '-' or '_', at \
             most 114 characters; give one with --service NAME"
        ))
    }
}

/// A value in the attr field of /etc/user_attr (user_attr(5)): `\`, `:`, `;` and `=` are
/// escaped with a backslash; control characters are refused (a line break ends the entry).
pub fn user_attr_value(what: &str, s: &str) -> Result<String, String> {
    no_control(what, s)?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ':' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod solaris_tests {
    use super::*;

    #[test]
    fn xml_values_escape_markup_and_refuse_what_xml_cannot_keep() {
        let x = |s| xml_attr("v", s).unwrap();
        assert_eq!(x("/opt/fabio/bin/fabio"), "/opt/fabio/bin/fabio");
        assert_eq!(x("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e'f");
        assert_eq!(x("{net_privaddr}:80/tcp"), "{net_privaddr}:80/tcp");
        for bad in [
            "a\nb",
            "a\tb",
            "a\rb",
            "\u{1b}[2J",
            "\u{85}",
            "\u{fffe}",
            "\u{ffff}",
        ] {
            assert!(xml_attr("v", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn smf_exec_words_survive_token_expansion_and_the_shell() {
        let w = |s| smf_exec_word("arg", s).unwrap();
        assert_eq!(w("/opt/fabio/bin/fabio"), "/opt/fabio/bin/fabio");
        assert_eq!(
            w("-proxy.addr=:80;proto=http"),
            "'-proxy.addr=:80;proto=http'"
        );
        assert_eq!(w("50%"), "50%%");
        assert_eq!(w("%{start/exec}"), "'%%{start/exec}'");
        assert_eq!(w("/opt/my app/fabio"), "'/opt/my app/fabio'");
        assert_eq!(w("it's"), "'it'\\''s'");
        assert_eq!(w("$HOME"), "'$HOME'");
        assert_eq!(w("~fabio"), "'~fabio'");
        assert_eq!(w("#x"), "'#x'");
        assert_eq!(w(""), "''");
        for bad in ["a\nb", "a\rb", "\u{1b}", "\u{85}"] {
            assert!(smf_exec_word("arg", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn smf_names_follow_uu_check_name() {
        for good in ["fabio", "a", "my-proxy_2", &"a".repeat(114)] {
            assert!(smf_name(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "2fabio",
            "-x",
            "_x",
            "fabio.bin",
            "a/b",
            "a b",
            "a,b",
            "é",
            &"a".repeat(115),
        ] {
            assert!(smf_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn user_attr_values_escape_its_separators() {
        let v = |s| user_attr_value("v", s).unwrap();
        assert_eq!(v("basic,!proc_info"), "basic,!proc_info");
        assert_eq!(v("a:b;c=d\\e"), "a\\:b\\;c\\=d\\\\e");
        assert!(user_attr_value("v", "basic\nfabio::::profiles=All").is_err());
    }
}

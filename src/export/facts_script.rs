//! `lowport facts-script`: a POSIX sh collector of the facts lowport plans from, for a host
//! where lowport is not installed. Run as root there, it prints the document `lowport detect
//! --json` would (format_version 1), which `lowport plan --facts FILE` reads: the OS, the
//! programs the family's methods run (looked up only in the system directories lowport runs
//! programs from), the files, kernel settings and modules those methods read (`methods::needs_of`),
//! the accounts and binary the request names, and each needed file's state with its sha256, so
//! that an exported script can refuse to overwrite a file that changed since. What a portable
//! script cannot know is left unknown where the document allows it, and said where it does not.
//!
//! Text goes into JSON through `od` and awk only: `od` turns the bytes into numbers, awk decodes
//! UTF-8 as lowport does (each invalid sequence becomes U+FFFD) and writes every character
//! outside printable ASCII as a `\u` escape, so the document is exact ASCII on every awk.

use crate::error::{Error, Result};
use crate::facts::platform::Wanted;
use crate::request::Want;
use crate::validate::sh_quoted;

fn bad(what: String) -> Error {
    Error::Invalid(format!("the facts script cannot be made: {what}"))
}

fn q(what: &str, s: &str) -> Result<String> {
    sh_quoted(what, s).map_err(bad)
}

/// A JSON string literal, as a shell word that prints it.
fn key(s: &str) -> Result<String> {
    q(
        "name",
        &serde_json::to_string(s).map_err(anyhow::Error::from)?,
    )
}

/// The script for `family`, collecting what its methods need.
pub fn render(family: &str, want: &Want) -> Result<String> {
    script(family, want, &crate::methods::needs_of(family))
}

/// The awk program that turns `od -An -v -tu1` output into one JSON string.
const JSON_AWK: &str = r#"function out(c) {
	if (c == 34) printf "\\\""
	else if (c == 92) printf "\\\\"
	else if (c == 10) printf "\\n"
	else if (c == 9) printf "\\t"
	else if (c == 13) printf "\\r"
	else if (c >= 32 && c <= 126) printf "%c", c
	else if (c > 65535) { c -= 65536; printf "\\u%04x\\u%04x", 55296 + int(c / 1024), 56320 + c % 1024 }
	else printf "\\u%04x", c
}
BEGIN { printf "\""; need = 0 }
{
	for (i = 1; i <= NF; i++) {
		b = $i + 0
		if (need > 0) {
			if (b >= lo && b <= hi) {
				cp = cp * 64 + b - 128; need--; lo = 128; hi = 191
				if (need == 0) out(cp)
				continue
			}
			out(65533); need = 0
		}
		if (b < 128) out(b)
		else if (b >= 194 && b <= 223) { need = 1; cp = b - 192; lo = 128; hi = 191 }
		else if (b >= 224 && b <= 239) { need = 2; cp = b - 224; lo = (b == 224) ? 160 : 128; hi = (b == 237) ? 159 : 191 }
		else if (b >= 240 && b <= 244) { need = 3; cp = b - 240; lo = (b == 240) ? 144 : 128; hi = (b == 244) ? 143 : 191 }
		else out(65533)
	}
}
END { if (need > 0) out(65533); printf "\"" }"#;

/// Helpers of the collector: JSON values, tool lookup, a binary's facts.
const HELPERS: &str = r#"jstr() { printf '%s' "$1" | od -An -v -tu1 | awk "$J"; }
jfile() { od -An -v -tu1 < "$1" | awk "$J"; }
num() { case $1 in '' | *[!0-9]*) printf null ;; *) printf '%s' "$1" ;; esac; }
# A list of numbers as a JSON array.
nums() {
	printf '['
	s=
	for x in $1; do case $x in '' | *[!0-9]*) ;; *) printf '%s%s' "$s" "$x"; s=, ;; esac; done
	printf ']'
}
# A program as lowport finds one: the first regular executable file in the system directories.
tool() {
	for d in /usr/sbin /usr/bin /sbin /bin; do
		if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then jstr "$d/$1"; return 0; fi
	done
	printf null
}
# os-release's value for a key, quotes trimmed as lowport trims them.
osr() {
	for f in /etc/os-release /usr/lib/os-release; do
		if [ -f "$f" ]; then
			awk -v k="$1" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2); gsub(/^["\047]+|["\047]+$/, "", v); print v; exit }' "$f"
			return 0
		fi
	done
}
# Bytes LEN at OFFSET of FILE as one unsigned number (LE: 1 little-endian); empty past the end.
uint() {
	od -An -v -tu1 -j "$2" -N "$3" "$1" 2> /dev/null | awk -v le="$4" -v n="$3" '
		{ for (i = 1; i <= NF; i++) b[k++] = $i }
		END { if (k != n) exit; v = 0; for (i = 0; i < k; i++) v = v * 256 + (le == 1 ? b[k - 1 - i] : b[i]); printf "%.0f\n", v }'
}
# ELF facts as lowport reads them: static when no program header is PT_INTERP, Go when the
# section-name table names .go.buildinfo or .note.go.buildid; malformed headers: "other".
elf() {
	f=$1
	set -- $(od -An -v -tu1 -j 4 -N 2 "$f")
	case "${1:-} ${2:-}" in 1\ 1 | 1\ 2 | 2\ 1 | 2\ 2) ;; *) printf '{"kind": "other"}'; return 0 ;; esac
	w=$1; le=0; [ "$2" = 1 ] && le=1
	if [ "$w" = 2 ]; then a=8; phoff=$(uint "$f" 32 8 $le); psz=$(uint "$f" 54 2 $le); pn=$(uint "$f" 56 2 $le); want=56
		shoff=$(uint "$f" 40 8 $le); ssz=$(uint "$f" 58 2 $le); sn=$(uint "$f" 60 2 $le); sx=$(uint "$f" 62 2 $le); swant=64; o1=24; o2=32
	else a=4; phoff=$(uint "$f" 28 4 $le); psz=$(uint "$f" 42 2 $le); pn=$(uint "$f" 44 2 $le); want=32
		shoff=$(uint "$f" 32 4 $le); ssz=$(uint "$f" 46 2 $le); sn=$(uint "$f" 48 2 $le); sx=$(uint "$f" 50 2 $le); swant=40; o1=16; o2=20
	fi
	if [ -z "$phoff" ] || [ "$psz" != "$want" ] || [ "${pn:-0}" -eq 0 ] || [ $((psz * pn)) -gt 65536 ]; then
		printf '{"kind": "other"}'; return 0
	fi
	interp=$(od -An -v -tu1 -j "$phoff" -N $((psz * pn)) "$f" | awk -v sz="$psz" -v n="$pn" -v le=$le '
		{ for (i = 1; i <= NF; i++) b[k++] = $i }
		END { if (k != sz * n) { print "bad"; exit }
			for (e = 0; e < n; e++) { o = e * sz; t = le == 1 ? b[o] + 256 * b[o + 1] + 65536 * b[o + 2] + 16777216 * b[o + 3] : b[o + 3] + 256 * b[o + 2] + 65536 * b[o + 1] + 16777216 * b[o]
				if (t == 3) { print "yes"; exit } }
			print "no" }')
	case $interp in yes) static=false ;; no) static=true ;; *) printf '{"kind": "other"}'; return 0 ;; esac
	go=false
	if [ -n "$shoff" ] && [ "$ssz" = "$swant" ] && [ -n "$sn" ] && [ -n "$sx" ] && [ "$sx" -lt "$sn" ]; then
		h=$((shoff + sx * ssz))
		so=$(uint "$f" $((h + o1)) $a $le)
		sl=$(uint "$f" $((h + o2)) $a $le)
		if [ -n "$so" ] && [ -n "$sl" ]; then
			[ "$sl" -le 1048576 ] || sl=1048576
			if od -An -v -tu1 -j "$so" -N "$sl" "$f" | awk '
				{ for (i = 1; i <= NF; i++) { if ($i == 0) { if (s == ".go.buildinfo" || s == ".note.go.buildid") f = 1; s = "" } else s = s sprintf("%c", $i < 128 ? $i : 63) } }
				END { exit !f }'; then go=true; fi
		fi
	fi
	printf '{"kind": "elf", "static_linked": %s, "go": %s}' "$static" "$go"
}
"#;

fn json_list<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| anyhow::Error::from(e).into())
}

/// The collector for `family`, reading what `needs` names.
pub fn script(family: &str, want: &Want, needs: &Wanted) -> Result<String> {
    let digest = super::sh::digest_command(family)
        .filter(|_| family != "windows" && family != "linux")
        .ok_or_else(|| {
            bad(format!(
                "no collector is known for OS family {family} (on Linux and Windows, run `lowport \
                 detect --json` there)"
            ))
        })?;
    let mut s = String::from("#!/bin/sh\n# shellcheck disable=SC2016,SC2046\n");
    s.push_str(&format!(
        "# lowport facts-script for {family}, made by lowport {}.\n",
        env!("CARGO_PKG_VERSION")
    ));
    s.push_str(
        "# Run it as root on the target (lowport need not be installed there), then plan from its\n\
         # output elsewhere:  sh facts.sh > facts.json;  lowport plan --facts facts.json ...\n\
         # It only reads: os-release/uname/sw_vers, the programs below in /usr/sbin /usr/bin /sbin\n\
         # /bin, the files and kernel settings the methods of this OS read, the accounts and the\n\
         # binary named. Not read by a portable script (so absent or empty in the document): the\n\
         # binary's mount, its ACL entries (an ACL shown by `ls -l` is reported as a possible\n\
         # writer), whether it is the same file as an interpreter under another name, listeners.\n\
         # SC2016: the awk programs are single-quoted on purpose; SC2046: `set -- $(od …)` splits\n\
         # od's numbers on purpose.\n",
    );
    s.push_str(
        "set -u\nOPATH=${PATH:-/usr/bin:/bin}\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\n\
         LC_ALL=C\nexport LC_ALL\n",
    );
    s.push_str(&format!("J={}\n", q("awk", JSON_AWK)?));
    s.push_str(&super::sh::HELPERS.replace("DIGEST", digest));
    s.push_str(HELPERS);

    let interps = crate::facts::binary::INTERPRETERS.join(" | ");
    let family_q = key(family)?;
    // os: os-release where the OS has one, else uname (and sw_vers on macOS).
    let (id_fallback, version_fallback, pretty_fallback) = match family {
        "macos" => (
            "macos",
            "sw_vers -productVersion",
            "printf '%s %s' \"$(sw_vers -productName)\" \"$(sw_vers -productVersion)\"",
        ),
        "freebsd" => (
            "freebsd",
            "uname -r | sed 's/-.*//'",
            "printf '%s %s' \"$(uname -s)\" \"$(uname -r)\"",
        ),
        _ => (
            family,
            "uname -r",
            "printf '%s %s' \"$(uname -s)\" \"$(uname -r)\"",
        ),
    };
    s.push_str(&format!(
        r#"
id=$(osr ID); [ -n "$id" ] || id={id_fallback}
version=$(osr VERSION_ID); [ -n "$version" ] || version=$({version_fallback})
pretty=$(osr PRETTY_NAME); [ -n "$pretty" ] || pretty=$({pretty_fallback})
pid1=$(ps -o comm= -p 1 2> /dev/null); pid1=${{pid1##*/}}
euid=$(id -u)
if [ "$euid" = 0 ]; then is_root=true; else is_root=false; fi
[ "$euid" = 0 ] || printf 'facts-script: not root: files only root may read are left unknown\n' >&2

printf '{{\n"format_version": 1,\n"root": "/",\n"netns": null,\n'
printf '"hostname": %s,\n' "$(jstr "$(uname -n)")"
printf '"os": {{"family": %s, "id": %s, "version_id": %s, "pretty_name": %s, "kernel": %s}},\n' {family_q} "$(jstr "$id")" "$(jstr "$version")" "$(jstr "$pretty")" "$(jstr "$(uname -r)")"
printf '"init": {{"pid1": %s, "systemd": false, "systemd_version": null}},\n' "$(jstr "$pid1")"
printf '"is_root": %s,\n"euid": %s,\n' "$is_root" "$(num "$euid")"
printf '"unprivileged_port_start": null,\n"local_port_range": null,\n"kernel_no_file_caps": false,\n'
printf '"bounding_set_has_net_bind_service": false,\n"unprivileged_port_start_files": [],\n"listeners": [],\n'
"#
    ));
    s.push_str(&format!(
        "printf '\"ports\": %s,\\n' {}\n",
        q("ports", &json_list(&want.public_ports())?)?
    ));

    // tools
    let mut tools: Vec<&str> = crate::facts::TOOLS.to_vec();
    tools.extend(&needs.programs);
    tools.sort_unstable();
    tools.dedup();
    s.push_str("printf '\"tools\": {'\n");
    for (i, t) in tools.iter().enumerate() {
        s.push_str(&format!(
            "printf '%s%s: %s' {} {} \"$(tool {})\"\n",
            if i == 0 { "''" } else { "', '" },
            key(t)?,
            q("tool", t)?
        ));
    }
    s.push_str("printf '},\\n'\n");

    // accounts
    s.push_str("printf '\"accounts\": {\"users\": {'\nsep=\n");
    for u in crate::methods::accounts_for(want, None) {
        let name = q("user", &u)?;
        s.push_str(&format!(
            r#"if uid=$(id -u {name} 2> /dev/null); then
	printf '%s%s: {{"name": %s, "uid": %s, "gid": %s, "groups": %s, "group": %s}}' "$sep" {k} {k} "$(num "$uid")" "$(num "$(id -g {name})")" "$(nums "$(id -G {name})")" "$(g=$(id -gn {name} 2> /dev/null) && jstr "$g" || printf null)"
else printf '%s%s: null' "$sep" {k}; fi
sep=', '
"#,
            k = key(&u)?
        ));
    }
    s.push_str("printf '}, \"groups\": {'\nsep=\n");
    for g in want.group.iter() {
        let name = q("group", g)?;
        let lookup = if family == "macos" {
            format!(
                "dscl . -read /Groups/{name} PrimaryGroupID 2> /dev/null | awk '{{ print $2 }}'"
            )
        } else {
            format!(
                "{{ getent group {name} 2> /dev/null || awk -F: -v g={name} '$1 == g' /etc/group; }} | awk -F: 'NR == 1 {{ print $3 }}'"
            )
        };
        s.push_str(&format!(
            "printf '%s%s: %s' \"$sep\" {} \"$(num \"$({lookup})\")\"\nsep=', '\n",
            key(g)?
        ));
    }
    s.push_str("printf '}},\\n'\n");

    // service: a non-systemd OS has no unit file for it
    match want.service_name() {
        Some(n) => s.push_str(&format!(
            "printf '\"service\": {{\"name\": %s, \"path\": null, \"ours\": false, \"masked\": null, \"wanted_by\": [], \"user\": null, \"already_grants\": false}},\\n' {}\n",
            key(&n)?
        )),
        None => s.push_str("printf '\"service\": null,\\n'\n"),
    }

    // binary
    match &want.binary {
        None => s.push_str("printf '\"binary\": null,\\n'\n"),
        Some(b) => s.push_str(&binary(b, &interps)?),
    }

    // platform and the state of each needed file
    s.push_str("printf '\"platform\": {'\n");
    let interface = if needs == &Wanted::default() {
        "printf '\"interface\": null'\n".to_string()
    } else {
        r#"i=$(route -n get default 2> /dev/null | awk '$1 == "interface:" { print $2; exit }')
case $i in [A-Za-z]*) case $i in *[!A-Za-z0-9._-]*) i= ;; esac ;; *) i= ;; esac
[ ${#i} -le 15 ] || i=
if [ -n "$i" ]; then printf '"interface": %s' "$(jstr "$i")"; else printf '"interface": null'; fi
"#
        .to_string()
    };
    s.push_str(&interface);
    s.push_str("printf ', \"files\": {'\nsep=\n");
    for f in &needs.files {
        let p = q("path", f)?;
        s.push_str(&format!(
            "if [ ! -e {p} ] && [ ! -L {p} ]; then printf '%s%s: null' \"$sep\" {k}; sep=', '\n\
             elif [ -f {p} ] && [ -r {p} ]; then printf '%s%s: %s' \"$sep\" {k} \"$(jfile {p})\"; sep=', '; fi\n",
            k = key(f)?
        ));
    }
    s.push_str("printf '}, \"sysctls\": {'\nsep=\n");
    for k in &needs.sysctls {
        let kq = q("key", k)?;
        s.push_str(&format!(
            "if command -v sysctl > /dev/null 2>&1; then\n\
             \tif v=$(sysctl -n {kq} 2> /dev/null); then\n\
             \t\tv=${{v#\"${{v%%[! \t]*}}\"}}; v=${{v%\"${{v##*[! \t]}}\"}}\n\
             \t\tprintf '%s%s: %s' \"$sep\" {j} \"$(jstr \"$v\")\"\n\
             \telse printf '%s%s: null' \"$sep\" {j}; fi\n\tsep=', '\nfi\n",
            j = key(k)?
        ));
    }
    s.push_str("printf '}, \"modules\": {'\nsep=\n");
    if family == "freebsd" {
        for m in &needs.modules {
            let mq = q("module", m)?;
            s.push_str(&format!(
                "if command -v kldstat > /dev/null 2>&1; then\n\
                 \tif kldstat -q -m {mq}; then l=true; else l=false; fi\n\
                 \tprintf '%s%s: %s' \"$sep\" {k} \"$l\"; sep=', '\nfi\n",
                k = key(m)?
            ));
        }
    }
    s.push_str("printf '}},\\n\"host\": {\"files\": {'\nsep=\n");
    for f in &needs.files {
        let p = q("path", f)?;
        s.push_str(&format!(
            r#"if [ ! -e {p} ] && [ ! -L {p} ]; then
	printf '%s%s: {{"exists": false, "sha256": null, "identity": null, "uid": null, "gid": null, "xattrs": {{}}}}' "$sep" {k}; sep=', '
elif [ -f {p} ] && [ ! -L {p} ] && [ -r {p} ]; then
	set -- $(meta -ldn {p})
	h=$(digest {p} 2> /dev/null) && h=$(jstr "$h") || h=null
	printf '%s%s: {{"exists": true, "sha256": %s, "identity": null, "mode": "%s", "uid": %s, "gid": %s, "xattrs": {{}}}}' "$sep" {k} "$h" "$1" "$(num "$2")" "$(num "$3")"; sep=', '
fi
"#,
            k = key(f)?
        ));
    }
    s.push_str("printf '}}\\n}\\n'\n");
    Ok(s)
}

/// The binary's facts: where it is (PATH searched for a command name, every symlink followed,
/// component by component, as lowport resolves it), what it is, its owner and mode, and who
/// besides root could replace it by the mode bits of it and each directory above it.
fn binary(requested: &str, interps: &str) -> Result<String> {
    Ok(format!(
        r#"b={req}
case $b in
/*) bp=$b ;;
*)
	bp=
	old=$IFS; IFS=:
	for d in $OPATH; do
		case $d in /*) if [ -z "$bp" ] && [ -f "$d/$b" ] && [ -x "$d/$b" ]; then bp=$d/$b; fi ;; esac
	done
	IFS=$old ;;
esac
if [ -z "$bp" ]; then printf 'facts-script: the binary %s was not found on PATH; give its absolute path\n' "$b" >&2; exit 2; fi
# Resolve symlinks component by component, as lowport does.
done_=/ ; rest=${{bp#/}}; links=; count=0
while [ -n "$rest" ]; do
	c=${{rest%%/*}}
	case $rest in */*) rest=${{rest#*/}} ;; *) rest= ;; esac
	case $c in '' | .) continue ;; ..) done_=${{done_%/*}}; [ -n "$done_" ] || done_=/; continue ;; esac
	cand=${{done_%/}}/$c
	if [ -L "$cand" ]; then
		count=$((count + 1))
		if [ "$count" -gt 40 ]; then printf 'facts-script: too many symbolic links resolving %s\n' "$bp" >&2; exit 2; fi
		links="$links${{links:+, }}$(jstr "$cand")"
		t=$(linkto "$cand")
		case $t in /*) done_=/; rest=${{t#/}}${{rest:+/$rest}} ;; *) rest=$t${{rest:+/$rest}} ;; esac
	else
		done_=$cand
	fi
done
rp=$done_
if [ ! -f "$rp" ]; then printf 'facts-script: %s is not a regular file; give the service executable\n' "$rp" >&2; exit 2; fi
set -- $(od -An -v -tu1 -N 4 "$rp")
if [ "${{1:-}} ${{2:-}}" = '35 33' ]; then
	IFS= read -r line < "$rp" || :
	set -f
	# shellcheck disable=SC2086 # the #! line split into words, as the kernel reads it
	set -- ${{line#??}}
	set +f
	ip=${{1:-}}
	case $ip in */env) shift; for w in "$@"; do case $w in -*) ;; *) ip=$w; break ;; esac; done ;; esac
	exec_=$(printf '{{"kind": "script", "interpreter": %s}}' "$(jstr "$ip")")
elif [ "${{1:-}} ${{2:-}} ${{3:-}} ${{4:-}}" = '127 69 76 70' ]; then
	exec_=$(elf "$rp")
else
	exec_='{{"kind": "other"}}'
fi
base=${{rp##*/}}
while :; do case $base in *[0-9.]) base=${{base%?}} ;; *) break ;; esac; done
case $base in {interps}) interp=$(jstr "${{rp##*/}}") ;; *) interp=null ;; esac
set -- $(meta -ldn "$rp"); mode=$1; uid=$2; gid=$3
set -- $(meta -ld "$rp"); owner=$2; group=$3
# Who besides root could replace it: the file and every directory above it, by owner and mode
# bits (a sticky directory above a root-owned entry is safe); an ACL (`+` after the mode in
# `ls -l`) is reported, since this script cannot read it.
writers=; below=1; e=$rp
while :; do
	# shellcheck disable=SC2012 # ls -l shows whether an ACL is there
	set -f; set -- $(ls -ldn -- "$e"); set +f
	ms=$1; set -- $(meta -ld "$e"); on=$2; gn=$3
	set -- $(meta -ldn "$e"); m=$1; u=$2; g=$3
	if [ -d "$e" ]; then what=directory; else what='the file'; fi
	if [ "$u" != 0 ]; then writers="$writers${{writers:+, }}$(jstr "$what $e is owned by $on, who can replace it")"; fi
	if [ -d "$e" ] && [ $((0$m & 512)) -ne 0 ] && [ "$below" = 1 ]; then :; else
		if [ $((0$m & 16)) -ne 0 ] && [ "$g" != 0 ]; then writers="$writers${{writers:+, }}$(jstr "$what $e is writable by group $gn")"; fi
		if [ $((0$m & 2)) -ne 0 ]; then writers="$writers${{writers:+, }}$(jstr "$what $e is writable by every user")"; fi
		case $ms in ??????????+*) writers="$writers${{writers:+, }}$(jstr "$what $e has an access control list, which this script does not read: check who it lets write")" ;; esac
	fi
	if [ "$u" = 0 ]; then below=1; else below=0; fi
	[ "$e" != / ] || break
	e=${{e%/*}}; [ -n "$e" ] || e=/
done
printf '"binary": {{"requested": %s, "path": %s, "symlinks": [%s], "exec": %s, "interpreter": %s, "acl": [], "uid": %s, "gid": %s, "owner": %s, "group": %s, "mode": %s, "writable_by_non_root": [%s], "mount": null, "capability": null, "units": []}},\n' "$(jstr "$b")" "$(jstr "$rp")" "$links" "$exec_" "$interp" "$(num "$uid")" "$(num "$gid")" "$(jstr "$owner")" "$(jstr "$group")" "$((0$mode))" "$writers"
"#,
        req = q("binary", requested)?,
    ))
}

//! Facts about the target binary: where it really is, what it is, who could replace it, which
//! mount it is on, the capabilities it carries, and which systemd units launch it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::caps::FileCaps;
use super::elf::{self, ExecKind};
use super::mounts::{self, Mount};
use super::users::UserDb;
use super::{acl, files};
use crate::error::{Error, Result};
use crate::os::MetadataExt;
use crate::root::Root;
use crate::xattr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryFacts {
    /// What the operator gave: a path or a command name.
    pub requested: String,
    /// The real file, every symlink resolved (a path inside `--root`).
    pub path: PathBuf,
    /// The symlinks followed on the way, if any.
    pub symlinks: Vec<PathBuf>,
    pub exec: ExecKind,
    /// Set when the file is itself a general-purpose interpreter (python3, perl, bash, …), by
    /// its name or by being the same file or content as an installed one.
    pub interpreter: Option<String>,
    /// Named ACL entries (`user:nobody:r-x`): access the mode bits do not show.
    #[serde(default)]
    pub acl: Vec<acl::Named>,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub mode: u32,
    /// Why someone other than root could replace or alter the file, one reason per entry.
    pub writable_by_non_root: Vec<String>,
    pub mount: Option<Mount>,
    pub capability: Option<FileCaps>,
    /// Enabled or admin-defined systemd services whose ExecStart runs this binary.
    pub units: Vec<UnitRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRef {
    pub name: String,
    pub path: PathBuf,
    /// `NoNewPrivileges=yes` (or `DynamicUser=yes`, which implies it): file capabilities are
    /// ignored when this unit execs the binary.
    pub no_new_privileges: bool,
}

/// Interpreters by base name (a version suffix such as `python3.11` is stripped first).
pub const INTERPRETERS: &[&str] = &[
    "python",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "bash",
    "sh",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "fish",
    "php",
    "lua",
    "luajit",
    "java",
    "tclsh",
    "wish",
    "Rscript",
    "busybox",
    "env",
    "deno",
    "bun",
    "pwsh",
    "guile",
    "awk",
    "gawk",
    "mawk",
    "osascript",
    "expect",
];

pub fn interpreter_name(path: &Path) -> Option<String> {
    interpreter_named(path.file_name()?.as_encoded_bytes()).map(str::to_string)
}

/// The file name, when it names an interpreter.
fn interpreter_named(name: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(name).ok()?;
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS.contains(&base).then_some(name)
}

/// Where interpreters are installed.
const INTERPRETER_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"];

fn digest(path: &Path) -> Option<Vec<u8>> {
    use sha2::Digest;
    use std::io::Read;
    let mut bytes = Vec::new();
    files::open_regular(path)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    Some(sha2::Sha256::digest(bytes).to_vec())
}

/// The interpreter names one program directory held when it was listed, and what identified
/// the directory then. Adding, removing or renaming an entry sets a directory's change time
/// (which, unlike its modification time, `utimensat` cannot set), so while it is unchanged the
/// names are the same, and the next command can skip listing the thousand-odd entries of
/// /usr/bin (the slowest read of planning). Each named file is still examined afresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Listing {
    dev: u64,
    ino: u64,
    /// Change time, modification time (seconds, nanoseconds) and size: a filesystem that does
    /// not keep one of them up to date is unlikely to neglect all three.
    times: [(i64, i64); 2],
    size: u64,
    names: Vec<String>,
}

/// The program directories' listings a command reused or made, kept by the caller between
/// commands (in the state directory). What it reads is checked, never trusted: an entry is used
/// only for the very directory, unchanged, and only names of interpreters are kept.
#[derive(Debug, Default)]
pub struct Listings {
    known: std::cell::RefCell<BTreeMap<PathBuf, Listing>>,
    changed: std::cell::Cell<bool>,
}

/// How much older than the listing a directory's change time must be for the listing to be
/// kept: a change in the same tick of the kernel's coarse clock could leave the time as it was.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

impl Listings {
    /// Listings saved by [`Listings::to_json`]; anything unreadable counts as none.
    pub fn parse(bytes: &[u8]) -> Listings {
        let mut known: BTreeMap<PathBuf, Listing> =
            serde_json::from_slice(bytes).unwrap_or_default();
        known.retain(|dir, l| {
            dir.is_absolute()
                && l.names
                    .iter()
                    .all(|n| interpreter_named(n.as_bytes()).is_some())
        });
        Listings {
            known: known.into(),
            changed: Default::default(),
        }
    }

    /// The listings to save, when this command made any.
    pub fn to_json(&self) -> Option<Vec<u8>> {
        if !self.changed.get() {
            return None;
        }
        serde_json::to_vec(&*self.known.borrow()).ok()
    }

    /// The interpreter names in `dir` (a host path; `meta` is its metadata, links followed):
    /// the saved ones while the directory is unchanged, else a fresh listing. A listing that
    /// fails part-way still has the names it gave judged, and is not kept.
    fn names(&self, dir: &Path, meta: &std::fs::Metadata, keep: bool) -> Vec<String> {
        if !(keep && keeps_times(dir)) {
            return list_interpreters(dir).0;
        }
        self.names_at(dir, meta, std::time::SystemTime::now())
    }

    /// [`Listings::names`] as of `now`.
    fn names_at(
        &self,
        dir: &Path,
        meta: &std::fs::Metadata,
        now: std::time::SystemTime,
    ) -> Vec<String> {
        let ctime = (meta.ctime(), meta.ctime_nsec());
        let times = [ctime, (meta.mtime(), meta.mtime_nsec())];
        if let Some(l) = self.known.borrow().get(dir)
            && (l.dev, l.ino, l.times, l.size) == (meta.dev(), meta.ino(), times, meta.size())
        {
            return l.names.clone();
        }
        let (names, complete) = list_interpreters(dir);
        // A time before 1970 or past the clock's range (or none, as on Windows) is never settled.
        let settled = u64::try_from(ctime.0)
            .ok()
            .and_then(|secs| {
                std::time::UNIX_EPOCH
                    .checked_add(std::time::Duration::new(secs, u32::try_from(ctime.1).ok()?))
            })
            .and_then(|changed| changed.checked_add(SETTLED))
            .is_some_and(|t| t < now);
        if complete && settled {
            let listing = Listing {
                dev: meta.dev(),
                ino: meta.ino(),
                times,
                size: meta.size(),
                names: names.clone(),
            };
            self.known.borrow_mut().insert(dir.to_path_buf(), listing);
            self.changed.set(true);
        }
        names
    }
}

/// The interpreter names a directory lists, and whether the listing was complete (a listing
/// that fails part-way still has the names it gave judged).
fn list_interpreters(dir: &Path) -> (Vec<String>, bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), false);
    };
    let mut complete = true;
    let names = entries
        .filter_map(|e| e.map_err(|_| complete = false).ok())
        .filter_map(|e| interpreter_named(e.file_name().as_encoded_bytes()).map(str::to_string))
        .collect();
    (names, complete)
}

/// Whether the filesystem holding `dir` sets a directory's times for every entry change made
/// through this kernel: the local disk filesystems and tmpfs. Not overlayfs (an entry added to a
/// lower layer shows in no time of the merged directory), FUSE or network filesystems, whose
/// listings are therefore never kept.
#[cfg(target_os = "linux")]
fn keeps_times(dir: &Path) -> bool {
    use nix::sys::statfs::{BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, FsType, TMPFS_MAGIC, statfs};
    // nix names no constant for XFS (linux/magic.h: XFS_SUPER_MAGIC).
    let xfs = FsType(0x5846_5342);
    statfs(dir).is_ok_and(|s| {
        [EXT4_SUPER_MAGIC, BTRFS_SUPER_MAGIC, TMPFS_MAGIC, xfs].contains(&s.filesystem_type())
    })
}

/// Elsewhere no filesystem is vouched for: every command lists the directories.
#[cfg(not(target_os = "linux"))]
fn keeps_times(_dir: &Path) -> bool {
    false
}

/// The installed interpreter this file is, by content: the same file (device and inode) or the
/// same bytes as an interpreter in the host's or the root's system directories, so a renamed or
/// copied python3 is still python3. Only files of equal size are hashed.
fn same_as_interpreter(
    root: &Root,
    host: &Path,
    meta: &std::fs::Metadata,
    listings: &Listings,
) -> Option<String> {
    let mut roots = vec![Root::new("/".into())];
    if !root.is_host() {
        roots.push(root.clone());
    }
    let mut own = None;
    // /bin and /usr/bin are one directory on merged-/usr systems: each is read once.
    let mut seen = BTreeSet::new();
    for r in &roots {
        for dir in INTERPRETER_DIRS {
            let dir_host = r.host(Path::new(dir));
            let Ok(m) = std::fs::metadata(&dir_host) else {
                continue;
            };
            if !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            // Listings are kept for the host's own directories only: a `--root` tree is often an
            // image or a container's filesystem, swapped or changed from outside.
            for name in listings.names(&dir_host, &m, r.is_host()) {
                let in_root = Path::new(dir).join(&name);
                let candidate = r.host(&in_root);
                let Ok(m) = std::fs::metadata(&candidate) else {
                    continue;
                };
                if !m.is_file() || m.len() != meta.len() {
                    continue;
                }
                if (m.dev(), m.ino()) == (meta.dev(), meta.ino()) {
                    return Some(name);
                }
                let mine = own.get_or_insert_with(|| digest(host));
                if mine.is_some() && *mine == digest(&candidate) {
                    return Some(format!("{name} (a copy of {})", in_root.display()));
                }
            }
        }
    }
    None
}

fn locate(root: &Root, requested: &str) -> Result<PathBuf> {
    if requested.starts_with('/') {
        return Ok(PathBuf::from(requested));
    }
    // A command name: search PATH, each directory taken under the root.
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
        let candidate = dir.join(requested);
        let host = root.host(&candidate);
        if let Ok(m) = std::fs::metadata(&host)
            && m.is_file()
            && m.mode() & 0o111 != 0
        {
            return Ok(candidate);
        }
    }
    Err(Error::Invalid(format!(
        "binary '{requested}' was not found on PATH{}; give its absolute path with --binary",
        if root.is_host() {
            String::new()
        } else {
            format!(" under {}", root.dir().display())
        }
    )))
}

/// Why someone other than root could replace or alter the file: it and every directory above
/// it, by owner, mode bits and ACL; under an alternate root, the root directory's own host
/// directories too (whoever may rename one of them can swap the whole tree).
fn non_root_writers(root: &Root, path: &Path, db: &UserDb) -> Vec<String> {
    let names = |user: bool, id: u32| db.name(user, id);
    let inside = path
        .ancestors()
        .filter(|p| root.is_host() || *p != Path::new("/"))
        .map(|p| (root.host(p), p.to_path_buf()));
    let (mut reasons, below_root_owned) = writers_of_chain(inside, true, &names);
    if !root.is_host() {
        reasons.extend(root_writers(root.dir(), below_root_owned));
    }
    reasons
}

/// Why someone other than root could replace the alternate root `dir`: it and each host
/// directory above it, named by the host's own account database. `below_root_owned` says the
/// entry the caller cares about inside `dir` is root's (see `acl::writers`).
pub fn root_writers(dir: &Path, below_root_owned: bool) -> Vec<String> {
    let host = UserDb::new(&Root::new(PathBuf::from("/")));
    let names = |user: bool, id: u32| host.name(user, id);
    // Resolved one component at a time, as the kernel does, so that every link met on the way
    // (in the path as given or in a link's target, `..` included) is judged with the folder it
    // is in: whoever may replace one decides where the tree really is. Then the folders where
    // it ends up.
    let mut reasons = Vec::new();
    let mut at = PathBuf::from("/");
    let mut rest: Vec<std::ffi::OsString> = dir
        .components()
        .rev()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut links = 0;
    // Folders stepped through that the end may not lie below (left by `..`): whoever may
    // replace one of them could have put a link there.
    let mut visited: Vec<PathBuf> = Vec::new();
    while let Some(part) = rest.pop() {
        match part.to_str() {
            Some("/") | Some(".") => continue,
            Some("..") => {
                at.pop();
                continue;
            }
            _ => {}
        }
        let next = at.join(&part);
        let Ok(m) = std::fs::symlink_metadata(&next) else {
            return vec![format!("{} cannot be resolved", dir.display())];
        };
        if !m.file_type().is_symlink() {
            visited.push(next.clone());
            at = next;
            continue;
        }
        links += 1;
        let Some(target) = std::fs::read_link(&next).ok().filter(|_| links <= 40) else {
            return vec![format!(
                "{} cannot be resolved (a loop of links?)",
                dir.display()
            )];
        };
        if m.uid() != 0 {
            let owner = names(true, m.uid()).unwrap_or_else(|| m.uid().to_string());
            reasons.push(format!(
                "the link {} is owned by {owner}, who can point it elsewhere",
                next.display()
            ));
        }
        // Whoever may replace the folder the link is in may replace the link.
        let chain = at.ancestors().map(|a| (a.to_path_buf(), a.to_path_buf()));
        reasons.extend(writers_of_chain(chain, m.uid() == 0, &names).0);
        if target.is_absolute() {
            at = PathBuf::from("/");
        }
        rest.extend(
            target
                .components()
                .rev()
                .map(|c| c.as_os_str().to_os_string()),
        );
    }
    let chain = at.ancestors().map(|p| (p.to_path_buf(), p.to_path_buf()));
    reasons.extend(writers_of_chain(chain, below_root_owned, &names).0);
    for v in visited.iter().filter(|v| !at.starts_with(v)) {
        let chain = v.ancestors().map(|p| (p.to_path_buf(), p.to_path_buf()));
        reasons.extend(writers_of_chain(chain, true, &names).0);
    }
    let mut seen = std::collections::BTreeSet::new();
    reasons.retain(|r| seen.insert(r.clone()));
    reasons
}

/// `acl::writers` of each entry, `(host path, shown path)`, from the innermost up, a directory
/// judged with the owner of the entry below it; and whether the last one judged is root's.
/// Stops at the first that cannot be read.
fn writers_of_chain(
    chain: impl Iterator<Item = (PathBuf, PathBuf)>,
    mut below_root_owned: bool,
    names: &dyn Fn(bool, u32) -> Option<String>,
) -> (Vec<String>, bool) {
    let mut reasons = Vec::new();
    for (host, shown) in chain {
        let Ok(m) = std::fs::metadata(&host) else {
            break;
        };
        reasons.extend(acl::writers(&host, &shown, &m, below_root_owned, names));
        below_root_owned = m.uid() == 0;
    }
    (reasons, below_root_owned)
}

/// Every directory systemd loads system units from, highest precedence first (systemd.unit(5),
/// "System Unit Search Path"): an admin's unit in /usr/local/lib or a generator's in /run must
/// be found, or a new unit in /etc would shadow it.
fn unit_dirs() -> [&'static str; 13] {
    [
        "/etc/systemd/system.control",
        "/run/systemd/system.control",
        "/run/systemd/transient",
        "/run/systemd/generator.early",
        "/etc/systemd/system",
        "/etc/systemd/system.attached",
        "/run/systemd/system",
        "/run/systemd/system.attached",
        "/run/systemd/generator",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
        "/run/systemd/generator.late",
    ]
}

/// The directories where an admin's units (and their `.wants` links) live.
const ADMIN_UNIT_DIRS: [&str; 2] = ["/etc/systemd/system", "/run/systemd/system"];

/// A unit setting as systemd reads booleans.
pub fn yes(v: &str) -> bool {
    matches!(v.trim(), "yes" | "true" | "on" | "1")
}

/// The services that can start without someone naming them: every service in the admin
/// directories (/etc, /run) and every service enabled through a `.wants`/`.requires` link.
/// Disabled vendor units are left out: they only run when started by hand, and reading every
/// vendor unit would cost more than all other detection together.
fn candidate_units(root: &Root) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let services = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(root.host(dir))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    for dir in &ADMIN_UNIT_DIRS {
        for name in services(Path::new(dir)) {
            if name.ends_with(".wants") || name.ends_with(".requires") {
                let linked = services(&Path::new(dir).join(&name));
                names.extend(linked.into_iter().filter(|n| n.ends_with(".service")));
            } else if name.ends_with(".service") {
                names.insert(name);
            }
        }
    }
    names
}

/// The file defining a unit, by directory precedence; an instance falls back to its template.
pub fn unit_file(root: &Root, name: &str) -> Option<PathBuf> {
    unit_file_in(root, &unit_dirs(), name)
}

/// The unit directories that exist under the root, each once (on a merged-/usr system
/// /lib/systemd/system is /usr/lib/systemd/system), by precedence: where a unit can be found.
fn present_unit_dirs(root: &Root) -> Vec<&'static str> {
    let mut seen = BTreeSet::new();
    unit_dirs()
        .into_iter()
        .filter(|d| {
            std::fs::metadata(root.host(Path::new(d)))
                .is_ok_and(|m| m.is_dir() && seen.insert((m.dev(), m.ino())))
        })
        .collect()
}

fn unit_file_in(root: &Root, dirs: &[&str], name: &str) -> Option<PathBuf> {
    let template = name
        .split_once('@')
        .map(|(head, _)| format!("{head}@.service"));
    [Some(name.to_string()), template]
        .into_iter()
        .flatten()
        .find_map(|n| {
            dirs.iter()
                .map(|d| Path::new(d).join(&n))
                .find(|p| root.host(p).is_file())
        })
}

/// The link that masks a unit (`NAME -> /dev/null`), when the first unit directory (by
/// precedence) holding an entry for the name holds that.
pub fn masked(root: &Root, name: &str) -> Option<PathBuf> {
    let first = unit_dirs()
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| std::fs::symlink_metadata(root.entry(p)).is_ok())?;
    let target = std::fs::read_link(root.entry(&first)).ok()?;
    (target == Path::new("/dev/null")).then_some(first)
}

/// A unit's own text followed by its drop-ins from every unit directory, in the order systemd
/// applies them.
pub fn unit_texts(root: &Root, unit: &str, own: String) -> Vec<String> {
    let mut texts = vec![own];
    for d in unit_dirs() {
        let dropins = root.host(&Path::new(d).join(format!("{unit}.d")));
        let Ok(list) = std::fs::read_dir(dropins) else {
            continue;
        };
        let mut confs: Vec<_> = list.flatten().map(|e| e.path()).collect();
        confs.sort();
        texts.extend(confs.iter().filter_map(|c| files::read_to_string(c).ok()));
    }
    texts
}

/// The last value a unit and its drop-ins give `key` (an empty assignment resets it).
pub fn unit_setting(texts: &[String], key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    let mut value = None;
    for l in texts.iter().flat_map(|t| t.lines()) {
        if let Some(v) = l.trim().strip_prefix(&prefix) {
            value = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    value
}

fn units_launching(root: &Root, names: &[PathBuf]) -> Vec<UnitRef> {
    let mut out = Vec::new();
    // Each of the candidates is looked up only where a unit can be.
    let dirs = present_unit_dirs(root);
    for unit in candidate_units(root) {
        let Some(path) = unit_file_in(root, &dirs, &unit) else {
            continue;
        };
        let Ok(text) = files::read_to_string(&root.host(&path)) else {
            continue;
        };
        let launches = text.lines().any(|l| {
            let Some(v) = l.trim().strip_prefix("ExecStart=") else {
                return false;
            };
            let prog = v.trim_start_matches(['@', '-', ':', '+', '!']);
            let prog = prog.split_whitespace().next().unwrap_or("");
            names.iter().any(|n| Path::new(prog) == n)
        });
        if !launches {
            continue;
        }
        let texts = unit_texts(root, &unit, text);
        let set = |key| unit_setting(&texts, key).is_some_and(|v| yes(&v));
        let nnp = set("NoNewPrivileges") || set("DynamicUser");
        out.push(UnitRef {
            name: unit,
            path,
            no_new_privileges: nnp,
        });
    }
    out
}

impl BinaryFacts {
    /// Re-reads what an apply changes on the file itself: owner, mode and capabilities. Where it
    /// is, what it is and what launches it stay as gathered.
    pub fn refresh(&mut self, root: &Root, db: &UserDb) -> Result<()> {
        let host = root.host(&self.path);
        let meta = std::fs::metadata(&host)?;
        self.uid = meta.uid();
        self.gid = meta.gid();
        self.owner = db
            .user_name(meta.uid())
            .unwrap_or_else(|| meta.uid().to_string());
        self.group = db
            .group_name(meta.gid())
            .unwrap_or_else(|| meta.gid().to_string());
        self.mode = meta.mode() & 0o7777;
        self.capability =
            xattr::get(&host, xattr::CAPABILITY)?.and_then(|raw| FileCaps::parse(&raw));
        Ok(())
    }
}

/// The binary as found: the path given (or found on PATH), the file it resolves to, and that
/// file's metadata.
pub struct Found {
    requested: String,
    given: PathBuf,
    resolved: crate::root::Resolved,
    host: PathBuf,
    meta: std::fs::Metadata,
}

/// Finds the binary the operator named; it must be a regular file.
pub fn find(root: &Root, requested: &str) -> Result<Found> {
    let given = locate(root, requested)?;
    let resolved = root
        .resolve(&given)
        .map_err(|e| Error::Invalid(format!("cannot resolve binary {}: {e}", given.display())))?;
    let host = root.host(&resolved.path);
    let meta = std::fs::metadata(&host)
        .map_err(|e| Error::Invalid(format!("cannot read binary {}: {e}", host.display())))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{} is not a regular file; give the service's executable",
            resolved.path.display()
        )));
    }
    Ok(Found {
        requested: requested.to_string(),
        given,
        resolved,
        host,
        meta,
    })
}

/// The general-purpose interpreter the binary is, by its name or by being one installed.
pub fn interpreter(root: &Root, found: &Found, listings: &Listings) -> Option<String> {
    interpreter_name(&found.resolved.path)
        .or_else(|| same_as_interpreter(root, &found.host, &found.meta, listings))
}

/// Everything else about the binary; `interpreter` is what [`interpreter`] found.
pub fn describe(
    root: &Root,
    found: &Found,
    db: &UserDb,
    interpreter: Option<String>,
) -> Result<BinaryFacts> {
    let Found {
        requested,
        given,
        resolved,
        host,
        meta,
    } = found;
    let exec = elf::classify(host)?;
    let capability = xattr::get(host, xattr::CAPABILITY)?.and_then(|raw| FileCaps::parse(&raw));
    let mut names = resolved.symlinks.clone();
    names.push(resolved.path.clone());
    names.push(given.clone());
    Ok(BinaryFacts {
        requested: requested.clone(),
        interpreter,
        acl: acl::named(host, &|user, id| db.name(user, id)).map_err(|e| {
            Error::Invalid(format!("cannot read the ACL of {}: {e}", host.display()))
        })?,
        symlinks: resolved.symlinks.clone(),
        exec,
        uid: meta.uid(),
        gid: meta.gid(),
        owner: db
            .user_name(meta.uid())
            .unwrap_or_else(|| meta.uid().to_string()),
        group: db
            .group_name(meta.gid())
            .unwrap_or_else(|| meta.gid().to_string()),
        mode: meta.mode() & 0o7777,
        writable_by_non_root: non_root_writers(root, &resolved.path, db),
        mount: mounts::for_path(host),
        capability,
        units: units_launching(root, &names),
        path: resolved.path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listings that hold an entry matching `dir` exactly, naming `ruby` (which `dir` lacks).
    fn forged_for(dir: &Path) -> Listings {
        let m = std::fs::metadata(dir).unwrap();
        let listings = Listings::default();
        listings.known.borrow_mut().insert(
            dir.to_path_buf(),
            Listing {
                dev: m.dev(),
                ino: m.ino(),
                times: [(m.ctime(), m.ctime_nsec()), (m.mtime(), m.mtime_nsec())],
                size: m.size(),
                names: vec!["ruby".into()],
            },
        );
        listings
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn listings_are_used_only_where_kept() {
        // procfs stands for every filesystem outside the allow-list (overlayfs, FUSE, NFS): even
        // an entry that matches is not used there.
        assert!(!keeps_times(Path::new("/proc")));
        let proc = Path::new("/proc/self");
        let listings = forged_for(proc);
        let names = listings.names(proc, &std::fs::metadata(proc).unwrap(), true);
        assert!(!names.contains(&"ruby".to_string()), "{names:?}");
        // Nor for a directory that is not the host's own (a `--root` tree), whatever it is on.
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("python3"), "").unwrap();
        let listings = forged_for(t.path());
        let meta = std::fs::metadata(t.path()).unwrap();
        assert_eq!(listings.names(t.path(), &meta, false), ["python3"]);
        // Where it is kept (a filesystem that sets times), the matching entry is what is used.
        if keeps_times(t.path()) {
            assert_eq!(listings.names(t.path(), &meta, true), ["ruby"]);
        }
    }

    #[test]
    fn listings_are_reused_only_for_the_same_settled_directory() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("bin");
        std::fs::create_dir(&dir).unwrap();
        for name in ["python3", "fabio", "perl5.36"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let meta = || std::fs::metadata(&dir).unwrap();
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let now = std::time::SystemTime::now();
        // Changed just now: listed, but not kept (a change in the same clock tick could hide).
        let fresh = Listings::default();
        assert_eq!(
            sorted(fresh.names_at(&dir, &meta(), now)),
            ["perl5.36", "python3"]
        );
        assert!(fresh.to_json().is_none());
        // Settled: kept, and what is kept is what the next command uses.
        let later = now + std::time::Duration::from_secs(10);
        let first = Listings::default();
        first.names_at(&dir, &meta(), later);
        let saved = String::from_utf8(first.to_json().unwrap()).unwrap();
        assert!(
            saved.contains("python3") && !saved.contains("fabio"),
            "{saved}"
        );
        let forged = saved.replace("\"python3\"", "\"ruby\"");
        let next = Listings::parse(forged.as_bytes());
        assert_eq!(
            sorted(next.names_at(&dir, &meta(), later)),
            ["perl5.36", "ruby"]
        );
        assert!(next.to_json().is_none(), "nothing new to keep");
        // A name that is no interpreter's is never taken from the file: the entry is dropped.
        let bad = Listings::parse(saved.replace("\"python3\"", "\"x; rm\"").as_bytes());
        assert_eq!(
            sorted(bad.names_at(&dir, &meta(), later)),
            ["perl5.36", "python3"]
        );
        // An entry added to the directory changes its times: it is listed again. (Past a tick of
        // the coarse clock that stamps them, as the settling margin ensures outside a test.)
        std::thread::sleep(std::time::Duration::from_millis(30));
        std::fs::write(dir.join("node"), "").unwrap();
        let after = next.names_at(&dir, &meta(), later);
        assert_eq!(sorted(after), ["node", "perl5.36", "python3"]);
        // Unreadable saved listings count as none.
        assert!(Listings::parse(b"{not json").known.borrow().is_empty());
    }

    #[test]
    fn units_are_found_by_precedence_where_unit_directories_exist() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().to_path_buf());
        let put = |p: &str| {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "[Service]\n").unwrap();
        };
        put("usr/lib/systemd/system/a.service");
        put("usr/lib/systemd/system/b@.service");
        put("usr/lib/systemd/system/c.service");
        put("etc/systemd/system/c.service");
        // Merged /usr: /lib is /usr/lib.
        std::os::unix::fs::symlink("usr/lib", t.path().join("lib")).unwrap();
        let dirs = present_unit_dirs(&root);
        assert_eq!(dirs, ["/etc/systemd/system", "/usr/lib/systemd/system"]);
        for name in ["a.service", "b@x.service", "c.service", "none.service"] {
            assert_eq!(
                unit_file_in(&root, &dirs, name),
                unit_file(&root, name),
                "{name}"
            );
        }
        let found = |n| unit_file(&root, n).map(|p| p.display().to_string());
        assert_eq!(found("c.service").unwrap(), "/etc/systemd/system/c.service");
        assert_eq!(
            found("b@x.service").unwrap(),
            "/usr/lib/systemd/system/b@.service"
        );
    }

    #[test]
    fn interpreters_by_name() {
        assert_eq!(
            interpreter_name(Path::new("/usr/bin/python3.11")).as_deref(),
            Some("python3.11")
        );
        assert!(interpreter_name(Path::new("/usr/bin/bash")).is_some());
        assert!(interpreter_name(Path::new("/usr/local/bin/fabio")).is_none());
        assert!(interpreter_name(Path::new("/usr/bin/shellcheck")).is_none());
    }

    #[test]
    fn interpreters_by_content() {
        let python = std::fs::canonicalize("/usr/bin/python3").unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().to_path_buf());
        let judge = |p: &Path| {
            let meta = std::fs::metadata(p).unwrap();
            same_as_interpreter(&root, p, &meta, &Listings::default())
        };
        // The same file under another name (a hard link), where the filesystem allows one.
        let link = t.path().join("server");
        if std::fs::hard_link(&python, &link).is_ok() {
            assert!(judge(&link).is_some_and(|n| n.starts_with("python3")));
        }
        let copy = t.path().join("app");
        std::fs::copy(&python, &copy).unwrap();
        assert!(judge(&copy).is_some_and(|n| n.contains("a copy of /usr/bin/python3")));
        let other = t.path().join("true");
        std::fs::copy("/usr/bin/true", &other).unwrap();
        assert_eq!(judge(&other), None);
    }
}

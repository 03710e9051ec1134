//! The host seam: every read planning makes of the target host goes through [`Host`]. The live
//! host ([`LiveHost`], under `--root`) probes once per target and keeps each answer; those
//! answers are what `detect --json --method …` saves, and a facts document replays them
//! ([`FactsHost`]) on any machine, as any user. What a document does not hold is unknown
//! (`None`), never guessed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{FileState, observe_file, sha256};
use super::platform::Platform;
use super::users::{Account, UserDb};
use crate::root::Root;

/// An answer about the target host; `None` when it is not known (a facts document that does not
/// hold it).
pub type Known<T> = Option<T>;

/// Every answer planning needed, keyed by what was asked: the part of a facts document that
/// lets a plan be made elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Answers {
    /// In-root path → state (with a content hash for files lowport writes).
    pub files: BTreeMap<PathBuf, FileState>,
    /// In-root path → text (lossy UTF-8), or null when absent: the old side of a diff.
    pub texts: BTreeMap<PathBuf, Option<String>>,
    /// In-root path → the link's target, or null when it is not a link.
    pub links: BTreeMap<PathBuf, Option<PathBuf>>,
    /// sysctl key → live value, or null when the kernel lacks it.
    pub sysctls: BTreeMap<String, Option<String>>,
    /// A check command (shell-quoted for reading) → whether it exited 0.
    pub checks: BTreeMap<String, bool>,
    /// `UNIT-NAME sha256:CONTENT` → `systemd-analyze security` summary, or null without one.
    pub exposures: BTreeMap<String, Option<String>>,
    pub users: BTreeMap<String, Option<Account>>,
    pub user_names: BTreeMap<u32, Option<String>>,
    pub groups: BTreeMap<String, Option<u32>>,
    pub group_names: BTreeMap<u32, Option<String>>,
}

impl Answers {
    pub fn is_empty(&self) -> bool {
        self == &Answers::default()
    }
}

/// What planning reads of the target host.
pub trait Host {
    /// The directory the target's paths live under (for argv vectors and messages).
    fn root(&self) -> &Root;
    /// False when the answers come from a facts document, not this machine.
    fn is_live(&self) -> bool;
    /// The target's OS family (Rust's target_os names: `linux`, `freebsd`, …).
    fn family(&self) -> &str;
    /// A file's state; with `content`, its content hash too.
    fn file(&self, path: &Path, content: bool) -> std::io::Result<Known<FileState>>;
    /// A file's text for a diff; `Some(None)` when there is no such file.
    fn text(&self, path: &Path) -> Known<Option<String>>;
    fn link(&self, path: &Path) -> Known<Option<PathBuf>>;
    fn sysctl(&self, key: &str) -> Known<Option<String>>;
    /// Whether a read-only check command exits 0.
    fn check(&self, argv: &[String]) -> Known<bool>;
    /// `systemd-analyze security --offline=true` on a unit about to be written.
    fn exposure(&self, name: &str, content: &str) -> Known<Option<String>>;
    fn user(&self, name: &str) -> Known<Option<Account>>;
    fn user_name(&self, uid: u32) -> Known<Option<String>>;
    fn group_gid(&self, name: &str) -> Known<Option<u32>>;
    fn group_name(&self, gid: u32) -> Known<Option<String>>;
}

fn check_key(argv: &[String]) -> String {
    shell_words::join(argv)
}

fn exposure_key(name: &str, content: &str) -> String {
    format!("{name} sha256:{}", sha256(content.as_bytes()))
}

/// The running host under `--root`. Each target is read once; the answers are kept.
pub struct LiveHost {
    root: Root,
    db: UserDb,
    answers: RefCell<Answers>,
}

impl LiveHost {
    pub fn new(root: Root) -> LiveHost {
        LiveHost {
            db: UserDb::new(&root),
            root,
            answers: RefCell::new(Answers::default()),
        }
    }

    /// Everything read so far: what a facts document needs to plan the same request elsewhere.
    pub fn answers(&self) -> Answers {
        self.answers.borrow().clone()
    }

    /// The kept answer, or a probe whose answer is kept.
    fn kept<K: Ord + Clone, V: Clone>(
        &self,
        map: impl Fn(&mut Answers) -> &mut BTreeMap<K, V>,
        key: K,
        probe: impl FnOnce() -> V,
    ) -> V {
        if let Some(v) = map(&mut self.answers.borrow_mut()).get(&key) {
            return v.clone();
        }
        let v = probe();
        map(&mut self.answers.borrow_mut()).insert(key, v.clone());
        v
    }
}

impl Host for LiveHost {
    fn root(&self) -> &Root {
        &self.root
    }

    fn is_live(&self) -> bool {
        true
    }

    fn family(&self) -> &str {
        std::env::consts::OS
    }

    fn file(&self, path: &Path, content: bool) -> std::io::Result<Known<FileState>> {
        let kept = self.answers.borrow().files.get(path).cloned();
        // A state kept without its hash does not answer a question about content.
        if let Some(f) = kept.filter(|f| !content || !f.exists || f.sha256.is_some()) {
            return Ok(Some(f));
        }
        // The entry itself: a symlink there (a masked unit) is what a write replaces.
        let (state, bytes) = observe_file(&self.root.entry(path), content)?;
        let mut a = self.answers.borrow_mut();
        if content {
            // The bytes just read are the diff's old side too: the file is read once.
            let text = bytes.map(|b| String::from_utf8_lossy(&b).into_owned());
            a.texts.insert(path.to_path_buf(), text);
        }
        a.files.insert(path.to_path_buf(), state.clone());
        Ok(Some(state))
    }

    fn text(&self, path: &Path) -> Known<Option<String>> {
        Some(self.kept(
            |a| &mut a.texts,
            path.to_path_buf(),
            || {
                super::files::read(&self.root.host(path))
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            },
        ))
    }

    fn link(&self, path: &Path) -> Known<Option<PathBuf>> {
        Some(self.kept(
            |a| &mut a.links,
            path.to_path_buf(),
            || std::fs::read_link(self.root.entry(path)).ok(),
        ))
    }

    fn sysctl(&self, key: &str) -> Known<Option<String>> {
        Some(self.kept(
            |a| &mut a.sysctls,
            key.to_string(),
            || crate::sysctl::read(key),
        ))
    }

    fn check(&self, argv: &[String]) -> Known<bool> {
        Some(self.kept(|a| &mut a.checks, check_key(argv), || succeeds(argv)))
    }

    fn exposure(&self, name: &str, content: &str) -> Known<Option<String>> {
        Some(self.kept(
            |a| &mut a.exposures,
            exposure_key(name, content),
            || exposure(name, content),
        ))
    }

    fn user(&self, name: &str) -> Known<Option<Account>> {
        Some(self.kept(|a| &mut a.users, name.to_string(), || self.db.user(name)))
    }

    fn user_name(&self, uid: u32) -> Known<Option<String>> {
        Some(self.kept(|a| &mut a.user_names, uid, || self.db.user_name(uid)))
    }

    fn group_gid(&self, name: &str) -> Known<Option<u32>> {
        Some(self.kept(
            |a| &mut a.groups,
            name.to_string(),
            || self.db.group_gid(name),
        ))
    }

    fn group_name(&self, gid: u32) -> Known<Option<String>> {
        Some(self.kept(|a| &mut a.group_names, gid, || self.db.group_name(gid)))
    }
}

/// A facts document standing in for its host: answers only what it holds.
pub struct FactsHost<'a> {
    root: Root,
    answers: &'a Answers,
    /// The document's platform section answers for the files and settings it holds.
    platform: Option<&'a Platform>,
    family: &'a str,
}

impl<'a> FactsHost<'a> {
    pub fn new(root: Root, answers: &'a Answers) -> FactsHost<'a> {
        FactsHost {
            root,
            answers,
            platform: None,
            // Answers without their document are this OS's (tests, a saved plan re-read).
            family: std::env::consts::OS,
        }
    }

    /// Everything a whole facts document answers: what planning read (`host`), then what its
    /// platform section holds.
    pub fn of(facts: &'a super::Facts) -> FactsHost<'a> {
        FactsHost {
            root: facts.root(),
            answers: &facts.host,
            platform: Some(&facts.platform),
            family: &facts.os.family,
        }
    }
}

impl Host for FactsHost<'_> {
    fn root(&self) -> &Root {
        &self.root
    }

    fn is_live(&self) -> bool {
        false
    }

    fn family(&self) -> &str {
        self.family
    }

    fn file(&self, path: &Path, content: bool) -> std::io::Result<Known<FileState>> {
        let f = self.answers.files.get(path);
        Ok(f.filter(|f| !content || !f.exists || f.sha256.is_some())
            .cloned())
    }

    fn text(&self, path: &Path) -> Known<Option<String>> {
        self.answers
            .texts
            .get(path)
            .or_else(|| self.platform?.files.get(path))
            .cloned()
    }

    fn link(&self, path: &Path) -> Known<Option<PathBuf>> {
        self.answers.links.get(path).cloned()
    }

    fn sysctl(&self, key: &str) -> Known<Option<String>> {
        self.answers
            .sysctls
            .get(key)
            .or_else(|| self.platform?.sysctls.get(key))
            .cloned()
    }

    fn check(&self, argv: &[String]) -> Known<bool> {
        self.answers.checks.get(&check_key(argv)).copied()
    }

    fn exposure(&self, name: &str, content: &str) -> Known<Option<String>> {
        self.answers
            .exposures
            .get(&exposure_key(name, content))
            .cloned()
    }

    fn user(&self, name: &str) -> Known<Option<Account>> {
        self.answers.users.get(name).cloned()
    }

    fn user_name(&self, uid: u32) -> Known<Option<String>> {
        self.answers.user_names.get(&uid).cloned()
    }

    fn group_gid(&self, name: &str) -> Known<Option<u32>> {
        self.answers.groups.get(name).copied()
    }

    fn group_name(&self, gid: u32) -> Known<Option<String>> {
        self.answers.group_names.get(&gid).cloned()
    }
}

/// Runs a read-only check; true when it exits 0.
pub fn succeeds(argv: &[String]) -> bool {
    let Some((prog, args)) = argv.split_first() else {
        return false;
    };
    // Only a trusted system program runs, whatever PATH says.
    let Ok(mut cmd) = crate::programs::command(prog) else {
        return false;
    };
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `systemd-analyze security --offline=true` on a unit's content: the overall exposure line,
/// then every ✗ line. None without systemd-analyze.
fn exposure(name: &str, content: &str) -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    let file = dir.path().join(name);
    std::fs::write(&file, content).ok()?;
    let out = crate::programs::command("systemd-analyze")
        .ok()?
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&file)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let overall = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let mut lines = vec![overall.trim_start_matches(['→', ' ']).to_string()];
    lines.extend(text.lines().filter(|l| l.starts_with('✗')).map(|l| {
        // "✗ NAME   DESCRIPTION   VALUE": keep the name and the value, the columns are wide.
        let words: Vec<&str> = l.split_whitespace().collect();
        format!(
            "✗ {} ({})",
            words.get(1).unwrap_or(&""),
            words.last().unwrap_or(&"")
        )
    }));
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_host_reads_a_target_once_and_a_document_replays_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let conf = dir.path().join("etc/app.conf");
        std::fs::write(&conf, "one\n").unwrap();
        let live = LiveHost::new(Root::new(dir.path().to_path_buf()));
        let path = Path::new("/etc/app.conf");
        let first = live.file(path, true).unwrap().unwrap();
        // Written behind its back: a plan in progress keeps seeing what it first read.
        std::fs::write(&conf, "two\n").unwrap();
        assert_eq!(live.file(path, true).unwrap(), Some(first.clone()));
        assert_eq!(live.text(path), Some(Some("one\n".to_string())));
        assert_eq!(live.link(Path::new("/etc/none")), Some(None));
        let answers = live.answers();
        let doc = FactsHost::new(Root::new("/".into()), &answers);
        assert_eq!(doc.file(path, true).unwrap(), Some(first));
        assert_eq!(doc.text(path), Some(Some("one\n".to_string())));
        assert_eq!(doc.link(Path::new("/etc/none")), Some(None));
        assert!(!doc.is_live() && live.is_live());
    }

    #[test]
    fn a_document_knows_only_what_it_holds() {
        let answers = Answers::default();
        let doc = FactsHost::new(Root::new("/".into()), &answers);
        assert_eq!(doc.file(Path::new("/etc/passwd"), false).unwrap(), None);
        assert_eq!(doc.sysctl("net.ipv4.ip_unprivileged_port_start"), None);
        assert_eq!(doc.check(&["true".to_string()]), None);
        assert_eq!(doc.user("root"), None);
        assert_eq!(doc.group_name(0), None);
        let mut without_hash = Answers::default();
        let state = observe_file(Path::new("/proc/self/status"), false)
            .unwrap()
            .0;
        without_hash.files.insert("/f".into(), state);
        let doc = FactsHost::new(Root::new("/".into()), &without_hash);
        assert!(doc.file(Path::new("/f"), false).unwrap().is_some());
        assert_eq!(
            doc.file(Path::new("/f"), true).unwrap(),
            None,
            "a state recorded without its content hash does not answer for content"
        );
    }
}

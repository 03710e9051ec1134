//! `/etc/passwd` and `/etc/group` under `--root` are files anyone who owns the tree may have
//! written. Every lookup lowport makes in them must end in an answer or none, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lowport::facts::users::UserDb;
use lowport::root::Root;

/// One tree for the whole run, on tmpfs where there is one: each input rewrites its two files.
fn tree() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = ["/dev/shm", "/tmp"]
            .into_iter()
            .find(|d| std::path::Path::new(d).is_dir())
            .unwrap_or("/tmp");
        let dir = PathBuf::from(format!("{base}/lowport-fuzz-accounts-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        dir
    })
}

fuzz_target!(|input: (&str, &str, &str, u32)| {
    let (passwd, group, name, id) = input;
    let dir = tree();
    std::fs::write(dir.join("etc/passwd"), passwd).unwrap();
    std::fs::write(dir.join("etc/group"), group).unwrap();
    let db = UserDb::new(&Root::new(dir.clone()));
    let _ = db.user(name);
    let _ = db.group_gid(name);
    let _ = db.user_name(id);
    let _ = db.group_name(id);
});

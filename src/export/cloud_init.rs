//! cloud-init: `#cloud-config` user-data that applies the plan at first boot, for servers that
//! are provisioned rather than logged in to. The plan's system user goes to `users` (after
//! `default`, which keeps the image's own user), its files to `write_files` (deferred to the
//! final stage when a file belongs to a user created at boot, since write_files runs before
//! users exist), and every other step, in the plan's order, to `runcmd` as argv lists, which
//! cloud-init quotes word by word.

use super::yaml::{Y, document, map, s, yes};
use super::{File, provenance};
use crate::error::Result;
use crate::plan::{Action, Plan};

fn argv<S: AsRef<str>>(words: &[S]) -> Y {
    Y::List(words.iter().map(|w| s(w.as_ref())).collect())
}

pub fn export(plan: &Plan) -> Result<Vec<File>> {
    let mut users = vec![s("default")];
    let mut files = Vec::new();
    let mut runcmd = Vec::new();
    for step in &plan.steps {
        match &step.action {
            Action::CreateUser { name } => {
                users.push(map([
                    ("name", s(name)),
                    ("system", yes(true)),
                    ("no_create_home", yes(true)),
                    ("homedir", s("/nonexistent")),
                    ("shell", s("/usr/sbin/nologin")),
                    ("lock_passwd", yes(true)),
                ]));
            }
            Action::WriteFile {
                path,
                content,
                mode,
                owner,
                group,
            } => {
                let mut entry = vec![
                    ("path", s(path.display().to_string())),
                    ("content", Y::Text(content.clone())),
                    ("owner", s(format!("{owner}:{group}"))),
                    ("permissions", s(format!("{mode:04o}"))),
                ];
                if owner != "root" || group != "root" {
                    entry.push(("defer", yes(true)));
                }
                files.push(map(entry));
            }
            Action::SetOwnerMode {
                path,
                owner,
                group,
                mode,
            } => {
                let p = path.display().to_string();
                runcmd.push(argv(&[
                    "chown".into(),
                    format!("{owner}:{group}"),
                    p.clone(),
                ]));
                runcmd.push(argv(&["chmod".into(), format!("{mode:04o}"), p]));
            }
            Action::SetFileCap { path, caps } => {
                runcmd.push(argv(&["setcap", caps, &path.display().to_string()]));
            }
            Action::SetSysctl { key, value } => {
                runcmd.push(argv(&["sysctl", "-w", &format!("{key}={value}")]));
            }
            Action::Symlink { path, target } => {
                runcmd.push(argv(&[
                    "ln",
                    "-sfn",
                    &target.display().to_string(),
                    &path.display().to_string(),
                ]));
            }
            // At first boot nothing is in place yet: the commands run without their check.
            Action::RunCommands { run, .. } => {
                runcmd.extend(run.iter().map(|a| argv(a)));
            }
        }
    }
    let mut doc = Vec::new();
    if users.len() > 1 {
        doc.push(("users", Y::List(users)));
    }
    if !files.is_empty() {
        doc.push(("write_files", Y::List(files)));
    }
    if !runcmd.is_empty() {
        doc.push(("runcmd", Y::List(runcmd)));
    }
    let header = format!(
        "#cloud-config\n{}# Applies the plan at first boot. Nothing here is journaled: undo by \
         hand, as the plan's undo\n# of each step says (`lowport plan` shows it).\n",
        provenance(plan, "# ")
    );
    if doc.is_empty() {
        // Nothing to change (the grant is already in place there): still a valid cloud-config.
        return Ok(vec![File::new(
            "user-data",
            format!("{header}# The plan changes nothing.\n{{}}\n"),
        )]);
    }
    Ok(vec![File::new("user-data", document(&header, &map(doc)))])
}

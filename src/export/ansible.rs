//! Ansible: a playbook that makes the plan's change with standard modules, one that undoes it,
//! the operator's choices as variables in `vars.yml`, and the apply and undo tasks files the two
//! playbooks import (reusable in a role). Both playbooks support `--check` and `--diff`.
//!
//! Each plan step becomes the module that does the same thing: `ansible.builtin.group`/`user`
//! for a system user, `copy` (content, owner, group, mode) for a file, `file` for owner and mode
//! or a link, `ansible.posix.sysctl` for the live kernel setting with its sysctl.d file,
//! `systemd_service` (daemon-reload, start, a restart handler) for systemctl. Where no module
//! fits or one misreports, a read-only check runs first and the change runs only when the check
//! says it is missing, so a second run reports `changed=0`.

use std::path::Path;

use super::yaml::{Y, comment, document, map, num, s, yes};
use super::{File, provenance};
use crate::error::Result;
use crate::plan::{Action, FileState, Plan, State, Step};

/// The operator's choices, as the plan holds them.
struct Vars {
    user: Option<String>,
    group: Option<String>,
    binary: Option<String>,
    service: Option<String>,
}

impl Vars {
    fn of(plan: &Plan) -> Vars {
        let binary = plan.steps.iter().find_map(|s| match &s.action {
            Action::SetFileCap { path, .. } | Action::SetOwnerMode { path, .. } => {
                Some(path.display().to_string())
            }
            _ => None,
        });
        let created = plan.steps.iter().find_map(|s| match &s.action {
            Action::CreateUser { name } => Some(name.clone()),
            _ => None,
        });
        Vars {
            user: plan
                .request
                .user
                .clone()
                .or_else(|| plan.verify.user.clone())
                .or(created),
            group: plan.request.group.clone(),
            binary: binary.or_else(|| plan.request.binary.clone()),
            service: plan.verify.service.clone(),
        }
    }

    /// `{{ lowport_X }}` where `value` is the choice X, else the value itself (untemplated).
    fn refer(&self, value: &str) -> Y {
        let named = [
            ("lowport_binary", &self.binary),
            ("lowport_user", &self.user),
            ("lowport_group", &self.group),
        ];
        match named.iter().find(|(_, v)| v.as_deref() == Some(value)) {
            Some((name, _)) => s(format!("{{{{ {name} }}}}")),
            None => Y::Unsafe(value.to_string()),
        }
    }
}

fn path_of(p: &Path) -> String {
    p.display().to_string()
}

/// A task. Its name starts with a capital, as ansible-lint's name[casing] wants, and is shown, not
/// run: Ansible templates names, so a `{` from the plan becomes `(` (every Jinja delimiter starts
/// with `{`); a name cannot be `!unsafe`, ansible-lint cannot match such names to its tasks.
fn task(name: String, module: &str, args: Y, extra: Vec<(&str, Y)>) -> Y {
    let name = name.replace('{', "(");
    let name = match name.chars().next() {
        Some(c) => c.to_uppercase().chain(name.chars().skip(1)).collect(),
        None => name,
    };
    let mut entries = vec![("name".to_string(), s(name)), (module.to_string(), args)];
    entries.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    Y::Map(entries)
}

fn argv(words: &[String], vars: &Vars) -> Y {
    Y::List(words.iter().map(|w| vars.refer(w)).collect())
}

/// A read-only command that runs in check mode too and never reports a change.
fn read(name: String, words: &[String], register: &str, vars: &Vars) -> Y {
    task(
        name,
        "ansible.builtin.command",
        map([("argv", argv(words, vars))]),
        vec![
            ("register", s(register)),
            ("changed_when", yes(false)),
            ("failed_when", yes(false)),
            ("check_mode", yes(false)),
        ],
    )
}

/// A command that changes the host, run only when `when` holds (and then reported as a change).
fn change(name: String, words: &[String], when: Option<String>, vars: &Vars) -> Y {
    let mut extra = Vec::new();
    if let Some(w) = when {
        extra.push(("when", s(w)));
    }
    extra.push(("changed_when", yes(true)));
    task(
        name,
        "ansible.builtin.command",
        map([("argv", argv(words, vars))]),
        extra,
    )
}

/// The systemd unit a path configures: `U.service` for the unit file or its drop-in directory.
fn unit_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".service") {
        return Some(name.to_string());
    }
    let dir = path.parent()?.file_name()?.to_str()?;
    dir.strip_suffix(".d")
        .filter(|u| u.ends_with(".service"))
        .map(String::from)
}

fn restart_handler(unit: &str) -> String {
    format!("Restart {unit}")
}

/// The units the plan (re)starts with systemctl: they get a restart handler.
fn restarted_units(plan: &Plan) -> Vec<String> {
    let mut units = Vec::new();
    for step in &plan.steps {
        if let Action::RunCommands { run, .. } = &step.action {
            for a in run {
                if let [prog, verb, unit] = a.as_slice()
                    && is_systemctl(prog)
                    && verb == "restart"
                    && !units.contains(unit)
                {
                    units.push(unit.clone());
                }
            }
        }
    }
    units
}

/// `systemctl`, by name or by the absolute path the plan found it at.
fn is_systemctl(prog: &str) -> bool {
    std::path::Path::new(prog).file_name() == Some(std::ffi::OsStr::new("systemctl"))
}

/// A systemctl argv as the systemd_service module, when the module does exactly that.
fn systemctl(words: &[String]) -> Option<Y> {
    let [prog, rest @ ..] = words else {
        return None;
    };
    if !is_systemctl(prog) {
        return None;
    }
    let (state, unit) = match rest {
        [verb] if verb == "daemon-reload" => {
            return Some(map([("daemon_reload", yes(true))]));
        }
        [verb, unit] if verb == "restart" || verb == "start" => ("started", unit),
        [verb, unit] if verb == "stop" => ("stopped", unit),
        _ => return None,
    };
    Some(map([
        ("name", Y::Unsafe(unit.clone())),
        ("state", s(state)),
        ("daemon_reload", yes(true)),
    ]))
}

/// The forms `getcap` prints for a capability text lowport sets (`X=+ep`): `X=ep` (libcap 2.4x
/// and later) or `X+ep` (older).
fn getcap_forms(caps: &str) -> Vec<String> {
    vec![caps.replace("=+", "="), caps.replace("=+", "+")]
}

/// The sysctl.d file the plan writes for `key`, if it writes one.
fn sysctl_file(plan: &Plan, key: &str) -> Option<String> {
    plan.steps.iter().find_map(|s| match &s.action {
        Action::WriteFile { path, content, .. }
            if path.starts_with("/etc/sysctl.d")
                && content
                    .lines()
                    .any(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key)) =>
        {
            Some(path_of(path))
        }
        _ => None,
    })
}

/// The live setting: `ansible.posix.sysctl` with the plan's sysctl.d file for the key (the module
/// sets the live value first, so only a value the kernel took is kept); without such a file a
/// read and `sysctl -w`, since the module would otherwise write /etc/sysctl.conf.
fn sysctl(plan: &Plan, key: &str, value: &str, reg: &str, vars: &Vars, out: &mut Out) {
    let (key, value) = (key.to_string(), value.to_string());
    match sysctl_file(plan, &key) {
        Some(file) => out.apply.push(task(
            format!("Set {key} = {value} live and in {file}"),
            "ansible.posix.sysctl",
            map([
                ("name", Y::Unsafe(key.clone())),
                ("value", Y::Unsafe(value.clone())),
                ("sysctl_file", Y::Unsafe(file)),
                ("sysctl_set", yes(true)),
                ("reload", yes(false)),
            ]),
            vec![],
        )),
        None => {
            out.apply.push(read(
                format!("Read {key}"),
                &["sysctl".into(), "-n".into(), key.clone()],
                reg,
                vars,
            ));
            out.apply.push(change(
                format!("Set {key} = {value}"),
                &["sysctl".into(), "-w".into(), format!("{key}={value}")],
                Some(format!("{reg}.stdout != {}", json_str(&value))),
                vars,
            ));
        }
    }
}

fn mode_text(mode: u32) -> Y {
    s(format!("{mode:04o}"))
}

struct Out {
    apply: Vec<Y>,
    undo: Vec<Vec<Y>>,
}

fn step(plan: &Plan, n: usize, st: &Step, vars: &Vars, restarts: &[String], out: &mut Out) {
    let reg = format!("lowport_read_{n}");
    let mut undo = Vec::new();
    match &st.action {
        Action::CreateUser { name } => {
            out.apply.push(task(
                format!("Create the system group {name}"),
                "ansible.builtin.group",
                map([("name", vars.refer(name)), ("system", yes(true))]),
                vec![],
            ));
            out.apply.push(task(
                format!("Create the system user {name} (no home, no login shell)"),
                "ansible.builtin.user",
                map([
                    ("name", vars.refer(name)),
                    ("group", vars.refer(name)),
                    ("system", yes(true)),
                    ("create_home", yes(false)),
                    ("home", s("/nonexistent")),
                    ("shell", s("/usr/sbin/nologin")),
                ]),
                vec![],
            ));
            undo.push(task(
                format!("Remove the system user {name}"),
                "ansible.builtin.user",
                map([("name", vars.refer(name)), ("state", s("absent"))]),
                vec![],
            ));
            undo.push(task(
                format!("Remove the system group {name}"),
                "ansible.builtin.group",
                map([("name", vars.refer(name)), ("state", s("absent"))]),
                vec![],
            ));
        }
        Action::WriteFile {
            path,
            content,
            mode,
            owner,
            group,
        } => {
            let mut extra = Vec::new();
            let notify: Vec<Y> = unit_of(path)
                .filter(|u| restarts.contains(u))
                .map(|u| s(restart_handler(&u)))
                .into_iter()
                .collect();
            if !notify.is_empty() {
                extra.push(("notify", Y::List(notify)));
            }
            let existed = matches!(&st.before, State::File(f) if f.exists);
            let mut args = vec![
                ("dest", vars.refer(&path_of(path))),
                ("content", Y::UnsafeText(content.clone())),
                ("owner", vars.refer(owner)),
                ("group", vars.refer(group)),
                ("mode", mode_text(*mode)),
            ];
            if existed {
                // lowport's journal keeps the previous file; here copy's backup does.
                args.push(("backup", yes(true)));
            }
            let mut write = task(
                format!("Write {}", path.display()),
                "ansible.builtin.copy",
                map(args),
                extra,
            );
            // A text indented with tabs (an nft ruleset) is carried exactly; ansible-lint's
            // no-tabs rule is about YAML written by hand, so this task is exempt.
            if content.contains('\t')
                && let Y::Map(entries) = &mut write
                && let Some((_, name)) = entries.first_mut()
            {
                *name = Y::Noted(Box::new(name.clone()), "noqa: no-tabs");
            }
            out.apply.push(write);
            if existed {
                undo.push(Y::Comment(format!(
                    "{} existed before the plan: copy kept it as a timestamped backup next to                      it; put that back by hand (this undo does not guess which one)",
                    path.display()
                )));
            } else {
                undo.push(task(
                    format!("Remove {}", path.display()),
                    "ansible.builtin.file",
                    map([("path", vars.refer(&path_of(path))), ("state", s("absent"))]),
                    vec![],
                ));
            }
        }
        Action::SetOwnerMode {
            path,
            owner,
            group,
            mode,
        } => {
            out.apply.push(task(
                format!(
                    "Restrict {} to root and group {group} (mode {mode:04o})",
                    path.display()
                ),
                "ansible.builtin.file",
                map([
                    ("path", vars.refer(&path_of(path))),
                    ("owner", vars.refer(owner)),
                    ("group", vars.refer(group)),
                    ("mode", mode_text(*mode)),
                ]),
                vec![],
            ));
            if let State::File(FileState {
                uid: Some(uid),
                gid: Some(gid),
                mode: Some(m),
                ..
            }) = &st.before
            {
                undo.push(task(
                    format!("Give {} back its owner and mode", path.display()),
                    "ansible.builtin.file",
                    map([
                        ("path", vars.refer(&path_of(path))),
                        ("owner", num(uid)),
                        ("group", num(gid)),
                        ("mode", mode_text(*m)),
                    ]),
                    vec![],
                ));
            }
        }
        Action::SetFileCap { path, caps } => {
            let p = path_of(path);
            let forms = getcap_forms(caps);
            let held = format!(
                "({reg}.stdout.split() | last | default('')) in {}",
                serde_json::to_string(&forms).unwrap_or_default()
            );
            out.apply.push(Y::Comment(
                "community.general.capabilities is not used: it compares `cap+ep` with the \
                 `cap=ep` that libcap 2.4x and later print, so it reports \"changed\" on every \
                 run, and it passes the path to getcap and setcap unquoted. getcap reads, setcap \
                 runs only when the capability is missing."
                    .into(),
            ));
            out.apply.push(read(
                format!("Read the file capabilities of {p}"),
                &["getcap".into(), p.clone()],
                &reg,
                vars,
            ));
            out.apply.push(change(
                format!("Set the file capability {caps} on {p}"),
                &["setcap".into(), caps.clone(), p.clone()],
                Some(format!("not ({held})")),
                vars,
            ));
            let had = matches!(&st.before, State::File(f) if f.capability().is_some());
            if !had {
                undo.push(read(
                    format!("Read the file capabilities of {p}"),
                    &["getcap".into(), p.clone()],
                    &reg,
                    vars,
                ));
                undo.push(change(
                    format!("Remove the file capability from {p}"),
                    &["setcap".into(), "-r".into(), p.clone()],
                    Some(held),
                    vars,
                ));
            }
        }
        Action::SetSysctl { key, value } => {
            if let State::Sysctl { value: Some(was) } = &st.before {
                undo.push(read(
                    format!("Read {key}"),
                    &["sysctl".into(), "-n".into(), key.clone()],
                    &reg,
                    vars,
                ));
                undo.push(change(
                    format!("Set {key} back to {was}"),
                    &["sysctl".into(), "-w".into(), format!("{key}={was}")],
                    Some(format!("{reg}.stdout != {}", json_str(was))),
                    vars,
                ));
            }
            sysctl(plan, key, value, &reg, vars, out);
        }
        Action::Symlink { path, target } => {
            out.apply.push(task(
                format!("Link {} to {}", path.display(), target.display()),
                "ansible.builtin.file",
                map([
                    ("src", vars.refer(&path_of(target))),
                    ("dest", vars.refer(&path_of(path))),
                    ("state", s("link")),
                ]),
                vec![],
            ));
            undo.push(task(
                format!("Remove the link {}", path.display()),
                "ansible.builtin.file",
                map([("path", vars.refer(&path_of(path))), ("state", s("absent"))]),
                vec![],
            ));
        }
        Action::RunCommands {
            what,
            run,
            undo: undo_argv,
            check,
        } => {
            let when_missing = check.as_ref().map(|_| format!("{reg}.rc != 0"));
            let when_present = check.as_ref().map(|_| format!("{reg}.rc == 0"));
            let commands = |list: &[Vec<String>], when: Option<String>, into: &mut Vec<Y>| {
                if let Some(c) = check {
                    into.push(read(format!("Check: {what}"), c, &reg, vars));
                }
                for (i, a) in list.iter().enumerate() {
                    // The argv is in the task; the name only says which part of the step it is.
                    let name = if list.len() == 1 {
                        what.clone()
                    } else {
                        format!("{what} ({} of {})", i + 1, list.len())
                    };
                    match systemctl(a) {
                        Some(args) => into.push(task(
                            name,
                            "ansible.builtin.systemd_service",
                            args,
                            when.iter().map(|w| ("when", s(w.clone()))).collect(),
                        )),
                        None => {
                            let mut t = change(name, a, when.clone(), vars);
                            // `systemctl try-restart` (restart only if running) has no module
                            // equivalent: the command is deliberate.
                            if a.first().is_some_and(|p| is_systemctl(p))
                                && let Y::Map(entries) = &mut t
                                && let Some((_, n)) = entries.first_mut()
                            {
                                *n = Y::Noted(
                                    Box::new(n.clone()),
                                    "noqa: command-instead-of-module",
                                );
                            }
                            into.push(t);
                        }
                    }
                }
            };
            if !run.is_empty() {
                commands(run, when_missing, &mut out.apply);
            }
            if !undo_argv.is_empty() {
                commands(undo_argv, when_present, &mut undo);
            }
        }
    }
    out.undo.push(undo);
}

fn json_str(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub fn export(plan: &Plan) -> Result<Vec<File>> {
    let vars = Vars::of(plan);
    let restarts = restarted_units(plan);
    let mut out = Out {
        apply: Vec::new(),
        undo: Vec::new(),
    };
    for (n, st) in plan.steps.iter().enumerate() {
        step(plan, n + 1, st, &vars, &restarts, &mut out);
    }
    let undo: Vec<Y> = out.undo.into_iter().rev().flatten().collect();

    let header = |what: &str| format!("---\n# {what}\n{}", provenance(plan, "# "));
    let mut var_entries = vec![
        comment(
            "The choices this plan was reviewed with. Module parameters use them; the files the \
             plan writes are the reviewed text itself, which holds the same values, so the \
             playbooks check that these are unchanged: for other values, export again with \
             lowport (it checks them on the target's facts).",
        ),
        ("lowport_method".to_string(), s(plan.method.as_str())),
        (
            "lowport_ports".to_string(),
            Y::List(plan.verify.ports.iter().map(num).collect()),
        ),
    ];
    if !plan.verify.redirects.is_empty() {
        var_entries.push((
            "lowport_redirects".to_string(),
            Y::List(
                plan.verify
                    .redirects
                    .iter()
                    .map(|(low, high)| map([("port", num(low)), ("to", num(high))]))
                    .collect(),
            ),
        ));
    }
    let choices = [
        ("lowport_user", &vars.user),
        ("lowport_group", &vars.group),
        ("lowport_binary", &vars.binary),
        ("lowport_service", &vars.service),
    ];
    for (name, v) in choices {
        if let Some(v) = v {
            var_entries.push((name.to_string(), Y::Unsafe(v.clone())));
        }
    }
    let vars_doc = document(
        &header("Variables of lowport.yml and lowport-undo.yml"),
        &Y::Map(var_entries),
    );

    // The check that the variables are the reviewed ones.
    let mut that = vec![s(format!(
        "lowport_ports == {}",
        serde_json::to_string(&plan.verify.ports).unwrap_or_default()
    ))];
    for (name, v) in choices {
        if let Some(v) = v {
            that.push(s(format!("lowport_{} == {}", &name[8..], json_str(v))));
        }
    }
    let guard = task(
        "The variables are the ones the plan was reviewed with".into(),
        "ansible.builtin.assert",
        map([
            ("that", Y::List(that)),
            (
                "fail_msg",
                s(
                    "the files in this playbook were reviewed for the values in vars.yml; export \
                   again with lowport for other values",
                ),
            ),
            ("quiet", yes(true)),
        ]),
        vec![],
    );
    let play = |name: String, tasks_file: &str, handlers: Vec<Y>| {
        let mut entries = vec![
            ("name", s(name.replace('{', "("))),
            ("hosts", s("all")),
            ("become", yes(true)),
            ("vars_files", Y::List(vec![s("vars.yml")])),
            (
                "tasks",
                Y::List(vec![
                    guard.clone(),
                    task(
                        "The plan's steps".into(),
                        "ansible.builtin.import_tasks",
                        s(tasks_file),
                        vec![],
                    ),
                ]),
            ),
        ];
        if !handlers.is_empty() {
            entries.push(("handlers", Y::List(handlers)));
        }
        Y::List(vec![map(entries)])
    };
    let handlers: Vec<Y> = restarts
        .iter()
        .map(|u| {
            task(
                restart_handler(u),
                "ansible.builtin.systemd_service",
                map([
                    ("name", Y::Unsafe(u.clone())),
                    ("state", s("restarted")),
                    ("daemon_reload", yes(true)),
                ]),
                vec![],
            )
        })
        .collect();
    let list = super::ports(plan);
    let ports = format!(
        "port{} {}",
        if list.len() == 1 { "" } else { "s" },
        list.iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let apply_play = play(
        format!("Lowport: bind {ports} without root ({})", plan.title),
        "tasks/apply.yml",
        handlers,
    );
    let undo_play = play(
        format!("Lowport: undo {}", plan.title),
        "tasks/undo.yml",
        Vec::new(),
    );
    let usage = "Apply: ansible-playbook -i INVENTORY lowport.yml (preview: --check --diff)\n\
                 # Undo:  ansible-playbook -i INVENTORY lowport-undo.yml";
    let tasks_doc = |what: &str, list: Vec<Y>| {
        let list = if list.is_empty() {
            vec![task(
                "Nothing to do".into(),
                "ansible.builtin.debug",
                map([("msg", s("this plan has no step here"))]),
                vec![],
            )]
        } else {
            list
        };
        document(&header(what), &Y::List(list))
    };
    Ok(vec![
        File::new("lowport.yml", document(&header(usage), &apply_play)),
        File::new("lowport-undo.yml", document(&header(usage), &undo_play)),
        File::new("vars.yml", vars_doc),
        File::new(
            "tasks/apply.yml",
            tasks_doc("The plan's steps, in order", out.apply),
        ),
        File::new(
            "tasks/undo.yml",
            tasks_doc("The undo of each step, last step first", undo),
        ),
    ])
}

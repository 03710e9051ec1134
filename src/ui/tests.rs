//! Every screen and state of the wizard, drawn on ratatui's TestBackend at 80x24 and 60x16 and
//! compared with reviewed insta snapshots. The model is driven only through `update` with the
//! messages the runtime would send, so these also pin down the state machine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Cmd, Confirm, FieldId, Model, Msg, RunRow, Saved, Screen, Start, update};
use super::view::{Theme, view};
use crate::apply::{Event, Outcome};
use crate::cli::OtherHost;
use crate::error::Exit;
use crate::facts::binary::BinaryFacts;
use crate::facts::elf::ExecKind;
use crate::facts::mounts::Mount;
use crate::facts::users::Account;
use crate::facts::{Accounts, Answers, Facts, FactsHost, Init, Os, ServiceUnit};
use crate::methods::{self, MethodId, Request, Want};
use crate::plan::{FileState, Plan};
use crate::validate::PortArg;
use crate::verify::{Check, Outcome as Proof, Report, Target};

const FABIO: &str = "/usr/local/bin/fabio";
/// Where the wizard's lowport runs from: named in the command that applies a saved plan.
const LOWPORT: &str = "/home/op/lowport/target/release/lowport";

fn facts(binary: Option<ExecKind>) -> Facts {
    Facts {
        format_version: 1,
        root: "/".into(),
        hostname: "web1".into(),
        netns: None,
        os: Os {
            family: "linux".into(),
            id: "debian".into(),
            version_id: "12".into(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            kernel: "6.1.0-18-amd64".into(),
        },
        init: Init {
            pid1: "systemd".into(),
            systemd: true,
            systemd_version: Some(252),
        },
        is_root: true,
        euid: 0,
        tools: ["getcap", "setcap", "systemctl", "sysctl", "useradd"]
            .iter()
            .map(|t| (t.to_string(), Some(PathBuf::from(format!("/usr/sbin/{t}")))))
            .collect(),
        unprivileged_port_start: Some(1024),
        local_port_range: Some((32768, 60999)),
        kernel_no_file_caps: false,
        bounding_set_has_net_bind_service: true,
        unprivileged_port_start_files: Vec::new(),
        accounts: Accounts {
            users: [
                ("fabio".to_string(), None),
                (
                    "nobody".to_string(),
                    Some(Account {
                        name: "nobody".into(),
                        uid: 65534,
                        gid: 65534,
                        groups: vec![65534],
                        group: Some("nogroup".into()),
                    }),
                ),
            ]
            .into_iter()
            .collect(),
            groups: BTreeMap::new(),
        },
        service: Some(ServiceUnit {
            name: "fabio".into(),
            path: None,
            ours: false,
            ..ServiceUnit::default()
        }),
        binary: binary.map(|exec| BinaryFacts {
            requested: "fabio".into(),
            path: FABIO.into(),
            symlinks: Vec::new(),
            exec,
            interpreter: None,
            acl: Vec::new(),
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o755,
            writable_by_non_root: Vec::new(),
            mount: Some(Mount {
                mount_point: "/".into(),
                fstype: "ext4".into(),
                options: vec!["rw".into()],
            }),
            capability: None,
            units: Vec::new(),
        }),
        ports: vec![80, 443],
        listeners: Vec::new(),
        platform: Default::default(),
        target_os: None,
        host: answers(),
    }
}

/// What planning reads of the fixture host, as `detect --json --method …` records it.
fn answers() -> Answers {
    let file = |exists: bool| FileState {
        exists,
        sha256: None,
        identity: exists.then(|| "2049:131:9437184:0".into()),
        mode: exists.then_some(0o755),
        uid: exists.then_some(0),
        gid: exists.then_some(0),
        xattrs: BTreeMap::new(),
        link: None,
    };
    let sysctl_d = PathBuf::from("/etc/sysctl.d/60-lowport-unprivileged-ports.conf");
    Answers {
        files: [(FABIO.into(), file(true)), (sysctl_d.clone(), file(false))].into(),
        texts: [(sysctl_d, None)].into(),
        sysctls: [(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            Some("1024".to_string()),
        )]
        .into(),
        users: [("root".to_string(), Some(root_account()))].into(),
        groups: [("root".to_string(), Some(0))].into(),
        ..Answers::default()
    }
}

fn root_account() -> Account {
    Account {
        name: "root".into(),
        uid: 0,
        gid: 0,
        groups: vec![0],
        group: Some("root".into()),
    }
}

fn go() -> Option<ExecKind> {
    Some(ExecKind::Elf {
        static_linked: true,
        go: true,
    })
}

fn want() -> Want {
    Want {
        binary: Some("fabio".into()),
        ports: vec![PortArg::Grant(80), PortArg::Grant(443)],
        ..Want::default()
    }
}

/// The plan lowport makes for the fixture host, from its facts alone.
fn plan(method: MethodId, f: &Facts) -> Plan {
    let req = Request::new(method, want());
    let plan = Plan::build(f, &FactsHost::new(f.root(), &f.host), &req).unwrap();
    // The wizard plans on the live host; this plan is that one but for its mark.
    Plan {
        from_facts: false,
        ..plan
    }
}

fn key(m: &mut Model, code: KeyCode) -> Vec<Cmd> {
    update(m, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typed(m: &mut Model, text: &str) {
    for c in text.chars() {
        key(m, KeyCode::Char(c));
    }
}

/// A wizard that has detected the fixture host.
fn detected(binary: Option<ExecKind>, is_root: bool) -> Model {
    let start = Start {
        binary: binary.as_ref().map(|_| "fabio".into()),
        ports: vec![PortArg::Grant(80), PortArg::Grant(443)],
        is_root,
        exe: LOWPORT.into(),
        ..Start::default()
    };
    let (mut m, cmds) = Model::new(&start);
    assert!(matches!(cmds[..], [Cmd::Gather { .. }]));
    let f = facts(binary);
    update(&mut m, Msg::Methods(methods::assess(&f, &want())));
    update(&mut m, Msg::Facts(Ok(Box::new(f))));
    m
}

#[test]
fn the_method_given_on_the_command_line_is_where_the_cursor_starts() {
    let start = |method| Start {
        method,
        binary: Some("fabio".into()),
        ports: vec![PortArg::Grant(80)],
        is_root: true,
        ..Start::default()
    };
    let f = facts(go());
    let recommended = methods::recommended(&methods::assess(&f, &want())).unwrap();
    for (method, expected) in [
        (Some(MethodId::Sysctl), MethodId::Sysctl),
        (Some(MethodId::Authbind), MethodId::Authbind),
        (None, methods::assess(&f, &want())[recommended].id),
    ] {
        let (mut m, _) = Model::new(&start(method));
        update(&mut m, Msg::Methods(methods::assess(&f, &want())));
        update(&mut m, Msg::Facts(Ok(Box::new(f.clone()))));
        key(&mut m, KeyCode::Enter);
        assert_eq!(m.screen, Screen::Approaches);
        assert_eq!(m.selected().unwrap().id, expected, "--method {method:?}");
        // A fresh assessment (the host detected again) keeps where the operator moved to.
        key(&mut m, KeyCode::Down);
        let moved = m.selected().unwrap().id;
        update(&mut m, Msg::Methods(methods::assess(&f, &want())));
        assert_eq!(m.selected().unwrap().id, moved);
    }
}

fn planned(method: MethodId, is_root: bool) -> Model {
    let mut m = detected(go(), is_root);
    key(&mut m, KeyCode::Enter);
    while m.selected().unwrap().id != method {
        key(&mut m, KeyCode::Down);
    }
    key(&mut m, KeyCode::Enter);
    assert_eq!(m.screen, Screen::Settings);
    let cmds = key(&mut m, KeyCode::Enter);
    let Some(Cmd::Plan(req, _)) = cmds.first() else {
        panic!("no plan requested: {cmds:?}")
    };
    assert_eq!(req.method, method);
    let f = facts(go());
    let p = plan(method, &f);
    update(
        &mut m,
        Msg::Planned {
            methods: methods::assess(&f, req),
            plan: Ok(Box::new(p)),
            facts: Box::new(f),
        },
    );
    assert_eq!(m.screen, Screen::Preview);
    m
}

fn draw(m: &Model, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view(m, f, Theme { color: false })).unwrap();
    t.backend().to_string()
}

fn snap(name: &str, m: &Model) {
    for (w, h) in [(80, 24), (60, 16)] {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(m, w, h));
    }
}

fn report() -> Report {
    Report {
        format_version: 1,
        target: Target {
            ports: vec![80, 443],
            user: None,
            binary: Some("fabio".into()),
            ..Target::default()
        },
        checks: vec![Check {
            name: "capability".into(),
            outcome: Proof::Pass,
            detail: format!("{FABIO} carries cap_net_bind_service"),
        }],
        ok: true,
        status: crate::verify::Verdict::Verified,
        proved: format!("{FABIO} will be able to bind ports below 1024 when it runs"),
    }
}

fn runs() -> Vec<RunRow> {
    vec![
        RunRow {
            id: "20261129T010203Z-1a2b".into(),
            time: "2026-11-29T01:02:03Z".into(),
            method: "setcap".into(),
            status: "applied".into(),
            rolled_back: false,
            undo: vec![(
                1,
                format!("remove the security.capability attribute (as `setcap -r {FABIO}`)"),
            )],
        },
        RunRow {
            id: "20261128T220000Z-9f00".into(),
            time: "2026-11-28T22:00:00Z".into(),
            method: "sysctl".into(),
            status: "rolled back".into(),
            rolled_back: true,
            undo: Vec::new(),
        },
    ]
}

#[test]
fn the_host_screen_says_first_when_every_user_may_already_bind_the_port() {
    let mut m = detected(go(), true);
    let mut f = facts(go());
    f.unprivileged_port_start = Some(0);
    update(&mut m, Msg::Facts(Ok(Box::new(f))));
    let screen = draw(&m, 80, 24);
    let first = screen
        .lines()
        .find(|l| l.contains("already open"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        first.contains("already open: net.ipv4.ip_unprivileged_port_start is 0"),
        "{screen}"
    );
    assert!(
        screen.find("already open") < screen.find("Host web1 (linux)"),
        "before the host's facts:\n{screen}"
    );
}

#[test]
fn host_screens() {
    let (m, _) = Model::new(&Start {
        is_root: true,
        ..Start::default()
    });
    snap("host_detecting", &m);
    snap("host", &detected(go(), true));
    snap("host_without_binary", &detected(None, true));
}

#[test]
fn approaches_show_risk_recommendation_and_unavailable_reasons() {
    let mut m = detected(go(), true);
    key(&mut m, KeyCode::Enter);
    assert_eq!(m.screen, Screen::Approaches);
    assert_eq!(
        m.selected().unwrap().id,
        MethodId::Systemd,
        "the recommended method is preselected"
    );
    snap("approaches", &m);

    let mut m = detected(
        Some(ExecKind::Script {
            interpreter: "/bin/sh".into(),
        }),
        true,
    );
    key(&mut m, KeyCode::Enter);
    assert_eq!(
        m.selected().unwrap().id,
        MethodId::Systemd,
        "the first available method is recommended"
    );
    key(&mut m, KeyCode::Down);
    key(&mut m, KeyCode::Enter);
    assert_eq!(
        m.screen,
        Screen::Approaches,
        "an unavailable method cannot be chosen"
    );
    assert!(
        m.message
            .as_deref()
            .unwrap()
            .contains("is a script run by /bin/sh")
    );
    snap("approaches_unavailable", &m);
}

#[test]
fn settings_flag_invalid_input_in_place() {
    let mut m = detected(go(), true);
    key(&mut m, KeyCode::Enter);
    key(&mut m, KeyCode::Enter);
    m.field = 1;
    typed(&mut m, " 99999");
    key(&mut m, KeyCode::Down);
    typed(&mut m, "bad user");
    assert!(
        key(&mut m, KeyCode::Enter).is_empty(),
        "no plan with invalid input"
    );
    snap("settings_invalid", &m);
}

#[test]
fn preview_as_root_and_as_a_normal_user() {
    let m = planned(MethodId::Setcap, true);
    snap("preview", &m);
    let mut m = planned(MethodId::Setcap, false);
    key(&mut m, KeyCode::Enter);
    assert!(m.confirm.is_none(), "no apply without root");
    let cmds = key(&mut m, KeyCode::Char('s'));
    assert!(matches!(cmds[..], [Cmd::SavePlan(_)]));
    let sha256 = "0123456789abcdef".repeat(4);
    update(
        &mut m,
        Msg::Saved(Ok(Saved {
            path: "/home/op/lowport-plan-setcap.json".into(),
            sha256: sha256.clone(),
        })),
    );
    let shown = draw(&m, 80, 24);
    assert!(
        shown.contains("sudo chown root: /home/op/lowport-plan-setcap.json &&")
            && shown.contains(&format!("sudo {LOWPORT} apply --plan"))
            && shown.contains("/home/op/lowport-plan-setcap.json"),
        "the hint names lowport by its absolute path (sudo's PATH may lack it):\n{shown}"
    );
    // The hint binds the command to the bytes saved: all of the digest is on the screen.
    let joined: String = shown.split_whitespace().collect();
    assert!(
        joined.contains(&sha256),
        "the plan's SHA-256 is cut off:\n{shown}"
    );
    snap("preview_not_root", &m);
}

#[test]
fn preview_and_details_stop_scrolling_at_their_end() {
    let mut m = planned(MethodId::Systemd, true);
    for (w, h) in [(80, 24), (60, 16)] {
        key(&mut m, KeyCode::Home);
        draw(&m, w, h);
        for _ in 0..200 {
            key(&mut m, KeyCode::PageDown);
        }
        let end = m.scroll;
        assert!(end > 0, "the systemd plan is longer than the pane");
        assert_eq!(end, m.scroll_max.get(), "stops at the last full page");
        key(&mut m, KeyCode::Up);
        assert_eq!(m.scroll, end - 1, "one key back up moves at once");
    }
    key(&mut m, KeyCode::End);
    snap("preview_end", &m);

    let mut m = detected(go(), true);
    key(&mut m, KeyCode::Enter);
    key(&mut m, KeyCode::Tab);
    draw(&m, 80, 24);
    for _ in 0..100 {
        key(&mut m, KeyCode::Char('j'));
    }
    assert_eq!(m.detail_scroll, m.detail_max.get());
    assert!(m.detail_scroll > 0 && m.detail_scroll < 100);
    snap("approaches_details_end", &m);
}

#[test]
fn settings_reach_every_systemd_option() {
    let mut m = detected(go(), true);
    key(&mut m, KeyCode::Enter);
    assert_eq!(m.selected().unwrap().id, MethodId::Systemd);
    key(&mut m, KeyCode::Enter);
    let visit = |m: &mut Model, id: FieldId| {
        for _ in 0..m.fields.len() {
            if m.fields[m.field].id == id {
                return;
            }
            key(m, KeyCode::Down);
        }
        panic!("{id:?} is not reachable");
    };
    visit(&mut m, FieldId::Service);
    typed(&mut m, "fabio.service");
    visit(&mut m, FieldId::Args);
    typed(&mut m, r#"-cfg "/etc/fabio/my fabio.properties""#);
    visit(&mut m, FieldId::DynamicUser);
    key(&mut m, KeyCode::Char(' '));
    visit(&mut m, FieldId::Writable);
    typed(&mut m, "/var/log/fabio");
    visit(&mut m, FieldId::StateDirectory);
    typed(&mut m, "fabio");
    visit(&mut m, FieldId::AllowJit);
    key(&mut m, KeyCode::Char('y'));
    visit(&mut m, FieldId::Unmask);
    key(&mut m, KeyCode::Char(' '));
    assert!(m.keys().contains(&("Space", "toggle")));
    snap("settings_systemd", &m);
    let cmds = key(&mut m, KeyCode::Enter);
    let [Cmd::Plan(req, _)] = &cmds[..] else {
        panic!("no plan requested: {cmds:?}")
    };
    let s = &req.service;
    assert_eq!(
        s.name.as_deref(),
        Some("fabio"),
        "never fabio.service.service"
    );
    assert_eq!(s.args, ["-cfg", "/etc/fabio/my fabio.properties"]);
    assert!(s.dynamic_user && s.allow_jit && s.unmask);
    assert_eq!(s.writable, [PathBuf::from("/var/log/fabio")]);
    assert_eq!(s.state_directory.as_deref(), Some("fabio"));

    // An unclosed quote is refused in place, and nothing is planned.
    visit(&mut m, FieldId::Args);
    typed(&mut m, " \"open");
    let args = m.fields.iter().find(|f| f.id == FieldId::Args).unwrap();
    assert!(args.error.as_deref().unwrap().contains("quote"), "{args:?}");
    assert!(key(&mut m, KeyCode::Enter).is_empty());
    assert_eq!(m.message.as_deref(), Some("fix Args first"));

    // setcap reads none of the service settings: they are neither visited nor sent.
    let mut m = detected(go(), true);
    key(&mut m, KeyCode::Enter);
    key(&mut m, KeyCode::Down);
    key(&mut m, KeyCode::Enter);
    let mut seen = Vec::new();
    for _ in 0..m.fields.len() {
        seen.push(m.fields[m.field].id);
        key(&mut m, KeyCode::Down);
    }
    seen.sort_by_key(|id| FieldId::ALL.iter().position(|f| f == id));
    seen.dedup();
    assert_eq!(
        seen,
        [
            FieldId::Binary,
            FieldId::Ports,
            FieldId::User,
            FieldId::Group
        ]
    );
    snap("settings_setcap", &m);
}

#[test]
fn high_risk_needs_the_typed_acknowledgement() {
    let mut m = planned(MethodId::Sysctl, true);
    key(&mut m, KeyCode::Enter);
    assert_eq!(m.screen, Screen::Review);
    typed(&mut m, "yes");
    key(&mut m, KeyCode::Enter);
    assert!(
        m.confirm.is_none(),
        "a wrong acknowledgement does not open the apply"
    );
    snap("review_before_ack", &m);
    for _ in 0..3 {
        key(&mut m, KeyCode::Backspace);
    }
    typed(&mut m, "sysctl");
    key(&mut m, KeyCode::Enter);
    assert!(matches!(m.confirm, Some(Confirm::Apply(_))));
    snap("review_after_ack", &m);
}

#[test]
fn apply_progress_success_and_failure() {
    let mut m = planned(MethodId::Setcap, true);
    key(&mut m, KeyCode::Enter);
    snap("confirm_apply", &m);
    assert!(key(&mut m, KeyCode::Char('n')).is_empty());
    key(&mut m, KeyCode::Enter);
    let cmds = key(&mut m, KeyCode::Char('y'));
    assert!(matches!(cmds[..], [Cmd::Apply(_)]));
    let run = "20261129T010203Z-1a2b".to_string();
    update(&mut m, Msg::Progress(Event::Started { run: run.clone() }));
    update(
        &mut m,
        Msg::Progress(Event::Running {
            step: 1,
            summary: "set".into(),
        }),
    );
    let quit_keys: Vec<_> = m.keys().into_iter().filter(|(k, _)| *k == "q").collect();
    assert_eq!(
        quit_keys,
        [("q", "stop and roll back")],
        "one q, one meaning"
    );
    snap("apply_running", &m);
    key(&mut m, KeyCode::Char('q'));
    assert_eq!(
        m.confirm,
        Some(Confirm::QuitRunning),
        "quitting mid-apply asks first"
    );
    snap("apply_quit_asks", &m);
    key(&mut m, KeyCode::Esc);
    update(&mut m, Msg::Progress(Event::Done { step: 1 }));
    let cmds = update(
        &mut m,
        Msg::Finished {
            result: Ok((Outcome::Applied { run: run.clone() }, Some(report()))),
            exit: Exit::Success,
        },
    );
    assert_eq!(cmds, vec![Cmd::LoadHistory]);
    assert_eq!(m.exit, Some(Exit::Success));
    snap("apply_done", &m);

    let mut m = planned(MethodId::Sysctl, true);
    key(&mut m, KeyCode::Enter);
    typed(&mut m, "sysctl");
    key(&mut m, KeyCode::Enter);
    key(&mut m, KeyCode::Char('y'));
    for e in [
        Event::Started { run: run.clone() },
        Event::Running {
            step: 1,
            summary: "set".into(),
        },
        Event::Done { step: 1 },
        Event::Running {
            step: 2,
            summary: "create".into(),
        },
        Event::Failed {
            step: 2,
            error:
                "writing /etc/sysctl.d/60-lowport-unprivileged-ports.conf: Read-only file system"
                    .into(),
        },
        Event::RollingBack {
            reason: "step 2 failed".into(),
        },
        Event::Undone {
            step: 2,
            target: "/etc/sysctl.d/60-lowport-unprivileged-ports.conf".into(),
        },
        Event::Undone {
            step: 1,
            target: "net.ipv4.ip_unprivileged_port_start".into(),
        },
    ] {
        update(&mut m, Msg::Progress(e));
    }
    let cause = "step 2 failed: Read-only file system".to_string();
    update(
        &mut m,
        Msg::Finished {
            result: Ok((Outcome::RolledBack { run, cause }, None)),
            exit: Exit::RolledBack,
        },
    );
    assert_eq!(
        m.exit,
        Some(Exit::RolledBack),
        "the wizard exits as the apply ended"
    );
    snap("apply_failed_rolled_back", &m);
}

#[test]
fn history_lists_runs_and_rolls_back_after_confirmation() {
    let mut m = detected(go(), true);
    let cmds = key(&mut m, KeyCode::Char('h'));
    assert_eq!(cmds, vec![Cmd::LoadHistory]);
    update(&mut m, Msg::History(Ok(runs())));
    snap("history", &m);
    key(&mut m, KeyCode::Enter);
    snap("history_confirm_rollback", &m);
    let cmds = key(&mut m, KeyCode::Char('y'));
    assert_eq!(cmds, vec![Cmd::Rollback("20261129T010203Z-1a2b".into())]);
    update(
        &mut m,
        Msg::Progress(Event::Undone {
            step: 1,
            target: FABIO.into(),
        }),
    );
    let cause = "requested by root".to_string();
    update(
        &mut m,
        Msg::Finished {
            result: Ok((
                Outcome::RolledBack {
                    run: runs()[0].id.clone(),
                    cause,
                },
                None,
            )),
            exit: Exit::Success,
        },
    );
    snap("history_rolled_back", &m);
}

#[test]
fn a_rollback_without_root_names_the_command_with_this_state_directory() {
    let mut m = detected(go(), false);
    m.options = vec!["--state-dir".into(), "/srv/low port".into()];
    key(&mut m, KeyCode::Char('h'));
    update(&mut m, Msg::History(Ok(runs())));
    let cmds = key(&mut m, KeyCode::Enter);
    assert!(
        cmds.is_empty() && m.confirm.is_none(),
        "no rollback without root"
    );
    let said = m.message.clone().unwrap_or_default();
    assert!(
        said.contains("sudo lowport --state-dir '/srv/low port' rollback 20261129T010203Z-1a2b"),
        "{said}"
    );
}

#[test]
fn help_and_a_terminal_too_small() {
    let mut m = detected(go(), true);
    key(&mut m, KeyCode::Char('?'));
    snap("help", &m);
    insta::assert_snapshot!("too_small_50x12", draw(&m, 50, 12));
}

#[test]
fn quit_when_idle_is_immediate() {
    let mut m = detected(go(), true);
    assert_eq!(key(&mut m, KeyCode::Char('q')), vec![Cmd::Quit]);
    assert!(m.quit);
    assert_eq!(
        m.exit, None,
        "nothing carried out: the runtime exits 3 (declined)"
    );
}

#[test]
fn quitting_mid_apply_rolls_back_first_then_quits() {
    let mut m = planned(MethodId::Setcap, true);
    key(&mut m, KeyCode::Enter);
    key(&mut m, KeyCode::Char('y'));
    update(
        &mut m,
        Msg::Progress(Event::Running {
            step: 1,
            summary: "set".into(),
        }),
    );
    key(&mut m, KeyCode::Char('q'));
    assert_eq!(
        key(&mut m, KeyCode::Char('y')),
        vec![Cmd::Interrupt],
        "the run is interrupted, not abandoned"
    );
    assert!(!m.quit, "still running: the wizard waits for the rollback");
    let rolled = Outcome::RolledBack {
        run: "r".into(),
        cause: "interrupted by a signal".into(),
    };
    assert_eq!(
        update(
            &mut m,
            Msg::Finished {
                result: Ok((rolled, None)),
                exit: Exit::RolledBack
            }
        ),
        vec![Cmd::Quit]
    );
    assert!(m.quit);
}

/// "Plan for another host": `o` on the Host screen picks a host; its facts replace this host's,
/// plans are made from them (never applied here) and Enter exports the script to run there; a
/// high-risk plan gets the typed review first.
#[test]
fn another_host_is_planned_from_its_facts_and_exported_not_applied() {
    let web1 = OtherHost {
        facts: Some("/srv/facts/web1.json".into()),
        target_os: None,
    };
    let start = Start {
        binary: Some("fabio".into()),
        ports: vec![PortArg::Grant(80), PortArg::Grant(443)],
        is_root: true,
        exe: LOWPORT.into(),
        other: web1.clone(),
        ..Start::default()
    };
    let (mut m, cmds) = Model::new(&start);
    let [Cmd::Gather { other, .. }] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    assert_eq!(
        *other, web1,
        "the facts given on the command line are read first"
    );
    let f = facts(go());
    update(&mut m, Msg::Methods(methods::assess(&f, &want())));
    update(&mut m, Msg::Facts(Ok(Box::new(f.clone()))));
    assert!(m.for_other_host());

    // The picker offers this host, the facts document and every stock OS install.
    key(&mut m, KeyCode::Char('o'));
    assert_eq!(m.picker, Some(1), "the picker opens on the current choice");
    assert_eq!(m.choices.len(), 2 + crate::facts::targets::TARGETS.len());
    snap("host_picker", &m);
    key(&mut m, KeyCode::Down);
    let cmds = key(&mut m, KeyCode::Enter);
    let [Cmd::Gather { other, .. }] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    assert_eq!(other.target_os.as_deref(), Some("freebsd-14"));
    assert!(
        m.facts.is_none() && m.methods.is_empty(),
        "the old host's facts are dropped"
    );
    // Back to the facts document, whose methods the fixture assesses.
    key(&mut m, KeyCode::Char('o'));
    key(&mut m, KeyCode::Up);
    let cmds = key(&mut m, KeyCode::Enter);
    assert!(matches!(&cmds[..], [Cmd::Gather { other, .. }] if *other == web1));
    update(&mut m, Msg::Methods(methods::assess(&f, &want())));
    update(&mut m, Msg::Facts(Ok(Box::new(f.clone()))));

    for (method, high) in [(MethodId::Setcap, false), (MethodId::Sysctl, true)] {
        key(&mut m, KeyCode::Enter);
        while m.selected().unwrap().id != method {
            key(&mut m, KeyCode::Down);
        }
        key(&mut m, KeyCode::Enter);
        let cmds = key(&mut m, KeyCode::Enter);
        let [Cmd::Plan(req, other)] = &cmds[..] else {
            panic!("{cmds:?}")
        };
        assert_eq!((req.method, other), (method, &web1));
        let plan = Plan::build(&f, &FactsHost::of(&f), req).unwrap();
        assert!(plan.from_facts);
        update(
            &mut m,
            Msg::Planned {
                methods: methods::assess(&f, req),
                plan: Ok(Box::new(plan)),
                facts: Box::new(f.clone()),
            },
        );
        assert!(
            m.keys().contains(&("Enter", "export script")),
            "{:?}",
            m.keys()
        );
        if !high {
            snap("preview_for_another_host", &m);
        }
        let mut cmds = key(&mut m, KeyCode::Enter);
        if high {
            assert_eq!(
                m.screen,
                Screen::Review,
                "high risk is reviewed before export too"
            );
            typed(&mut m, "sysctl");
            cmds = key(&mut m, KeyCode::Enter);
        }
        assert!(
            m.confirm.is_none(),
            "nothing asks to apply a plan for another host"
        );
        let [Cmd::Export(p)] = &cmds[..] else {
            panic!("{method}: {cmds:?}")
        };
        assert_eq!(p.method, method);
        update(
            &mut m,
            Msg::Exported(Ok("/home/op/lowport-setcap.sh".into())),
        );
        if !high {
            let screen = draw(&m, 80, 24);
            assert!(screen.contains("sh SCRIPT apply"), "{screen}");
        }
        m.exported = None;
        // Preview → Settings → Approaches → Host.
        for _ in 0..3 {
            key(&mut m, KeyCode::Esc);
        }
        assert_eq!(m.screen, Screen::Host);
    }
}

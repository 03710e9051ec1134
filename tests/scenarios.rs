//! Golden scenarios: facts in, plan out, as any user on any machine. Each folder under
//! `tests/scenarios/` holds `facts.json` (a `lowport detect --json --method …` document of the
//! target host), `args` (the `plan` arguments, one per line) and `plan.txt`: the exit code,
//! stdout and stderr of `lowport plan --facts facts.json ARGS`, compared exactly.
//!
//! After an intended change, `LOWPORT_BLESS=1 cargo test --test main scenarios::` rewrites the
//! `plan.txt` files; review each diff against /work/shared/reference/approaches.md before
//! committing it.

use std::path::{Path, PathBuf};

use crate::support::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// What `plan --facts` printed for a scenario, in the golden file's layout.
fn outcome(name: &str) -> String {
    let d = dir().join(name);
    let args = std::fs::read_to_string(d.join("args")).unwrap();
    let out = Lowport::new()
        .arg("plan")
        .arg("--facts")
        .arg(d.join("facts.json"))
        .args(args.lines().map(str::trim).filter(|l| !l.is_empty()))
        // A state directory nobody can create: planning from facts must not need one.
        .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
        .run();
    let mut text = format!("exit {}\n{}", out.code.unwrap_or(-1), out.stdout);
    if !out.stderr.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&out.stderr);
    }
    text
}

fn check(name: &str) {
    let golden = dir().join(name).join("plan.txt");
    let got = outcome(name);
    if std::env::var_os("LOWPORT_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; bless it with LOWPORT_BLESS=1", golden.display()));
    if got != want {
        let diff = similar::TextDiff::from_lines(&want, &got)
            .unified_diff()
            .header("plan.txt", "now")
            .to_string();
        panic!("scenario {name} changed (LOWPORT_BLESS=1 rewrites it):\n{diff}");
    }
}

/// `detect --json --method M` records every answer planning needs: the plan made from that
/// document elsewhere is the plan made live, except for its mark.
#[test]
fn a_plan_from_detected_facts_is_the_live_plan() {
    let t = TestEnv::new();
    for args in [
        ["--method", "sysctl", "--port", "80"],
        ["--method", "redirect-nft", "--port", "80:9999"],
        ["--method", "redirect-iptables", "--port", "443:9443"],
    ] {
        let facts = t
            .lowport()
            .arg("detect")
            .args(args)
            .arg("--json")
            .run()
            .code(0);
        let file = t.state.with_file_name("facts.json");
        std::fs::write(&file, &facts.stdout).unwrap();
        let plan = |extra: &[&str]| {
            let out = t
                .lowport()
                .arg("plan")
                .args(args)
                .args(extra)
                .arg("--json")
                .run();
            let mut v = out.json();
            let mark = v.as_object_mut().unwrap().remove("from_facts");
            (out.code, v, mark)
        };
        let (live_code, live, live_mark) = plan(&[]);
        let (code, from_facts, mark) = plan(&["--facts", file.to_str().unwrap()]);
        assert_eq!(code, live_code, "{args:?}");
        assert_eq!(from_facts, live, "{args:?}");
        assert_eq!((live_mark, mark), (Some(false.into()), Some(true.into())));
    }
}

/// A plan made from facts is for review and export: `apply` refuses it before anything else,
/// as any user.
#[test]
fn apply_refuses_a_plan_made_from_facts() {
    let t = TestEnv::new();
    let plan = t.state.with_file_name("plan.json");
    let facts = dir().join("sysctl_lowers_the_boundary/facts.json");
    t.lowport()
        .args(["plan", "--method", "sysctl", "--port", "80", "--facts"])
        .arg(&facts)
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0)
        .stdout_has("`lowport apply` refuses it");
    t.lowport()
        .arg("apply")
        .arg("--plan")
        .arg(&plan)
        .args(["--yes", "--accept-risk"])
        .run()
        .code(7)
        .stderr_has("made from a facts document");
    assert_eq!(t.runs(), 0);
}

/// `methods --facts` judges only what the document holds: a user it was not gathered for is
/// refused, not reported as missing on that host.
#[test]
fn methods_from_facts_refuse_what_the_document_does_not_hold() {
    let t = TestEnv::new();
    let detected = t
        .lowport()
        .args(["detect", "--port", "80", "--json"])
        .run()
        .code(0);
    let facts = t.state.with_file_name("facts.json");
    std::fs::write(&facts, &detected.stdout).unwrap();
    let methods = |extra: &[&str]| {
        t.lowport()
            .args(["methods", "--port", "80", "--json"])
            .args(extra)
            .arg("--facts")
            .arg(&facts)
            .run()
    };
    methods(&["--user", "www"])
        .code(2)
        .stderr_has("does not hold the user www");
    let list = methods(&[]).code(0).json();
    assert_eq!(list["methods"].as_array().unwrap().len(), 7);
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        /// Every folder is a listed scenario, so none is silently skipped.
        #[test]
        fn every_folder_is_a_scenario() {
            let listed = [$(stringify!($name)),*];
            for e in std::fs::read_dir(dir()).unwrap().flatten() {
                if e.path().is_dir() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    assert!(listed.contains(&name.as_str()), "{name} is not listed");
                }
            }
        }
    };
}

scenarios!(
    authbind_dynamic_binary,
    authbind_needs_a_user,
    authbind_redirect_port_invalid,
    authbind_static_go_refused,
    redirect_iptables,
    redirect_iptables_missing_tool_refused,
    redirect_nft,
    redirect_nft_bare_port_invalid,
    redirect_nft_json,
    redirect_nft_without_systemd,
    setcap_already_in_place,
    setcap_binary_not_in_facts,
    setcap_dynamic_binary_warned,
    setcap_fabio,
    setcap_fabio_json,
    setcap_group_fabio,
    setcap_kernel_without_file_caps_refused,
    setcap_nosuid_refused,
    setcap_other_capability_refused,
    setcap_script_refused,
    setcap_state_unknown,
    setcap_symlinked_binary_said,
    setcap_unit_with_no_new_privileges_refused,
    setcap_user_cannot_execute_refused,
    setcap_user_not_in_facts,
    setcap_writable_by_non_root_refused,
    // Solaris and illumos: smf, solaris-defaultpriv.
    smf_binary_not_executable_refused,
    smf_binary_path_quoted,
    smf_illumos,
    smf_relative_binary_invalid,
    smf_solaris_11_4_ports_only,
    smf_target_os_illumos,
    smf_target_os_solaris_11_4,
    smf_user_missing_invalid,
    solaris_defaultpriv_already_in_place,
    solaris_defaultpriv_extends_its_defaultpriv,
    solaris_defaultpriv_fresh,
    solaris_defaultpriv_limit_refused,
    solaris_defaultpriv_merges_the_users_entry,
    solaris_defaultpriv_target_os,
    socket_activation_unavailable,
    sysctl_already_in_place,
    sysctl_lowers_the_boundary,
    sysctl_old_kernel_refused,
    sysctl_overlap_refused,
    sysctl_two_ports_open_the_range_between,
    systemd_as_nobody_warned,
    systemd_replaceable_binary_warned,
    systemd_root_user_invalid,
    systemd_drop_in_for_a_packaged_unit,
    systemd_dynamic_user,
    systemd_new_unit_and_user,
    systemd_regenerates_its_own_unit,
    systemd_sandbox_relaxations,
    systemd_too_old_refused,
    // FreeBSD (freebsd-portacl, freebsd-reservedhigh; documents by freebsd_make.py)
    freebsd_portacl_already_in_place,
    freebsd_portacl_fresh,
    freebsd_portacl_merges_foreign_rules,
    freebsd_portacl_target_os_14,
    freebsd_portacl_user_missing_on_target,
    freebsd_portacl_user_not_in_facts,
    freebsd_reservedhigh_already_open,
    freebsd_reservedhigh_fresh,
    freebsd_reservedhigh_target_os_14,
    // pf and npf redirects (FreeBSD, OpenBSD, NetBSD, macOS): facts written by pf_make.py
    npf_already_in_place,
    npf_bare_port_invalid,
    npf_fresh_host,
    npf_interface_missing,
    npf_interface_with_spaces_in_facts,
    npf_merges_npf_conf,
    npf_target_os_netbsd_10,
    pf_freebsd_already_in_place,
    pf_freebsd_bare_port_invalid,
    pf_freebsd_fresh_host,
    pf_freebsd_interface_missing,
    pf_freebsd_interface_with_spaces,
    pf_freebsd_merges_pf_conf,
    pf_freebsd_pf_rules_elsewhere_refused,
    pf_freebsd_target_os_14,
    pf_freebsd_target_os_15,
    pf_macos_already_in_place,
    pf_macos_bare_port_invalid,
    pf_macos_high_sierra,
    pf_macos_interface_missing,
    pf_macos_interface_with_spaces,
    pf_macos_no_com_apple_anchor_refused,
    pf_macos_specific_address,
    pf_macos_target_os_10_13,
    pf_macos_target_os_14,
    pf_openbsd_already_in_place,
    pf_openbsd_bare_port_invalid,
    pf_openbsd_interface_with_spaces,
    pf_openbsd_merges_pf_conf,
    pf_openbsd_pf_disabled_refused,
    pf_openbsd_stock_pf_conf,
    pf_openbsd_target_os_7,
    // end of pf and npf
    // macOS and Windows (issue 7; branch macwin). The facts of a Mac and of a Windows server are
    // hand-made (no such host here); `*_target_os*` scenarios link the representative document,
    // as `--target-os` loads it.
    launchd_already_in_place,
    launchd_escaped_args,
    launchd_macos_10_13_behind_pf,
    launchd_macos_10_13_refused,
    launchd_macos_14,
    launchd_macos_14_behind_pf,
    launchd_relative_binary_invalid,
    launchd_root_user_invalid,
    launchd_target_os_binary_name_invalid,
    launchd_target_os_macos_10_13,
    launchd_target_os_macos_14,
    launchd_user_unknown,
    windows_administered_exclusion_warned,
    windows_excluded_range_refused,
    windows_http_sys_refused,
    windows_plan,
    windows_rule_already_in_place,
    windows_target_os,
    windows_unix_binary_invalid,
    windows_user_invalid,
);

// FreeBSD: a `*_target_os_14` scenario's document is `--target-os freebsd-14`'s own, and that
// flag plans exactly what its golden file shows.
#[test]
fn freebsd_target_os_plans_are_their_scenarios() {
    let asset: serde_json::Value =
        serde_json::from_str(include_str!("../assets/targets/freebsd-14.json")).unwrap();
    for name in [
        "freebsd_portacl_target_os_14",
        "freebsd_reservedhigh_target_os_14",
    ] {
        let d = dir().join(name);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("facts.json")).unwrap()).unwrap();
        assert_eq!(
            doc, asset,
            "{name}: facts.json is not the representative document"
        );
        let args = std::fs::read_to_string(d.join("args")).unwrap();
        let out = Lowport::new()
            .args(["plan", "--target-os", "freebsd-14"])
            .args(args.lines().map(str::trim).filter(|l| !l.is_empty()))
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .run();
        let mut text = format!("exit {}\n{}", out.code.unwrap_or(-1), out.stdout);
        if !out.stderr.is_empty() {
            text.push_str("--- stderr\n");
            text.push_str(&out.stderr);
        }
        let golden = std::fs::read_to_string(d.join("plan.txt")).unwrap();
        assert_eq!(text, golden, "{name}");
    }
}

// pf and npf redirects (FreeBSD, OpenBSD, NetBSD, macOS): a `*_target_os_*` scenario holds the
// representative document of its release, so its golden plan is the `--target-os` plan.
#[test]
fn pf_and_npf_target_os_scenarios_are_the_target_os_plans() {
    for (name, os) in [
        ("pf_freebsd_target_os_14", "freebsd-14"),
        ("pf_freebsd_target_os_15", "freebsd-15"),
        ("pf_openbsd_target_os_7", "openbsd-7"),
        ("pf_macos_target_os_14", "macos-14"),
        ("pf_macos_target_os_10_13", "macos-10.13"),
        ("npf_target_os_netbsd_10", "netbsd-10"),
    ] {
        let d = dir().join(name);
        let args = std::fs::read_to_string(d.join("args")).unwrap();
        let out = Lowport::new()
            .args(["plan", "--target-os", os])
            .args(args.lines().map(str::trim).filter(|l| !l.is_empty()))
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .run();
        let mut text = format!("exit {}\n{}", out.code.unwrap_or(-1), out.stdout);
        if !out.stderr.is_empty() {
            text.push_str("--- stderr\n");
            text.push_str(&out.stderr);
        }
        assert_eq!(
            text,
            outcome(name),
            "{name}: --target-os {os} plans otherwise"
        );
        assert!(
            text.contains(&format!("planned for a stock {os} install")),
            "{text}"
        );
    }
}
// end of pf and npf

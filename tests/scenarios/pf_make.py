#!/usr/bin/env python3
"""Makes facts.json and args of the pf_* and npf_* scenarios, as any user:
`python3 tests/scenarios/pf_make.py target/debug/lowport tests/scenarios [NAME...]`.

There is no FreeBSD, OpenBSD, NetBSD or macOS host here, so each document is written as
`lowport detect --json --method M` would record it on one: the release's representative document
(assets/targets/NAME.json: stock program paths and files) plus one host's own facts (its name, the
interface of its default route, its rc.conf and pf.conf, whether the pf module is loaded, and what
planning read there: file states, check answers, root and wheel). An already-in-place document
holds what an apply leaves, taken from the plan lowport makes for the same host before it.
The *_target_os_* scenarios hold the representative document itself (scenarios.rs checks that
planning from it is planning with --target-os)."""
import copy, hashlib, json, os, subprocess, sys

LP, OUT = sys.argv[1], sys.argv[2]
ONLY = sys.argv[3:]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = "/etc/lowport/pf-redirect.conf"
PLIST = "/Library/LaunchDaemons/lowport.pf-redirect.plist"
P = ["--port", "80:8080", "--port", "443:8443"]
# The files the methods write, which planning reads whole on the host.
WRITES = {"/etc/pf.conf", "/etc/npf.conf", "/etc/rc.conf.d/npf", RULES, PLIST}


def target(name):
    with open(os.path.join(ROOT, "assets/targets", name + ".json")) as f:
        return json.load(f)


def quote(w):
    """shell_words::quote, which keys the checks lowport records."""
    special = set("|&;<>()$`\\\" \t*?[#~=%'\n")
    if w == "":
        return "''"
    if not any(c in special for c in w):
        return w
    return "'" + w.replace("'", "'\\''") + "'"


def state(text, mode="0644", n=1):
    if text is None:
        return {"exists": False, "gid": None, "identity": None, "sha256": None, "uid": None,
                "xattrs": {}}
    b = text.encode()
    return {"exists": True, "gid": 0, "identity": f"98:{4100 + n}:{len(b)}:1760000000{n:09d}",
            "mode": mode, "sha256": hashlib.sha256(b).hexdigest(), "uid": 0, "xattrs": {}}


def host(os_name, hostname, interface, files, modules=None, modes=None):
    """A host of release `os_name`: its representative document made one real host."""
    f = target(os_name)
    del f["target_os"]
    f["hostname"] = hostname
    for t in ["setcap", "getcap", "nft", "iptables", "ip6tables", "authbind", "systemctl",
              "systemd-analyze", "useradd"]:
        f["tools"].setdefault(t, None)
    f["tools"].setdefault("sysctl", "/usr/sbin/sysctl" if os_name.startswith("macos") else "/sbin/sysctl")
    plat = f.setdefault("platform", {})
    if interface is not None:
        plat["interface"] = interface
    plat.setdefault("files", {}).update(files)
    if modules is not None:
        plat["modules"] = modules
    # What planning read on that host: every file it may write, the accounts of their owner.
    modes = modes or {}
    f["host"] = {
        "checks": {}, "exposures": {}, "group_names": {}, "links": {}, "sysctls": {},
        "user_names": {}, "groups": {"wheel": 0},
        "users": {"root": {"gid": 0, "group": "wheel", "groups": [0], "name": "root", "uid": 0}},
        "files": {p: state(t, modes.get(p, "0644"), i)
                  for i, (p, t) in enumerate(sorted(plat["files"].items())) if p in WRITES},
        "texts": {p: t for p, t in plat["files"].items() if p in WRITES},
    }
    return f


def plan_json(facts, args):
    tmp = os.path.join(OUT, ".pf_make.json")
    with open(tmp, "w") as fh:
        json.dump(facts, fh)
    out = subprocess.run([LP, "plan", "--facts", tmp, "--json"] + args, capture_output=True,
                         text=True, env=dict(os.environ, LOWPORT_STATE_DIR="/nonexistent"))
    os.remove(tmp)
    if out.returncode != 0:
        sys.exit(f"planning failed: {out.stderr}")
    return json.loads(out.stdout)


def answer_checks(facts, args, value):
    """Records `value` as every check's answer, keyed as lowport keys them."""
    for s in plan_json(facts, args)["steps"]:
        c = s["action"].get("check")
        if c:
            facts["host"]["checks"][" ".join(quote(w) for w in c)] = value


def applied(facts, args):
    """The host after an apply of the plan made for `facts`: every file as written, every
    check answering yes."""
    done = copy.deepcopy(facts)
    for s in plan_json(facts, args)["steps"]:
        a = s["action"]
        if a["type"] == "write_file":
            done["platform"]["files"][a["path"]] = a["content"]
            done["host"]["texts"][a["path"]] = a["content"]
            done["host"]["files"][a["path"]] = state(a["content"], a["mode"], 7)
    return done


def scenario(name, facts, args):
    if ONLY and name not in ONLY:
        return
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "facts.json"), "w") as fh:
        json.dump(facts, fh, indent=2, sort_keys=True)
        fh.write("\n")
    with open(os.path.join(d, "args"), "w") as fh:
        fh.write("\n".join(args) + "\n")


def representative(name, os_name, args):
    scenario(name, target(os_name), args)


# --- FreeBSD ------------------------------------------------------------------------------
FREEBSD_RC = """hostname="web1"
ifconfig_vtnet0="DHCP"
ifconfig_vtnet0_ipv6="inet6 accept_rtadv"
sshd_enable="YES"
ntpd_enable="YES"
ntpd_sync_on_start="YES"
moused_nondefault_enable="NO"
# Set dumpdev to "AUTO" to enable crash dumps, "NO" to disable
dumpdev="AUTO"
zfs_enable="YES"
"""
FREEBSD_PF = """# /etc/pf.conf on web1
ext_if = "vtnet0"
tcp_services = "{ ssh, domain }"
table <bruteforce> persist

set skip on lo0
set block-policy return

scrub in all

nat on $ext_if from 10.8.0.0/24 to any -> ($ext_if)

# Everything in is refused, except ssh and dns; abusers go to the table.
block in all
block quick from <bruteforce>
pass in on $ext_if proto tcp to port $tcp_services keep state \\
\t(max-src-conn 50, max-src-conn-rate 10/5, overload <bruteforce> flush global)
pass out all keep state
"""
FB = ["--method", "pf-freebsd"]
fresh = host("freebsd-14", "web1", "vtnet0",
             {"/etc/pf.conf": None, "/etc/rc.conf": FREEBSD_RC, "/etc/rc.conf.local": None,
              RULES: None},
             modules={"pf": False})
answer_checks(fresh, FB + P, False)
scenario("pf_freebsd_fresh_host", fresh, FB + P)
pfhost_rc = FREEBSD_RC + 'pf_enable="YES"\npflog_enable="YES"\n'
merge = host("freebsd-14", "web1", "vtnet0",
             {"/etc/pf.conf": FREEBSD_PF, "/etc/rc.conf": pfhost_rc, "/etc/rc.conf.local": None,
              RULES: None},
             modules={"pf": True}, modes={"/etc/pf.conf": "0600"})
answer_checks(merge, FB + P, True)
scenario("pf_freebsd_merges_pf_conf", merge, FB + P)
scenario("pf_freebsd_already_in_place", applied(merge, FB + P), FB + P)
elsewhere = copy.deepcopy(merge)
elsewhere["platform"]["files"]["/etc/rc.conf"] = pfhost_rc + 'pf_rules="/usr/local/etc/pf.conf"\n'
scenario("pf_freebsd_pf_rules_elsewhere_refused", elsewhere, FB + P)
nodefault = copy.deepcopy(fresh)
del nodefault["platform"]["interface"]
scenario("pf_freebsd_interface_missing", nodefault, FB + P)
scenario("pf_freebsd_interface_with_spaces", fresh, FB + P + ["--interface", "vtnet0 pass all"])
scenario("pf_freebsd_bare_port_invalid", fresh, FB + ["--port", "80"])
representative("pf_freebsd_target_os_14", "freebsd-14", FB + P + ["--interface", "vtnet0"])
representative("pf_freebsd_target_os_15", "freebsd-15", FB + P + ["--interface", "em0"])

# --- OpenBSD ------------------------------------------------------------------------------
OPENBSD_PF = """#\t$OpenBSD: pf.conf,v 1.55 2017/12/03 20:40:04 sthen Exp $
#
# See pf.conf(5) and /etc/examples/pf.conf

set skip on lo

table <abusive_hosts> persist
block in quick from <abusive_hosts>

block return\t# block stateless traffic
pass\t\t# establish keep-state

pass in on egress proto tcp to port ssh \\
\t(max-src-conn 20, max-src-conn-rate 5/10, overload <abusive_hosts> flush)

# By default, do not permit remote connections to X11
block return in on ! lo0 proto tcp to port 6000:6010

# Port build user does not need network
block return out log proto {tcp udp} user _pbuild
"""
OB = ["--method", "pf-openbsd"]
ostock = target("openbsd-7")["platform"]["files"]["/etc/pf.conf"]
ofresh = host("openbsd-7", "gw1", "vio0",
              {"/etc/pf.conf": ostock, "/etc/rc.conf.local": "httpd_flags=\npkg_scripts=\n",
               RULES: None}, modes={"/etc/pf.conf": "0600"})
scenario("pf_openbsd_stock_pf_conf", ofresh, OB + P)
omerge = copy.deepcopy(ofresh)
omerge["platform"]["files"]["/etc/pf.conf"] = OPENBSD_PF
omerge["host"]["texts"]["/etc/pf.conf"] = OPENBSD_PF
omerge["host"]["files"]["/etc/pf.conf"] = state(OPENBSD_PF, "0600", 3)
scenario("pf_openbsd_merges_pf_conf", omerge, OB + P + ["--interface", "vio0"])
scenario("pf_openbsd_already_in_place", applied(omerge, OB + P + ["--interface", "vio0"]),
         OB + P + ["--interface", "vio0"])
off = copy.deepcopy(ofresh)
off["platform"]["files"]["/etc/rc.conf.local"] = "httpd_flags=\npf=NO\n"
scenario("pf_openbsd_pf_disabled_refused", off, OB + P)
scenario("pf_openbsd_interface_with_spaces", ofresh, OB + P + ["--interface", "vio0 quick"])
scenario("pf_openbsd_bare_port_invalid", ofresh, OB + ["--port", "443"])
representative("pf_openbsd_target_os_7", "openbsd-7", OB + P)

# --- macOS --------------------------------------------------------------------------------
MB = ["--method", "pf-macos"]
mstock = target("macos-14")["platform"]["files"]["/etc/pf.conf"]
mfresh = host("macos-14", "mini1", "en0", {"/etc/pf.conf": mstock, RULES: None, PLIST: None})
scenario("pf_macos_specific_address", mfresh, MB + P)
old = host("macos-10.13", "mini2", "en1", {"/etc/pf.conf": mstock, RULES: None, PLIST: None})
scenario("pf_macos_high_sierra", old, MB + ["--port", "80:8080"])
scenario("pf_macos_already_in_place", applied(mfresh, MB + P), MB + P)
custom = copy.deepcopy(mfresh)
custom["platform"]["files"]["/etc/pf.conf"] = ("set skip on lo0\nblock in all\n"
                                               "pass out all keep state\n"
                                               "pass in proto tcp to port 22\n")
scenario("pf_macos_no_com_apple_anchor_refused", custom, MB + P)
nodefault = copy.deepcopy(mfresh)
del nodefault["platform"]["interface"]
scenario("pf_macos_interface_missing", nodefault, MB + P)
scenario("pf_macos_interface_with_spaces", mfresh, MB + P + ["--interface", "en0 en1"])
scenario("pf_macos_bare_port_invalid", mfresh, MB + ["--port", "80"])
representative("pf_macos_target_os_14", "macos-14", MB + P + ["--interface", "en0"])
representative("pf_macos_target_os_10_13", "macos-10.13", MB + P + ["--interface", "en0"])

# --- NetBSD -------------------------------------------------------------------------------
NETBSD_RC = """#\t$NetBSD: rc.conf,v 1.97 2014/07/14 12:29:48 mbalmer Exp $
#
# See rc.conf(5) for more information.
#
# Use program=YES to enable program, NO to disable it. program_flags are
# passed to program on the command line.
#

# Load the defaults in from /etc/defaults/rc.conf (if it's readable).
# These can be overridden below.
#
if [ -r /etc/defaults/rc.conf ]; then
\t. /etc/defaults/rc.conf
fi

# If this is not set to YES, the system will drop into single-user mode.
#
rc_configured=YES

# Add local overrides below.
#
hostname=nb1
dhcpcd=YES
sshd=YES
ntpd=YES
"""
NETBSD_NPF = """$ext_if = ifaddrs(vioif0)
$services_tcp = { ssh, http, https }

procedure "log" {
\tlog: npflog0
}

group "external" on vioif0 {
\tpass stateful out final all
\tpass stateful in final proto tcp to $ext_if port $services_tcp
\tblock in final all apply "log"
}

group default {
\tpass final on lo0 all
\tblock all
}
"""
NB = ["--method", "npf"]
nfresh = host("netbsd-10", "nb1", "vioif0",
              {"/etc/npf.conf": None, "/etc/rc.conf": NETBSD_RC, "/etc/rc.conf.d/npf": None})
scenario("npf_fresh_host", nfresh, NB + P)
nmerge = host("netbsd-10", "nb1", "vioif0",
              {"/etc/npf.conf": NETBSD_NPF, "/etc/rc.conf": NETBSD_RC + "npf=YES\n",
               "/etc/rc.conf.d/npf": None})
scenario("npf_merges_npf_conf", nmerge, NB + P)
scenario("npf_already_in_place", applied(nmerge, NB + P), NB + P)
nodefault = copy.deepcopy(nfresh)
del nodefault["platform"]["interface"]
scenario("npf_interface_missing", nodefault, NB + P)
spaces = copy.deepcopy(nfresh)
spaces["platform"]["interface"] = "vioif0 pass"
scenario("npf_interface_with_spaces_in_facts", spaces, NB + P)
scenario("npf_bare_port_invalid", nfresh, NB + ["--port", "80"])
representative("npf_target_os_netbsd_10", "netbsd-10", NB + P + ["--interface", "vioif0"])

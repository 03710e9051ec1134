#!/usr/bin/env python3
"""Writes tests/scenarios/freebsd_*/{facts.json,args} (`python3 tests/scenarios/freebsd_make.py
target/debug/lowport tests/scenarios`). There is no FreeBSD host here, so each document is
written as `lowport detect --json --method M` would save it on a FreeBSD 14.3 host: the
platform section (what the methods' needs name), the accounts, and the answers planning read
(file states and texts, sysctls, checks). Contents are real: the stock /etc/sysctl.conf of
14.x (freebsd-src sbin/sysctl/sysctl.conf), the loader.conf bsdinstall writes for a ZFS root,
an rc.conf as bsdinstall leaves it, stock tool paths, stock sysctl values (reservedlow 0,
reservedhigh 1023, kern.securelevel -1) and mac_portacl's defaults when it is loaded."""
import copy, hashlib, json, os, subprocess, sys

LP = sys.argv[1]
OUT = sys.argv[2]
ROOT_DIR = os.path.dirname(os.path.abspath(__file__))

SYSCTL_CONF = (
    "#\n#  This file is read when going to multi-user and its contents piped thru\n"
    "#  ``sysctl'' to adjust kernel values.  ``man 5 sysctl.conf'' for details.\n#\n\n"
    "# Uncomment this to prevent users from seeing information about processes that\n"
    "# are being run under another UID.\n#security.bsd.see_other_uids=0\n"
)
# bsdinstall's zfsboot for a ZFS root on GPT.
LOADER_CONF = (
    'kern.geom.label.disk_ident.enable="0"\n'
    'kern.geom.label.gptid.enable="0"\n'
    'cryptodev_load="YES"\n'
    'zfs_load="YES"\n'
)
RC_CONF = (
    'hostname="web1"\n'
    'ifconfig_vtnet0="DHCP"\n'
    'ifconfig_vtnet0_ipv6="inet6 accept_rtadv"\n'
    'sshd_enable="YES"\n'
    'ntpd_enable="YES"\n'
    'ntpd_sync_on_start="YES"\n'
    'moused_nondefault_enable="NO"\n'
    '# Set dumpdev to "AUTO" to enable crash dumps, "NO" to disable\n'
    'dumpdev="AUTO"\n'
    'zfs_enable="YES"\n'
)
RC_SCRIPT = "/usr/local/etc/rc.d/lowport_portacl"
KLDSTAT_CHECK = "/sbin/kldstat -q -m mac_portacl"
PORTACL_DEFAULTS = {
    "security.mac.portacl.enabled": "1",
    "security.mac.portacl.port_high": "1023",
    "security.mac.portacl.suser_exempt": "1",
}
UNLOADED = {k: None for k in list(PORTACL_DEFAULTS) + ["security.mac.portacl.rules"]}

inode = [100]


def state(text, mode="0644"):
    """A file's state as lowport records it; None for an absent file."""
    if text is None:
        return {"exists": False, "sha256": None, "identity": None, "uid": None, "gid": None,
                "xattrs": {}}
    inode[0] += 1
    data = text.encode()
    return {"exists": True, "sha256": hashlib.sha256(data).hexdigest(),
            "identity": f"1507328:{inode[0]}:{len(data)}:1747300000000000000",
            "mode": mode, "uid": 0, "gid": 0, "xattrs": {}}


def account(name, uid, group=None, gid=None):
    return {"name": name, "uid": uid, "gid": gid or uid, "groups": [gid or uid],
            "group": group or name}


def document(files, sysctls, loaded, users, answers_for, ports):
    """files: path -> text (None absent); sysctls: key -> value; answers_for: the paths and
    sysctls planning reads (the method's actions)."""
    doc = json.load(open(os.path.join(ROOT_DIR, "../../assets/targets/freebsd-14.json")))
    del doc["target_os"]
    doc["hostname"] = "web1"
    doc["tools"].update({t: None for t in ["setcap", "getcap", "nft", "iptables", "ip6tables",
                                           "authbind", "systemctl", "systemd-analyze",
                                           "useradd"]})
    doc["accounts"] = {"users": users, "groups": {}}
    doc["ports"] = ports
    doc["platform"] = {"files": files, "sysctls": sysctls, "modules": {"mac_portacl": loaded}}
    files_a, texts = {}, {}
    for path in answers_for["files"]:
        text = files[path]
        files_a[path] = state(text, "0555" if path == RC_SCRIPT else "0644")
        texts[path] = text
    doc["host"] = {
        "files": files_a, "texts": texts, "links": {},
        "sysctls": {k: sysctls[k] for k in answers_for["sysctls"]},
        "checks": {KLDSTAT_CHECK: loaded} if not loaded else {},
        "exposures": {},
        "users": {"root": account("root", 0, "wheel", 0)},
        "user_names": {}, "groups": {"wheel": 0}, "group_names": {},
    }
    return doc


def write(name, doc, args):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(d + "/facts.json", "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    with open(d + "/args", "w") as fh:
        fh.write("\n".join(args) + "\n")


P = ["--port", "80", "--port", "443"]
PORTACL = ["--method", "freebsd-portacl", "--user", "fabio"] + P
FABIO = {"fabio": account("fabio", 1002)}
PORTACL_FILES = ["/boot/loader.conf", "/etc/rc.conf", "/etc/sysctl.conf", RC_SCRIPT]


def stock_files(**over):
    f = {"/boot/loader.conf": LOADER_CONF, "/etc/sysctl.conf": SYSCTL_CONF,
         "/etc/sysctl.conf.local": None, "/etc/rc.conf": RC_CONF, RC_SCRIPT: None}
    f.update(over)
    return f


def stock_sysctls(**over):
    s = {"kern.securelevel": "-1", "net.inet.ip.portrange.reservedlow": "0",
         "net.inet.ip.portrange.reservedhigh": "1023"}
    s.update(UNLOADED)
    s.update(over)
    return s


PORTACL_READS = {"files": PORTACL_FILES, "sysctls": [
    "security.mac.portacl.rules", "net.inet.ip.portrange.reservedlow",
    "net.inet.ip.portrange.reservedhigh"]}

# A stock host: the module is not loaded, nothing is configured.
fresh = document(stock_files(), stock_sysctls(), False, FABIO, PORTACL_READS, [80, 443])
write("freebsd_portacl_fresh", fresh, PORTACL)

# mac_portacl already serves a mail relay (uid 1003, TCP 25 and 587) the Handbook's way:
# reservedhigh=0 in sysctl.conf, unguarded. lowport merges, keeps those rules, and moves
# reservedhigh out of sysctl.conf.
handbook = SYSCTL_CONF + (
    "security.mac.portacl.rules=uid:1003:tcp:25,uid:1003:tcp:587\n"
    "net.inet.ip.portrange.reservedlow=0\n"
    "net.inet.ip.portrange.reservedhigh=0\n"
)
merge_sysctls = stock_sysctls(**PORTACL_DEFAULTS, **{
    "security.mac.portacl.rules": "uid:1003:tcp:25,uid:1003:tcp:587",
    "net.inet.ip.portrange.reservedhigh": "0"})
merge = document(stock_files(**{"/boot/loader.conf": LOADER_CONF + 'mac_portacl_load="YES"\n',
                                "/etc/sysctl.conf": handbook}),
                 merge_sysctls, True, FABIO, PORTACL_READS, [80, 443])
write("freebsd_portacl_merges_foreign_rules", merge, PORTACL)

# After lowport's own run: every file and setting as the fresh plan leaves them.
plan = json.loads(subprocess.run(
    [LP, "plan", "--facts", os.path.join(OUT, "freebsd_portacl_fresh/facts.json"), "--json"]
    + PORTACL, capture_output=True, text=True, check=True).stdout)
written = {s["action"]["path"]: s["action"]["content"] for s in plan["steps"]
           if s["action"]["type"] == "write_file"}
done = document(stock_files(**written),
                stock_sysctls(**PORTACL_DEFAULTS, **{
                    "security.mac.portacl.rules": "uid:1002:tcp:80,uid:1002:tcp:443",
                    "net.inet.ip.portrange.reservedhigh": "0"}),
                True, FABIO, PORTACL_READS, [80, 443])
write("freebsd_portacl_already_in_place", done, PORTACL)

# The operator names a user the target does not have: bad input.
missing = copy.deepcopy(fresh)
missing["accounts"]["users"] = {"fabio": None}
write("freebsd_portacl_user_missing_on_target", missing, PORTACL)

# The document was gathered without --user fabio: it cannot tell fabio's uid.
unknown = copy.deepcopy(fresh)
unknown["accounts"]["users"] = {}
write("freebsd_portacl_user_not_in_facts", unknown, PORTACL)

RESERVEDHIGH = ["--method", "freebsd-reservedhigh"] + P
NOBODY = {"nobody": account("nobody", 65534)}
RH_READS = {"files": ["/etc/sysctl.conf"], "sysctls": ["net.inet.ip.portrange.reservedhigh"]}
write("freebsd_reservedhigh_fresh",
      document(stock_files(), stock_sysctls(), False, NOBODY, RH_READS, [80, 443]),
      RESERVEDHIGH)
# The seed's recipe, done by hand and persisted: nothing to grant.
seeded = SYSCTL_CONF + "net.inet.ip.portrange.reservedhigh=79\n"
write("freebsd_reservedhigh_already_open",
      document(stock_files(**{"/etc/sysctl.conf": seeded}),
               stock_sysctls(**{"net.inet.ip.portrange.reservedhigh": "79"}),
               False, NOBODY, {"files": [], "sysctls": []}, [80, 443]),
      RESERVEDHIGH)

# --target-os: the scenario's document is the representative one itself (a test holds them
# equal and runs `plan --target-os` against the same golden file).
target = json.load(open(os.path.join(ROOT_DIR, "../../assets/targets/freebsd-14.json")))
write("freebsd_portacl_target_os_14", target, PORTACL)
write("freebsd_reservedhigh_target_os_14", target, RESERVEDHIGH)

#!/usr/bin/env python3
"""Makes tests/scenarios/*/facts.json and args (as root: `python3 tests/scenarios/make.py
target/debug/lowport tests/scenarios`): a temporary root per scenario, `lowport detect
--json --method M` on it (as root), then a few documented edits (root '/', a fixed host name)."""
import json, os, shutil, subprocess, sys, tempfile
LP = sys.argv[1]; OUT = sys.argv[2]
FABIO = "/usr/local/bin/fabio"

def tree():
    d = tempfile.mkdtemp(prefix="fx")
    os.chmod(d, 0o755)
    r = os.path.join(d, "root")
    os.makedirs(r + "/etc"); os.makedirs(r + "/usr/local/bin")
    for f in ["passwd", "group"]:
        shutil.copy("/etc/" + f, r + "/etc/" + f)
    shutil.copy("/usr/bin/true", r + FABIO); os.chmod(r + FABIO, 0o755)
    return r

def go_static(f):
    f["binary"]["exec"] = {"kind": "elf", "static_linked": True, "go": True}

ONLY = sys.argv[3:]  # optional: make only these scenarios

def scenario(name, detect, plan, setup=None, edit=None):
    if ONLY and name not in ONLY:
        return
    r = tree()
    if setup: setup(r)
    out = subprocess.run([LP, "--root", r, "detect", "--json"] + detect, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{name}: detect failed: {out.stderr}")
    f = json.loads(out.stdout)
    f["root"] = "/"
    f["hostname"] = "web1"
    f["os"].update(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)", kernel="6.1.0-18-amd64")
    # The machine that makes the fixtures has no systemd as PID 1; the hosts they stand for do.
    f["init"] = {"pid1": "systemd", "systemd": True, "systemd_version": 252}
    if edit: edit(f)
    d = os.path.join(OUT, name); os.makedirs(d, exist_ok=True)
    with open(d + "/facts.json", "w") as fh:
        json.dump(f, fh, indent=2, sort_keys=True); fh.write("\n")
    with open(d + "/args", "w") as fh:
        fh.write("\n".join(plan) + "\n")
    shutil.rmtree(os.path.dirname(r))

def add_user(name):
    def s(r):
        subprocess.run(["useradd", "--root", r, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    return s

B = ["--binary", FABIO]
P = ["--port", "80", "--port", "443"]
scenario("setcap_fabio", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P, edit=go_static)
scenario("setcap_fabio_json", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P + ["--json"], edit=go_static)
scenario("setcap_group_fabio", B + P + ["--group", "fabio", "--user", "fabio", "--method", "setcap"],
         ["--method", "setcap"] + B + P + ["--group", "fabio", "--user", "fabio"], setup=add_user("fabio"), edit=go_static)
def nosuid(f):
    go_static(f); f["binary"]["mount"]["options"].append("nosuid")
scenario("setcap_nosuid_refused", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P, edit=nosuid)
def script(r):
    with open(r + FABIO, "w") as fh: fh.write("#!/bin/sh\nexec /opt/fabio/fabio \"$@\"\n")
scenario("setcap_script_refused", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P, setup=script)
scenario("setcap_already_in_place", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P,
         setup=lambda r: subprocess.run(["setcap", "cap_net_bind_service=+ep", r + FABIO], check=True), edit=go_static)
def forget(f):
    go_static(f); f.pop("host", None)
scenario("setcap_state_unknown", B + P, ["--method", "setcap"] + B + P, edit=forget)
scenario("setcap_user_not_in_facts", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P + ["--user", "www"], edit=go_static)
ARGS = ["--arg", "-cfg", "--arg", "/etc/fabio/fabio.properties"]
scenario("systemd_new_unit_and_user", B + P + ARGS + ["--method", "systemd"], ["--method", "systemd"] + B + P + ARGS, edit=go_static)
scenario("systemd_dynamic_user", B + P + ["--dynamic-user", "--method", "systemd"], ["--method", "systemd"] + B + P + ["--dynamic-user"], edit=go_static)
def vendor_unit(r):
    os.makedirs(r + "/usr/lib/systemd/system")
    with open(r + "/usr/lib/systemd/system/fabio.service", "w") as fh:
        fh.write("[Unit]\nDescription=Fabio (packaged)\n\n[Service]\nUser=fabio\nExecStart=/usr/local/bin/fabio -cfg /etc/fabio/fabio.properties\n\n[Install]\nWantedBy=multi-user.target\n")
    add_user("fabio")(r)
scenario("systemd_drop_in_for_a_packaged_unit", B + P + ["--method", "systemd"], ["--method", "systemd"] + B + P, setup=vendor_unit, edit=go_static)
scenario("sysctl_lowers_the_boundary", ["--port", "80", "--method", "sysctl"], ["--method", "sysctl", "--port", "80"])
# The kernel keeps the ephemeral range above the privileged one, so an overlap only exists
# where the boundary was already lowered (as container runtimes do).
def overlap(f):
    f["unprivileged_port_start"] = 0
    f["local_port_range"] = [500, 60999]
scenario("sysctl_overlap_refused", ["--port", "600", "--method", "sysctl"], ["--method", "sysctl", "--port", "600"], edit=overlap)
def old_kernel(f): f["unprivileged_port_start"] = None
scenario("sysctl_old_kernel_refused", ["--port", "80", "--method", "sysctl"], ["--method", "sysctl", "--port", "80"], edit=old_kernel)
R = ["--port", "80:9999", "--port", "443:9443"]
scenario("redirect_nft", R + ["--method", "redirect-nft"], ["--method", "redirect-nft"] + R)
scenario("redirect_iptables", R + ["--method", "redirect-iptables"], ["--method", "redirect-iptables"] + R)
scenario("redirect_nft_bare_port_invalid", ["--port", "80", "--method", "redirect-nft"], ["--method", "redirect-nft", "--port", "80"])
scenario("authbind_static_go_refused", B + ["--port", "80", "--user", "nobody", "--method", "authbind"], ["--method", "authbind"] + B + ["--port", "80", "--user", "nobody"], edit=go_static)
scenario("authbind_dynamic_binary", B + ["--port", "80", "--port", "600", "--user", "nobody", "--method", "authbind"], ["--method", "authbind"] + B + ["--port", "80", "--port", "600", "--user", "nobody"])
scenario("socket_activation_unavailable", B + P + ["--method", "socket-activation"], ["--method", "socket-activation"] + B + P, edit=go_static)
def other_caps(f):
    go_static(f)
    f["binary"]["capability"] = {"revision": 2, "permitted": 1 << 13 | 1 << 10, "inheritable": 0, "effective": True, "text": "cap_net_bind_service,cap_net_raw=ep", "rootid": None}
scenario("setcap_other_capability_refused", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P, edit=other_caps)
scenario("setcap_binary_not_in_facts", B + P + ["--method", "setcap"], ["--method", "setcap", "--binary", "/opt/fabio/fabio"] + P, edit=go_static)
def writable(f):
    go_static(f); f["binary"]["writable_by_non_root"] = ["/usr/local/bin is writable by group staff"]
scenario("setcap_writable_by_non_root_refused", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P, edit=writable)
def nnp_unit(f):
    go_static(f); f["binary"]["units"] = [{"name": "fabio.service", "path": "/etc/systemd/system/fabio.service", "no_new_privileges": True}]
scenario("setcap_unit_with_no_new_privileges_refused", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P, edit=nnp_unit)
def no_file_caps(f):
    go_static(f); f["kernel_no_file_caps"] = True
scenario("setcap_kernel_without_file_caps_refused", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P, edit=no_file_caps)
def old_systemd(f):
    go_static(f); f["init"] = {"pid1": "systemd", "systemd": True, "systemd_version": 219}
scenario("systemd_too_old_refused", B + P + ["--method", "systemd"], ["--method", "systemd"] + B + P, edit=old_systemd)
scenario("systemd_as_nobody_warned", B + P + ["--user", "nobody", "--method", "systemd"], ["--method", "systemd"] + B + P + ["--user", "nobody"], edit=go_static)
scenario("systemd_replaceable_binary_warned", B + P + ["--method", "systemd"], ["--method", "systemd"] + B + P, edit=writable)
scenario("systemd_root_user_invalid", B + P + ["--user", "root", "--method", "systemd"], ["--method", "systemd"] + B + P + ["--user", "root"], edit=go_static)
def no_systemctl(f): f["tools"]["systemctl"] = None
scenario("redirect_nft_without_systemd", R + ["--method", "redirect-nft"], ["--method", "redirect-nft"] + R, edit=no_systemctl)
def no_iptables(f):
    f["tools"]["iptables"] = None; f["tools"]["ip6tables"] = None
scenario("redirect_iptables_missing_tool_refused", R + ["--method", "redirect-iptables"], ["--method", "redirect-iptables"] + R, edit=no_iptables)
def lowered(r):
    os.makedirs(r + "/etc/sysctl.d")
    with open(r + "/etc/sysctl.d/60-lowport-unprivileged-ports.conf", "w") as fh:
        fh.write("# Written by lowport: unprivileged processes may bind ports from 80 up.\n# Undo with `lowport rollback`, or delete this file and run\n# `sysctl -w net.ipv4.ip_unprivileged_port_start=1024`.\nnet.ipv4.ip_unprivileged_port_start = 80\n")
    os.chmod(r + "/etc/sysctl.d/60-lowport-unprivileged-ports.conf", 0o644)
def live_80(f):
    f["unprivileged_port_start"] = 80
    f["host"]["sysctls"]["net.ipv4.ip_unprivileged_port_start"] = "80"
scenario("sysctl_already_in_place", ["--port", "80", "--method", "sysctl"], ["--method", "sysctl", "--port", "80"], setup=lowered, edit=live_80)
scenario("authbind_needs_a_user", B + ["--port", "80", "--method", "authbind"], ["--method", "authbind"] + B + ["--port", "80"])
scenario("setcap_dynamic_binary_warned", B + P + ["--method", "setcap"], ["--method", "setcap"] + B + P)
def symlinked(f):
    go_static(f); f["binary"]["symlinks"] = ["/usr/bin/fabio"]; f["binary"]["requested"] = "/usr/bin/fabio"
scenario("setcap_symlinked_binary_said", B + P + ["--method", "setcap"], ["--method", "setcap", "--binary", "/usr/bin/fabio"] + P, edit=symlinked)
RELAX = ["--writable", "/var/log/fabio", "--state-directory", "fabio", "--allow-jit"]
scenario("systemd_sandbox_relaxations", B + P + RELAX + ["--method", "systemd"], ["--method", "systemd"] + B + P + RELAX, edit=go_static)
def own_unit(r):
    os.makedirs(r + "/etc/systemd/system")
    with open(r + "/etc/systemd/system/fabio.service", "w") as fh:
        fh.write("# Written by lowport; `lowport rollback` removes it.\n[Unit]\nDescription=old\n\n[Service]\nExecStart=/usr/local/bin/fabio\n")
    add_user("fabio")(r)
scenario("systemd_regenerates_its_own_unit", B + P + ["--method", "systemd"], ["--method", "systemd"] + B + P, setup=own_unit, edit=go_static)
def nobody_cannot_exec(f):
    go_static(f); f["binary"]["mode"] = 0o750
scenario("setcap_user_cannot_execute_refused", B + P + ["--user", "nobody", "--method", "setcap"], ["--method", "setcap"] + B + P + ["--user", "nobody"], edit=nobody_cannot_exec)
scenario("sysctl_two_ports_open_the_range_between", ["--port", "80", "--port", "443", "--method", "sysctl"], ["--method", "sysctl", "--port", "80", "--port", "443"])
scenario("redirect_nft_json", R + ["--method", "redirect-nft"], ["--method", "redirect-nft"] + R + ["--json"])
scenario("authbind_redirect_port_invalid", B + ["--port", "80:8080", "--user", "nobody", "--method", "authbind"], ["--method", "authbind"] + B + ["--port", "80:8080", "--user", "nobody"])

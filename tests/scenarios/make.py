#!/usr/bin/env python3
"""Makes tests/scenarios/*/facts.json and args: a temporary root per scenario, `lowport detect
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

def scenario(name, detect, plan, setup=None, edit=None):
    r = tree()
    if setup: setup(r)
    out = subprocess.run([LP, "--root", r, "detect", "--json"] + detect, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{name}: detect failed: {out.stderr}")
    f = json.loads(out.stdout)
    f["root"] = "/"
    f["hostname"] = "web1"
    f["os"].update(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)", kernel="6.1.0-18-amd64")
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

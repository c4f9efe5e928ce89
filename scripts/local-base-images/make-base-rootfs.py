#!/usr/bin/env python3
"""Stage a Debian-12-like root filesystem from the HOST's installed dpkg packages (no download):
Priority:required + apt, their Depends/Pre-Depends closure, dpkg status DB, alternatives, passwd/group.
Usage: make-base-rootfs.py STAGE_DIR [extra-package ...]"""
import os, re, shutil, subprocess, sys

stage = sys.argv[1]
extra = sys.argv[2:]
MERGED = {"/bin": "/usr/bin", "/sbin": "/usr/sbin", "/lib": "/usr/lib", "/lib64": "/usr/lib64"}

def q(fmt):
    return subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, check=True).stdout

installed, provides = {}, {}
for line in q("${Package}\t${db:Status-Abbrev}\t${Priority}\t${Essential}\t${Pre-Depends}\t${Depends}\t${Provides}\n").splitlines():
    pkg, st, prio, ess, pre, dep, prov = line.split("\t")
    if not st.startswith("ii"):
        continue
    installed[pkg] = (prio, ess, f"{pre}, {dep}")
    for p in prov.split(","):
        p = p.strip().split(" ")[0]
        if p:
            provides.setdefault(p, pkg)

def name(s):
    return s.strip().split(" ")[0].split(":")[0]

want = [p for p, (prio, ess, _) in installed.items() if prio == "required" or ess == "yes"] + ["apt"] + extra
seen = set()
while want:
    p = want.pop()
    if p in seen:
        continue
    seen.add(p)
    for clause in installed[p][2].split(","):
        if not clause.strip():
            continue
        for alt in clause.split("|"):
            n = name(alt)
            cand = n if n in installed else provides.get(n)
            if cand:
                want.append(cand)
                break
pkgs = sorted(seen)

def canon(path):
    for a, b in MERGED.items():
        if path == a or path.startswith(a + "/"):
            return b + path[len(a):]
    return path

def copy(path):
    c = canon(path)
    src = c if os.path.lexists(c) else path
    if not os.path.lexists(src):
        return
    dst = stage + c
    if os.path.isdir(src) and not os.path.islink(src):
        os.makedirs(dst, exist_ok=True)
        shutil.copystat(src, dst)
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst):
        return
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst)

os.makedirs(stage, exist_ok=True)
for a, b in MERGED.items():
    os.makedirs(stage + b, exist_ok=True)
    if not os.path.lexists(stage + a):
        os.symlink(b.lstrip("/"), stage + a)
for p in pkgs:
    out = subprocess.run(["dpkg", "-L", p], capture_output=True, text=True).stdout
    for path in out.splitlines():
        if path.startswith("/") and not path.startswith("/usr/share/doc/") and not path.startswith("/usr/share/man/") and not path.startswith("/usr/share/locale/"):
            copy(path)
    for f in os.listdir("/var/lib/dpkg/info"):
        if f.split(".")[0].split(":")[0] == p:
            copy("/var/lib/dpkg/info/" + f)

# dpkg status, restricted to the staged packages
stanzas = open("/var/lib/dpkg/status").read().split("\n\n")
keep = [s for s in stanzas if (m := re.match(r"Package: (\S+)", s)) and m.group(1) in seen]
os.makedirs(stage + "/var/lib/dpkg/updates", exist_ok=True)
for f in ("available", "lock", "lock-frontend", "triggers/Lock"):
    os.makedirs(os.path.dirname(stage + "/var/lib/dpkg/" + f), exist_ok=True)
    open(stage + "/var/lib/dpkg/" + f, "a").close()
open(stage + "/var/lib/dpkg/status", "w").write("\n\n".join(keep).strip() + "\n\n")

# alternatives whose target was staged
for alt in os.listdir("/var/lib/dpkg/alternatives"):
    lines = open("/var/lib/dpkg/alternatives/" + alt).read().split("\n")
    target = os.path.realpath("/etc/alternatives/" + alt)
    if not os.path.lexists(stage + canon(target)):
        continue
    copy("/var/lib/dpkg/alternatives/" + alt)
    links = [(alt, lines[1])]
    i = 2
    while i + 1 < len(lines) and lines[i]:
        links.append((lines[i], lines[i + 1])); i += 2
    for n, link in links:
        if os.path.lexists("/etc/alternatives/" + n):
            copy("/etc/alternatives/" + n)
            copy(link)

# users: Debian's master files + _apt (apt's sandbox user) + node (uid 1000, as in the official image)
passwd = open("/usr/share/base-passwd/passwd.master").read() + "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nnode:x:1000:1000::/home/node:/bin/bash\n"
group = open("/usr/share/base-passwd/group.master").read() + "node:x:1000:\n"
open(stage + "/etc/passwd", "w").write(passwd)
open(stage + "/etc/group", "w").write(group)
shadow = "".join(f"{l.split(':')[0]}:*:19000:0:99999:7:::\n" for l in passwd.splitlines())
open(stage + "/etc/shadow", "w").write(shadow); os.chmod(stage + "/etc/shadow", 0o640)
for d, mode in (("/tmp", 0o1777), ("/var/tmp", 0o1777), ("/root", 0o700), ("/home/node", 0o755), ("/proc", 0o555), ("/sys", 0o555), ("/dev", 0o755), ("/run", 0o755), ("/var/cache/apt/archives/partial", 0o755), ("/var/lib/apt/lists/partial", 0o755), ("/var/log/apt", 0o755)):
    os.makedirs(stage + d, exist_ok=True); os.chmod(stage + d, mode)
os.chown(stage + "/home/node", 1000, 1000)
for f in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list", "/etc/debian_version", "/etc/os-release", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/hostname"):
    copy(f)
subprocess.run(["ldconfig", "-r", stage], check=True)
print(f"{len(pkgs)} packages:", " ".join(pkgs))

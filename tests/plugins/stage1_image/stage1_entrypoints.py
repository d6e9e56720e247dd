"""A small stage1 written against rkt's stage1 contract, for tests (not imported by them).

The test image holds this one program as its ``/run``, ``/enter``, ``/stop`` and ``/gc``
entrypoints; it acts by the name it was started as. Like rkt's fly, it runs the pod's single app
chrooted in a private mount namespace:

- ``run [--debug] --net=... [--interactive] [--local-config=DIR] [--hostname=H] ... UUID``
  (working directory: the pod): binds /dev, /proc, /sys, the volumes and, where the app has
  no /etc/hosts, rkt's default one (localhost, the host's name) into the app's root, runs
  the pre-start handler, starts the app as its user with its environment, writes its pid to
  ``pid`` once it has exec'd, waits for it, writes its exit status to
  ``stage1/rootfs/rkt/status/<app>``, runs post-stop and exits with the app's status. The lock
  fd of ``RKT_LOCK_FD`` is inherited by the app. The arguments are kept in ``run-args``. If the
  image has ``/etc/ppid-mode``, it writes its own pid to ``ppid`` instead (the app is its only
  child), the other way the contract allows.
- ``enter --pid=PID --appname=APP -- CMD...``: joins PID's mount namespace and root and execs
  CMD as the app's user with its environment.
- ``stop [--force] UUID``: SIGTERM (SIGKILL) to the app (``pid``, or the child of ``ppid``).
- ``gc [--debug] [--local-config DIR] UUID``: appends its arguments to the file that the image's
  ``/etc/gc-log`` names.
"""

import ctypes
import json
import os
import signal
import sys

CLONE_NEWNS = 0x20000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_SLAVE = 0x1, 0x20, 0x1000, 0x4000, 1 << 19
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
libc = ctypes.CDLL(None, use_errno=True)


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source, target, flags, fstype=None):
    check(libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                     flags, None), f"mount {target}")


def fail(message):
    print(f"stage1: {message}", file=sys.stderr)
    sys.exit(254)


def pod_app(name=None):
    manifest = json.load(open("pod"))
    apps = manifest["apps"]
    if name is None and len(apps) != 1:
        fail("this stage1 runs exactly one app")
    app = next((a for a in apps if name in (None, a["name"])), None)
    if app is None:
        fail(f"no app {name}")
    return manifest, app


def account(root, app):
    """(uid, gid, env) of the app's user and group, from its root's passwd and group files."""
    def table(path):
        try:
            with open(root + path) as f:
                return [line.rstrip("\n").split(":") for line in f if ":" in line]
        except FileNotFoundError:
            return []

    users, groups = table("/etc/passwd"), table("/etc/group")
    user, group = app["app"]["user"], app["app"]["group"]
    entry = next((u for u in users if u[0] == user or (user.isdigit() and u[2] == user)), None)
    if entry is None and not user.isdigit():
        fail(f"unknown user {user}")
    uid = int(entry[2]) if entry else int(user)
    named = next((g for g in groups if g[0] == group), None)
    gid = int(named[2]) if named else int(group)
    name, home, shell = (entry[0], entry[5], entry[6]) if entry else (user, "/", "/bin/sh")
    env = {"PATH": DEFAULT_PATH, "HOME": home, "USER": name, "LOGNAME": name, "SHELL": shell}
    env.update({e["name"]: e["value"] for e in app["app"].get("environment", [])})
    env["AC_APP_NAME"] = app["name"]
    return uid, gid, env


def become(uid, gid, env, cwd, argv):
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.chdir(cwd)
    os.execvpe(argv[0], argv, env)


def bind_into(root, source, target, read_only):
    path = root + target
    if os.path.isdir(source):
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        open(path, "a").close()
    mount(source, path, MS_BIND | MS_REC)
    if read_only:
        mount(None, path, MS_REMOUNT | MS_BIND | MS_RDONLY)


def run(args):
    with open("run-args", "w") as f:
        json.dump(args, f)
    manifest, app = pod_app()
    name = app["name"]
    root = os.path.abspath(f"stage1/rootfs/opt/stage2/{name}/rootfs")
    check(libc.unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", MS_SLAVE | MS_REC)
    for system in ("/dev", "/proc", "/sys"):
        bind_into(root, system, system, False)
    volumes = {v["name"]: v for v in manifest.get("volumes") or []}
    read_only_points = {p["name"] for p in app["app"].get("mountPoints", []) if p.get("readOnly")}
    for m in app.get("mounts") or []:
        volume = volumes[m["volume"]]
        source = (volume["source"] if volume["kind"] == "host"
                  else os.path.abspath(f"sharedVolumes/{volume['name']}"))
        bind_into(root, source, m["path"], volume.get("readOnly") or m["volume"] in read_only_points)
    if not os.path.lexists(root + "/etc/hosts"):  # rkt's default hosts file, as its stage1s
        os.makedirs("stage1/rootfs/etc", exist_ok=True)
        with open("stage1/rootfs/etc/hosts-fallback", "w") as f:
            f.write(f"127.0.0.1\tlocalhost {os.uname().nodename}\n::1\tlocalhost\n")
        bind_into(root, os.path.abspath("stage1/rootfs/etc/hosts-fallback"), "/etc/hosts", True)
    uid, gid, env = account(root, app)
    cwd = app["app"].get("workingDirectory") or "/"
    handlers = {h["name"]: h["exec"] for h in app["app"].get("eventHandlers", [])}

    def start(argv):
        ready_r, ready_w = os.pipe()  # closed by the exec: the app is running
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            for sig in FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            os.chroot(root)
            become(uid, gid, env, cwd, argv)
        os.close(ready_w)
        os.read(ready_r, 1)
        os.close(ready_r)
        return pid

    def wait(pid):
        status = os.waitpid(pid, 0)[1]
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code

    if "pre-start" in handlers and wait(start(handlers["pre-start"])) != 0:
        fail("pre-start failed")
    pid = start(app["app"]["exec"])
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, frame: os.kill(pid, signum))
    if os.path.exists("stage1/rootfs/etc/ppid-mode"):
        with open("ppid", "w") as f:
            f.write(str(os.getpid()))
    else:
        with open("pid", "w") as f:
            f.write(str(pid))
    code = wait(pid)
    os.makedirs("stage1/rootfs/rkt/status", exist_ok=True)
    with open(f"stage1/rootfs/rkt/status/{name}", "w") as f:
        f.write(str(code))
    if "post-stop" in handlers:
        wait(start(handlers["post-stop"]))
    sys.exit(code)


def enter(args):
    pid = int(next(a for a in args if a.startswith("--pid=")).split("=", 1)[1])
    name = next(a for a in args if a.startswith("--appname=")).split("=", 1)[1]
    argv = args[args.index("--") + 1:]
    _, app = pod_app(name)
    with open(f"/proc/{pid}/ns/mnt") as ns:
        check(libc.setns(ns.fileno(), CLONE_NEWNS), "setns")
    os.chroot(f"/proc/{pid}/root")
    uid, gid, env = account("", app)
    become(uid, gid, env, "/", argv)


def stop(args):
    if os.path.exists("pid"):
        with open("pid") as f:
            pid = int(f.read())
    else:
        with open("ppid") as f:
            ppid = int(f.read())
        with open(f"/proc/{ppid}/task/{ppid}/children") as f:
            pid = int(f.read().split()[0])
    try:
        os.kill(pid, signal.SIGKILL if "--force" in args else signal.SIGTERM)
    except ProcessLookupError:
        pass


def gc(args):
    with open("stage1/rootfs/etc/gc-log") as f:
        log = f.read().strip()
    with open(log, "a") as f:
        f.write(json.dumps(args) + "\n")


if __name__ == "__main__":
    {"run": run, "enter": enter, "stop": stop, "gc": gc}[os.path.basename(sys.argv[0])](sys.argv[1:])

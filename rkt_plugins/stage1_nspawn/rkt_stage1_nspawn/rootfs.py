"""The stage1 root file system: a skeleton made from the host's systemd, no downloads.

``stage1/rootfs`` holds empty ``usr`` (the host's ``/usr`` is bound there read-only), the
``bin``/``sbin``/``lib``/``lib64`` links into it, ``etc/os-release``, ``etc/machine-id`` (the
pod's uuid, so the journal is ``var/log/journal/<uuid without dashes>``), the generated units in
``etc/systemd/system``, the host's generators masked (they would only slow the boot), and rkt's
own files under ``rkt/``: ``apps`` (one name a line), ``reaper``, ``status/``, and the FIFOs in
``io/`` that carry each app's stdout and stderr to ``rkt run``.
"""

from __future__ import annotations

import os
import shutil

from . import units

GENERATOR_DIRS = ("/usr/lib/systemd/system-generators", "/lib/systemd/system-generators")
USR_LINKS = ("bin", "sbin", "lib", "lib64")
DIRS = ("usr", "etc/systemd/system", "etc/systemd/system-generators", "proc", "sys", "dev",
        "run", "tmp", "var/log/journal", "rkt/status", "rkt/io", "opt/stage2")


def rootfs(pod) -> str:
    """The stage1 root of a pod."""
    return pod.file("stage1", "rootfs")


def machine_id(uuid: str) -> str:
    """The pod's machine id (its uuid without dashes)."""
    return uuid.replace("-", "")


def journal_dir(pod) -> str:
    """Where journald inside the pod keeps the pod's journal."""
    return os.path.join(rootfs(pod), "var", "log", "journal", machine_id(pod.uuid))


def _write(path: str, text: str, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode & 0o600)
    with open(fd, "w") as f:
        os.fchmod(fd, mode & 0o600)  # an existing file keeps its mode: no reader gets in now
        f.write(text)
    os.chmod(path, mode)


def build(pod, apps: list[str]) -> None:
    """Create the skeleton (idempotent: a re-run of a prepared pod starts afresh, except for
    the apps' roots and the journal)."""
    root = rootfs(pod)
    for d in DIRS:
        os.makedirs(os.path.join(root, d), mode=0o755, exist_ok=True)
    for name in USR_LINKS:
        link = os.path.join(root, name)
        if not os.path.islink(link):
            os.symlink(f"usr/{name}", link)
    for stale in ("rkt/status", "rkt/io"):
        shutil.rmtree(os.path.join(root, stale))
        os.mkdir(os.path.join(root, stale), 0o755)
    for f in ("rkt/first-failure",):
        if os.path.lexists(os.path.join(root, f)):
            os.unlink(os.path.join(root, f))
    shutil.copyfile(_host_os_release(), os.path.join(root, "etc", "os-release"))
    _write(os.path.join(root, "etc", "machine-id"), machine_id(pod.uuid) + "\n", 0o444)
    _write(os.path.join(root, "etc", "systemd", "journald.conf"), units.JOURNALD_CONF)
    _write(os.path.join(root, "rkt", "reaper"), units.REAPER_SCRIPT, 0o755)
    _write(os.path.join(root, "rkt", "apps"), "".join(a + "\n" for a in apps))
    os.makedirs(journal_dir(pod), mode=0o755, exist_ok=True)
    _mask_generators(root)


def _host_os_release() -> str:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        if os.path.exists(path):
            return path
    raise FileNotFoundError("the host has no os-release")


def _mask_generators(root: str) -> None:
    masked = os.path.join(root, "etc", "systemd", "system-generators")
    for directory in GENERATOR_DIRS:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        for name in names:
            link = os.path.join(masked, name)
            if not os.path.lexists(link):
                os.symlink("/dev/null", link)


def make_fifos(pod, app_units: list[str]) -> dict[str, tuple[int, int]]:
    """A FIFO pair per app (``rkt/io/<unit>.stdout``/``.stderr``), opened read-write and
    non-blocking here so that neither end ever sees end-of-file: {unit: (stdout fd, stderr fd)}."""
    io_dir = os.path.join(rootfs(pod), "rkt", "io")
    result = {}
    for unit in app_units:
        fds = []
        for stream in ("stdout", "stderr"):
            path = os.path.join(io_dir, f"{unit}.{stream}")
            os.mkfifo(path, 0o600)
            fds.append(os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC))
        result[unit] = (fds[0], fds[1])
    return result


def chown_fifos(pod, services: list[units.AppService]) -> None:
    """Give each app's FIFOs to the app's user (systemd opens them as that user)."""
    io_dir = os.path.join(rootfs(pod), "rkt", "io")
    for svc in services:
        for stream in ("stdout", "stderr"):
            os.chown(os.path.join(io_dir, f"{svc.unit}.{stream}"), svc.uid, svc.gid)


def write_accounts(pod, services: list[units.AppService]) -> None:
    """``etc/passwd`` and ``etc/group`` of the stage1 root, naming every uid and gid the apps
    run as (systemd looks ``User=``/``Group=`` up there; the apps see their image's own)."""
    users = {0: 0, **{s.uid: s.gid for s in services}}
    groups = {0} | {s.gid for s in services} | {g for s in services for g in s.groups}
    passwd = "".join(f"{'root' if uid == 0 else f'rkt-{uid}'}:x:{uid}:{gid}::/:/usr/sbin/nologin\n"
                     for uid, gid in sorted(users.items()))
    group = "".join(f"{'root' if gid == 0 else f'rkt-{gid}'}:x:{gid}:\n" for gid in sorted(groups))
    _write(os.path.join(rootfs(pod), "etc", "passwd"), passwd)
    _write(os.path.join(rootfs(pod), "etc", "group"), group)


def write_units(pod, services: list[units.AppService], interactive: bool) -> None:
    """Write the pod's units into ``etc/systemd/system``."""
    unit_dir = os.path.join(rootfs(pod), "etc", "systemd", "system")
    for name in os.listdir(unit_dir):
        path = os.path.join(unit_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    for svc in services:
        # 0600: the environment may hold the pod's metadata token (AC_METADATA_URL)
        _write(os.path.join(unit_dir, f"{svc.unit}.service"), units.app_service(svc, interactive),
               0o600)
        for success in (True, False):
            _write(os.path.join(unit_dir, units.reaper_file(svc.app, success)),
                   units.reaper_service(svc.app))
        for sockets in svc.sockets:
            _write(os.path.join(unit_dir, units.socket_file(svc.app, sockets.port)),
                   units.socket_unit(svc.app, sockets))
    _write(os.path.join(unit_dir, "default.target"),
           units.default_target([s.app for s in services], journal=not interactive))
    sockets = [units.socket_file(svc.app, s.port) for svc in services for s in svc.sockets]
    if sockets:
        os.mkdir(os.path.join(unit_dir, units.SOCKETS_DROP_IN_DIR), 0o755)
        _write(os.path.join(unit_dir, units.SOCKETS_DROP_IN_DIR, units.SOCKETS_DROP_IN),
               units.sockets_drop_in(sockets))

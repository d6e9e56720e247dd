"""The pod's cgroups on the host, and the view of them the pod gets.

nspawn shows a pod its cgroup v1 controller hierarchies read-only, so systemd inside could not
apply an app's ``MemoryLimit=`` or ``CPUQuota=``. As rkt did, the pod gets a cgroup of its own
in every hierarchy (``<our cgroup>/rkt-<uuid>``), created here before nspawn starts, and
nspawn is given a ``/sys/fs/cgroup`` made of those directories, writable: systemd inside then
creates ``system.slice/<app>.service`` below them and writes the app's limits there. The pod
sees nothing of the host's tree above its own cgroup (nspawn gives it a cgroup namespace rooted
there). On a unified (cgroup2-only) host nspawn mounts the pod's cgroup itself, writable; the
controllers are enabled for the pod's subtree here.

Everything is removed again when the pod has exited (:func:`remove`), bottom-up.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from rkt_core.plugin_api import dataclass
from rkt_core.plugin_api.linux import mount

ROOT = "/sys/fs/cgroup"
PAYLOAD = "payload"  # where nspawn --keep-unit puts the pod's init in the systemd hierarchies
V2_CONTROLLERS = ("cpu", "memory", "pids")

_mountinfo = "/proc/self/mountinfo"  # unit tests point these at files of their own
_proc_cgroup = "/proc/self/cgroup"


@dataclass(frozen=True)
class Hierarchy:
    """A mounted cgroup hierarchy and this process's cgroup in it."""

    mount_point: str  # e.g. /sys/fs/cgroup/memory
    version: int  # 1 or 2
    controllers: tuple[str, ...]  # v1: memory, cpu, name=systemd ...; v2: ()
    own: str  # this process's cgroup, e.g. /user.slice

    @property
    def name(self) -> str:
        """The directory name under /sys/fs/cgroup (``""`` for a unified-only host)."""
        return os.path.relpath(self.mount_point, ROOT) if self.mount_point != ROOT else ""

    @property
    def systemd(self) -> bool:
        """Whether systemd keeps its unit tree here (nspawn moves the pod's init below
        ``payload``)."""
        return self.version == 2 or "name=systemd" in self.controllers

    def pod_dir(self, uuid: str) -> str:
        """The pod's cgroup directory in this hierarchy."""
        return os.path.join(self.mount_point, self.own.strip("/"), f"rkt-{uuid}").rstrip("/")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def hierarchies() -> list[Hierarchy]:
    """The cgroup hierarchies mounted under /sys/fs/cgroup, with this process's cgroups."""
    own_v1: dict[str, str] = {}
    own_v2 = None
    for line in _read(_proc_cgroup).splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and not controllers:
            own_v2 = path
        else:
            own_v1[controllers] = path
    found = []
    for m in mount.mounts(_mountinfo):
        if m.mount_point != ROOT and not m.mount_point.startswith(ROOT + "/"):
            continue
        if m.fstype == "cgroup2" and own_v2 is not None:
            found.append(Hierarchy(m.mount_point, 2, (), own_v2))
        elif m.fstype == "cgroup":
            options = m.super_options.split(",")
            for controllers, path in own_v1.items():
                names = controllers.split(",")
                if all(n in options for n in names):
                    found.append(Hierarchy(m.mount_point, 1, tuple(names), path))
                    break
    unique: dict[tuple, Hierarchy] = {}
    for h in found:  # a hierarchy mounted twice is used once
        unique.setdefault((h.version, h.controllers), h)
    return list(unique.values())


def unified(found: list[Hierarchy]) -> bool:
    """Whether the host has only the unified hierarchy (cgroup2 on /sys/fs/cgroup)."""
    return any(h.version == 2 and h.mount_point == ROOT for h in found)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mkdir(path: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass


def create(found: list[Hierarchy], uuid: str) -> None:
    """Create the pod's cgroups and move this process into them (call in the process that
    execs nspawn). cpuset gets its parent's CPUs and memory nodes; on a unified host the
    CPU, memory and pids controllers are enabled below the pod's cgroup where the kernel
    allows it."""
    for h in found:
        pod = h.pod_dir(uuid)
        _mkdir(pod)
        if "cpuset" in h.controllers:
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not _read(os.path.join(pod, knob)).strip():
                    _write(os.path.join(pod, knob), _read(os.path.join(os.path.dirname(pod), knob)))
        if h.version == 2 and h.mount_point == ROOT:
            _enable_controllers(os.path.dirname(pod))
            _enable_controllers(pod)
        if h.systemd:
            _mkdir(os.path.join(pod, PAYLOAD))
        _write(os.path.join(pod, "cgroup.procs"), "0")


def _enable_controllers(path: str) -> None:
    """Enable the v2 controllers the pod's apps are limited with in ``path``'s subtree (a
    cgroup holding processes cannot: then the limits are the host's business)."""
    available = _read(os.path.join(path, "cgroup.controllers")).split()
    wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in available)
    if not wanted:
        return
    try:
        _write(os.path.join(path, "cgroup.subtree_control"), wanted)
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise


def mount_view(found: list[Hierarchy], uuid: str, target: str) -> bool:
    """Build the pod's /sys/fs/cgroup at ``target`` (a tmpfs, read-only, holding each v1
    hierarchy's pod cgroup bound writable); return False when nspawn should mount the pod's
    cgroups itself (a unified-only host)."""
    if unified(found):
        return False
    mount.mount("tmpfs", target, "tmpfs", mount.MS_NOSUID | mount.MS_NODEV | mount.MS_NOEXEC,
                "mode=755,size=64k")
    for h in found:
        where = os.path.join(target, h.name)
        os.makedirs(where, exist_ok=True)
        source = h.pod_dir(uuid)
        mount.bind(os.path.join(source, PAYLOAD) if h.systemd else source, where)
    _link_comounted(found, target)
    mount.mount(None, target, None, mount.MS_REMOUNT | mount.MS_RDONLY | mount.MS_NOSUID
                | mount.MS_NODEV | mount.MS_NOEXEC, "mode=755,size=64k")
    return True


def _link_comounted(found: list[Hierarchy], target: str) -> None:
    """``cpu`` -> ``cpu,cpuacct`` and the like, as the host has them."""
    for h in found:
        if h.version != 1 or len(h.controllers) < 2:
            continue
        for name in h.controllers:
            link = os.path.join(target, name)
            if name != h.name and not os.path.lexists(link):
                os.symlink(h.name, link)


def app_views(found: list[Hierarchy], unit: str) -> list[tuple[str, str]]:
    """Where an app sees its own cgroup: each hierarchy's ``system.slice/<unit>`` directory
    of the pod, shown at the hierarchy's place in the app's /sys/fs/cgroup."""
    views = []
    for h in found:
        if h.systemd and h.version == 1:
            continue
        place = os.path.join(ROOT, h.name).rstrip("/")
        views.append((f"{place}/system.slice/{unit}", place))
    return views


def app_cgroups(found: list[Hierarchy], uuid: str, unit: str) -> list[str]:
    """The host directories of an app's cgroups (where ``enter`` puts its processes)."""
    result = []
    for h in found:
        base = h.pod_dir(uuid)
        if h.systemd:
            base = os.path.join(base, PAYLOAD)
        result.append(os.path.join(base, "system.slice", unit))
    return result


def processes(found: list[Hierarchy], uuid: str) -> set[int]:
    """The processes left in the pod's cgroups."""
    pids: set[int] = set()
    for h in found:
        for current, _dirs, files in os.walk(h.pod_dir(uuid)):
            if "cgroup.procs" in files:
                try:
                    pids.update(int(p) for p in _read(os.path.join(current, "cgroup.procs")).split())
                except OSError:
                    continue
    return pids


def remove(found: list[Hierarchy], uuid: str, wait: float = 2.0) -> None:
    """Kill what is left in the pod's cgroups (a pod whose nspawn was killed keeps running
    otherwise), then remove them, deepest first. Idempotent; busy ones are left for gc."""
    deadline = time.monotonic() + wait
    while True:
        left = processes(found, uuid)
        if not left or time.monotonic() > deadline:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    for h in found:
        top = h.pod_dir(uuid)
        if not os.path.isdir(top):
            continue
        for current, dirs, _files in os.walk(top, topdown=False):
            for d in dirs:
                _rmdir(os.path.join(current, d))
        _rmdir(top)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise

"""What the guest runs, resolved on the host by rkt's shared app helpers.

In qemu's own mount namespace each app's root is mounted as for any flavor (its tree's
overlay, the volumes, the name service files; no host /dev, /proc or /sys:
``mount_root(host_api=False)``) and shared with the guest over 9p. Against that root the
helpers every flavor uses resolve each process: executable and working directory
(symlink-free, never under /proc), user and groups from the image's own files, environment;
``app_limits`` gives the capability bounding set and the memory and CPU limits. The guest
agent (:mod:`.guest`) only applies the result.
"""

from __future__ import annotations

import os

from rkt_core.plugin_api import RunOptions
from rkt_core.plugin_api.linux import mount, scoped
from rkt_core.plugin_api.stage1 import AppRuntime, Process, app_limits, mount_root, process

GUEST_STAGE2 = "/opt/stage2"


def output_ports(index: int) -> tuple[str, str]:
    """The virtio-serial ports of the ``index``-th app's stdout and stderr."""
    return f"rkt.app.{index}.out", f"rkt.app.{index}.err"


def _process(p: Process | None) -> dict | None:
    if p is None:
        return None
    a = p.account
    return {"path": p.path, "argv": list(p.argv), "cwd": p.cwd, "uid": a.uid, "gid": a.gid,
            "groups": list(dict.fromkeys((a.gid, *a.groups))), "env": dict(p.env),
            "search": False}


def app_entry(index: int, app: AppRuntime, options: RunOptions) -> dict:
    """Mount ``app``'s root (in the current mount namespace) and resolve its processes."""
    root = mount_root(app, options, host_api=False)
    try:
        def resolved(argv):
            return _process(process(root, app, argv, app.working_directory,
                                    options.interactive) if argv else None)

        limits = app_limits(app.name, app.isolators, "kvm")
        volumes = []
        for m in app.mounts:  # where mount_root put them, symlink-free
            node = scoped.resolve(root, m.target)
            os.close(node.fd)
            volumes.append({"target": node.path, "read_only": m.read_only})
        stdout, stderr = output_ports(index)
        return {"name": app.name, "root": f"{GUEST_STAGE2}/{app.name}/rootfs",
                "main": resolved(app.exec), "pre_start": resolved(app.pre_start),
                "post_stop": resolved(app.post_stop),
                "capabilities": limits.capability_mask, "memory": limits.memory_bytes or 0,
                "cpu_millis": limits.cpu_millis or 0, "volumes": volumes,
                "stdout": stdout, "stderr": stderr}
    finally:
        os.close(root)


def build(pod, apps: list[AppRuntime], options: RunOptions, nics: list[dict]) -> dict:
    """The whole plan: hostname, NICs, apps (their roots mounted for qemu's 9p server, see
    :func:`harden`)."""
    plan = {"hostname": options.hostname or f"rkt-{pod.uuid}",
            "interactive": options.interactive,
            "interfaces": [{k: v for k, v in nic.items() if k != "tap"} for nic in nics],
            "apps": [app_entry(i, app, options) for i, app in enumerate(apps)]}
    if apps:
        harden(os.path.dirname(os.path.dirname(apps[0].rootfs)))
    return plan


def harden(shared: str) -> None:
    """Make every mount qemu shares with the guest ``nodev`` and ``nosuid`` (keeping
    read-only ones so): the guest's root can create device nodes in its app roots over 9p
    (passthrough), and qemu must never open one of those as a host device."""
    for m in mount.mounts_under(shared):
        flags = mount.MS_REMOUNT | mount.MS_BIND | mount.MS_NODEV | mount.MS_NOSUID
        if "ro" in m.options.split(","):
            flags |= mount.MS_RDONLY
        if "noexec" in m.options.split(","):
            flags |= mount.MS_NOEXEC
        mount.mount(None, m.mount_point, None, flags)

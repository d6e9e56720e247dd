"""Each app's root inside the pod, and its service resolved against that root.

The image is untrusted: its root is only touched through an fd of it
(:mod:`rkt_core.sys.scoped`, :mod:`rkt_core.pod.approot`), so no symlink in it makes rkt mount,
read or resolve anything outside it. Executables and working directories are resolved to
symlink-free paths and refused under ``/proc``.
"""

from __future__ import annotations

import os

from rkt_core.errors import RktError
from rkt_core.pod import approot
from rkt_core.pod.runtime import DEFAULT_PATH, AppRuntime, process_environment
from rkt_core.sys import mount, scoped
from rkt_core.types import RunOptions

from . import cgroups, units, userns
from .isolators import app_limits


def mount_root(app: AppRuntime, options: RunOptions, shift: int = 0) -> int:
    """Mount the app's root (an overlay of its tree, or its copy bound on itself), its volumes
    and the name service files; return an ``O_PATH`` fd of the root. With ``shift``
    (--private-users) the root's files get the shifted owners first. Call in the pod's mount
    namespace."""
    if app.overlay:
        mount.overlay(app.rootfs, [app.tree_rootfs], app.overlay_upper, app.overlay_work)
    else:
        mount.bind(app.rootfs, app.rootfs)
    if shift:
        userns.shift_tree(app.rootfs, shift)
    root = os.open(app.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for d in ("proc", "sys", "dev"):  # systemd mounts the API file systems here
            approot.mount_step(app, f"/{d}", lambda: os.close(
                scoped.resolve(root, d, create="dir", follow=False).fd))
        for m in app.mounts:
            approot.mount_step(app, f'volume "{m.volume}" on {m.target}', scoped.bind_into,
                               root, m.source, m.target, read_only=m.read_only)
        approot.bind_name_service(app, root, options)
    except BaseException:
        os.close(root)
        raise
    return root


def service(root: int, app: AppRuntime, found: list[cgroups.Hierarchy],
            interactive: bool) -> units.AppService:
    """The app's service, resolved against its mounted root."""
    if not app.exec:
        raise RktError(f'app "{app.name}" has nothing to execute')
    account = approot.account(root, app)
    env = process_environment(app, account, interactive=interactive)
    cwd = approot.directory(root, app, app.working_directory)
    search = env.get("PATH", DEFAULT_PATH)

    def command(argv: list[str] | None) -> units.Command | None:
        if not argv:
            return None
        return units.Command(approot.executable(root, app, argv[0], search, cwd), tuple(argv))

    unit = units.service_file(app.name)
    return units.AppService(
        app=app.name, image=app.image_name, main=command(app.exec), working_directory=cwd,
        uid=account.uid, gid=account.gid, groups=account.groups, environment=env,
        limits=app_limits(app.name, app.isolators), pre_start=command(app.pre_start),
        post_stop=command(app.post_stop), cgroup_views=cgroups.app_views(found, unit),
        unified=cgroups.unified(found))

"""Each app's root inside the pod, and its service resolved against that root.

The image is untrusted: its root is only touched through an fd of it
(``scoped`` calls, the app-root helpers of ``rkt_core.plugin_api.stage1``), so no symlink in it makes rkt mount,
read or resolve anything outside it. Executables and working directories are resolved to
symlink-free paths and refused under ``/proc``.
"""

from __future__ import annotations

import os

from rkt_core.plugin_api import RktError, RunOptions
from rkt_core.plugin_api.linux import mount, scoped
from rkt_core.plugin_api.stage1 import (DEFAULT_PATH, AppRuntime, app_limits,
                                        bind_name_service, mount_step, process_environment,
                                        resolve_account, resolve_directory,
                                        resolve_executable)

from . import cgroups, units, userns


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
            mount_step(app, f"/{d}", lambda: os.close(
                scoped.resolve(root, d, create="dir", follow=False).fd))
        for m in app.mounts:
            mount_step(app, f'volume "{m.volume}" on {m.target}', scoped.bind_into,
                               root, m.source, m.target, read_only=m.read_only)
        bind_name_service(app, root, options)
    except BaseException:
        os.close(root)
        raise
    return root


def service(root: int, app: AppRuntime, found: list[cgroups.Hierarchy],
            options: RunOptions) -> units.AppService:
    """The app's service, resolved against its mounted root: ``options.metadata_url`` becomes
    ``AC_METADATA_URL`` of its processes, and it gets its sockets of ``options.sockets``."""
    interactive = options.interactive
    if not app.exec:
        raise RktError(f'app "{app.name}" has nothing to execute')
    account = resolve_account(root, app)
    env = process_environment(app, account, options.metadata_url, interactive)
    cwd = resolve_directory(root, app, app.working_directory)
    search = env.get("PATH", DEFAULT_PATH)

    def command(argv: list[str] | None) -> units.Command | None:
        if not argv:
            return None
        return units.Command(resolve_executable(root, app, argv[0], search, cwd), tuple(argv))

    unit = units.service_file(app.name)
    return units.AppService(
        app=app.name, image=app.image_name, main=command(app.exec), working_directory=cwd,
        uid=account.uid, gid=account.gid, groups=account.groups, environment=env,
        limits=app_limits(app.name, app.isolators, "nspawn"), pre_start=command(app.pre_start),
        post_stop=command(app.post_stop), cgroup_views=cgroups.app_views(found, unit),
        unified=cgroups.unified(found), sockets=_sockets(app.name, options))


def _sockets(app: str, options: RunOptions) -> list[units.PortSockets]:
    """The app's sockets of ``options.sockets``, by port, in the order they were passed."""
    ports: dict[str, list] = {}
    for s in options.sockets:
        if s.app == app:
            ports.setdefault(s.port, []).append(s)
    return [units.PortSockets(port, found[0].protocol, tuple(s.address for s in found))
            for port, found in ports.items()]

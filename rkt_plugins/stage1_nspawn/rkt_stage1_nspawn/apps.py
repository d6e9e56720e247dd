"""Each app's root inside the pod, and its service resolved against that root.

The image is untrusted: its root is only touched through an fd of it
(:mod:`rkt_core.sys.scoped`), so no symlink in it makes rkt mount, read or resolve anything
outside it. Executables and working directories are resolved to symlink-free paths and refused
under ``/proc``.
"""

from __future__ import annotations

import os
import stat

from rkt_core.errors import RktError
from rkt_core.pod.runtime import DEFAULT_PATH, AppRuntime, process_environment, resolve_user
from rkt_core.sys import mount, scoped
from rkt_core.types import RunOptions

from . import cgroups, units, userns
from .isolators import app_limits
from .spawn import describe


def _mounting(app: AppRuntime, what: str, call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except OSError as e:
        raise RktError(f'app "{app.name}": cannot mount {what}: {describe(e)}') from None


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
            _mounting(app, f"/{d}", lambda: os.close(scoped.resolve(root, d, create="dir",
                                                                    follow=False).fd))
        for m in app.mounts:
            _mounting(app, f'volume "{m.volume}" on {m.target}', scoped.bind_into, root,
                      m.source, m.target, read_only=m.read_only)
        binds = [(options.resolv_conf, "/etc/resolv.conf"), (options.hosts_file, "/etc/hosts")]
        if options.hosts_fallback and not options.hosts_file and not _exists(root, "/etc/hosts"):
            binds.append((options.hosts_fallback, "/etc/hosts"))
        for source, target in binds:
            if source:
                _mounting(app, target, scoped.bind_into, root, source, target, read_only=True)
    except BaseException:
        os.close(root)
        raise
    return root


def _exists(root: int, path: str) -> bool:
    try:
        node = scoped.resolve(root, path)
    except OSError:
        return False
    os.close(node.fd)
    return True


def _read_text(root: int, path: str) -> str | None:
    data = scoped.read_file(root, path)
    return None if data is None else data.decode("utf-8", "replace")


def _owner(root: int, path: str) -> tuple[int, int]:
    node = scoped.resolve(root, path)
    try:
        st = os.fstat(node.fd)
    finally:
        os.close(node.fd)
    return st.st_uid, st.st_gid


def _under_proc(path: str) -> bool:
    return path == "/proc" or path.startswith("/proc/")


def directory(root: int, app: AppRuntime, path: str) -> str:
    """The symlink-free form of a working directory inside the root, never under /proc."""
    try:
        node = scoped.resolve(root, path, want_dir=True)
    except OSError as e:
        raise RktError(f'app "{app.name}": working directory "{path}": {e.strerror}') from None
    os.close(node.fd)
    if _under_proc(node.path):
        raise RktError(f'app "{app.name}": working directory "{path}" is under /proc')
    return node.path


def executable(root: int, app: AppRuntime, name: str, search_path: str, cwd: str) -> str:
    """The symlink-free path of an executable regular file inside the root (not under /proc)."""
    if "/" in name:
        candidates = [os.path.join(cwd, name)]
    else:
        candidates = [os.path.join(cwd, d, name) for d in search_path.split(":") if d]
    for candidate in candidates:
        try:
            node = scoped.resolve(root, candidate)
        except OSError:
            continue
        try:
            st = os.fstat(node.fd)
        finally:
            os.close(node.fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111 and not _under_proc(node.path):
            return node.path
    where = "" if "/" in name else f" in PATH ({search_path})"
    raise RktError(f'app "{app.name}": executable "{name}" not found{where} in the app\'s root')


def service(root: int, app: AppRuntime, found: list[cgroups.Hierarchy],
            interactive: bool) -> units.AppService:
    """The app's service, resolved against its mounted root."""
    if not app.exec:
        raise RktError(f'app "{app.name}" has nothing to execute')
    try:
        account = resolve_user(app, lambda p: _read_text(root, p), lambda p: _owner(root, p))
    except OSError as e:
        raise RktError(f'app "{app.name}": cannot resolve its user: {describe(e)}') from None
    env = process_environment(app, account, interactive=interactive)
    cwd = directory(root, app, app.working_directory)
    search = env.get("PATH", DEFAULT_PATH)

    def command(argv: list[str] | None) -> units.Command | None:
        if not argv:
            return None
        return units.Command(executable(root, app, argv[0], search, cwd), tuple(argv))

    unit = units.service_file(app.name)
    return units.AppService(
        app=app.name, image=app.image_name, main=command(app.exec), working_directory=cwd,
        uid=account.uid, gid=account.gid, groups=account.groups, environment=env,
        limits=app_limits(app.name, app.isolators), pre_start=command(app.pre_start),
        post_stop=command(app.post_stop), cgroup_views=cgroups.app_views(found, unit),
        unified=cgroups.unified(found))

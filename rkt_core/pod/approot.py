"""Looking into an app's root, for every flavor: the image is untrusted, so its root is only
ever touched through an fd of it (:mod:`rkt_core.sys.scoped`).

Executables and working directories resolve to symlink-free paths and are refused under
``/proc`` (a working directory there could reach the host, CVE-2024-21626); users and groups
are read from the image's own ``/etc/passwd`` and ``/etc/group``; the name service files stage0
chose are bound read-only over the image's.
"""

from __future__ import annotations

import os
import stat

from ..errors import RktError, describe
from ..sys import scoped
from ..types import RunOptions
from .runtime import Account, AppRuntime, resolve_user


def mount_step(app: AppRuntime, what: str, call, *args, **kwargs) -> None:
    """Run one mount call for ``app``; its failure becomes ``cannot mount <what>: <why>``."""
    try:
        call(*args, **kwargs)
    except OSError as e:
        raise RktError(f'app "{app.name}": cannot mount {what}: {describe(e)}') from None


def bind_name_service(app: AppRuntime, root: int, options: RunOptions) -> None:
    """/etc/resolv.conf and /etc/hosts from the files stage0 chose (``--dns``,
    ``--hosts-entry``, or the host's), bound read-only after the volumes; the fallback hosts
    file only where the app has no /etc/hosts."""
    binds = [(options.resolv_conf, "/etc/resolv.conf"), (options.hosts_file, "/etc/hosts")]
    if options.hosts_fallback and not options.hosts_file and not path_exists(root, "/etc/hosts"):
        binds.append((options.hosts_fallback, "/etc/hosts"))
    for source, target in binds:
        if source:
            mount_step(app, target, scoped.bind_into, root, source, target, read_only=True)


def path_exists(root: int, path: str) -> bool:
    """Whether ``path`` resolves inside the root."""
    try:
        node = scoped.resolve(root, path)
    except OSError:
        return False
    os.close(node.fd)
    return True


def resolve_account(root: int, app: AppRuntime) -> Account:
    """The app's user and groups, looked up in its own root."""
    try:
        return resolve_user(app, lambda path: _read_text(root, path),
                            lambda path: _owner(root, path))
    except OSError as e:
        raise RktError(f'app "{app.name}": cannot resolve its user: {describe(e)}') from None


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


def resolve_directory(root: int, app: AppRuntime, path: str) -> str:
    """The symlink-free form of a working directory inside the root, never under /proc."""
    try:
        node = scoped.resolve(root, path, want_dir=True)
    except OSError as e:
        raise RktError(f'app "{app.name}": working directory "{path}": {e.strerror}') from None
    os.close(node.fd)
    if _under_proc(node.path):
        raise RktError(f'app "{app.name}": working directory "{path}" is under /proc')
    return node.path


def resolve_executable(root: int, app: AppRuntime, name: str, search_path: str, cwd: str) -> str:
    """The symlink-free path of an executable regular file inside the root (not under /proc);
    a ``name`` without ``/`` is searched in ``search_path``."""
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

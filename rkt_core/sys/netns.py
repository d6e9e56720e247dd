"""Named network namespaces, as ``ip netns`` keeps them: a file under ``/run/netns`` with the
namespace bind-mounted on it.

Creating one needs no helper process: this (single-threaded) process unshares a new network
namespace, binds ``/proc/self/ns/net`` onto the file, brings ``lo`` up there and returns to the
namespace it came from.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from . import mount, ns

NETNS_DIR = "/run/netns"

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _share_dir(directory: str) -> None:
    """Make ``directory`` a shared mount point (as ``ip netns add`` does), so that unmounting a
    namespace here also unmounts its copies in mount namespaces created since."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    try:
        mount.make_shared(directory)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        mount.bind(directory, directory, recursive=True)
        mount.make_shared(directory)


def set_link_up(name: str) -> None:
    """Bring the interface ``name`` of this process's network namespace up."""
    import socket  # not at import: a host-network pod makes no namespace

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", name.encode(), 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags | _IFF_UP))


def create(path: str) -> None:
    """Create a network namespace with ``lo`` up and pin it at ``path`` (which must not
    exist; its directory is made a shared mount point first)."""
    _share_dir(os.path.dirname(path))
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    home = ns.open_ns("net")
    try:
        ns.unshare(ns.CLONE_NEWNET)
        try:
            mount.bind("/proc/self/ns/net", path)
            set_link_up("lo")
        finally:
            ns.setns(home, "net")
    except BaseException:
        destroy(path)
        raise
    finally:
        os.close(home)


def destroy(path: str) -> None:
    """Unpin and remove the namespace file ``path`` (nothing happens if it is gone). The
    namespace itself ends when no process is left in it."""
    try:
        mount.umount(path, mount.MNT_DETACH | mount.UMOUNT_NOFOLLOW)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_netns(path: str) -> bool:
    """Whether ``path`` is a pinned network namespace (and not just an empty file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:  # a namespace lives on nsfs, never on the directory's filesystem
        return os.fstat(fd).st_dev != os.stat(os.path.dirname(path)).st_dev
    finally:
        os.close(fd)

"""rkt_core.sys.ns: unshare and setns (fake libc), and a real mount namespace (root)."""

import errno
import os

import pytest

from rkt_core.sys import ns


def test_unshare_passes_flags(fake_libc):
    ns.unshare(ns.CLONE_NEWNS | ns.CLONE_NEWUTS)
    assert fake_libc.calls == [("unshare", ns.CLONE_NEWNS | ns.CLONE_NEWUTS)]


def test_unshare_error(fake_libc):
    fake_libc.fail["unshare"] = errno.EPERM
    with pytest.raises(PermissionError, match="cannot unshare namespaces .flags 0x20000.: "
                                              "Operation not permitted"):
        ns.unshare(ns.CLONE_NEWNS)


def test_setns_checks_the_kind(fake_libc):
    ns.setns(7, "mnt")
    ns.setns(8)
    assert fake_libc.calls == [("setns", 7, ns.CLONE_NEWNS), ("setns", 8, 0)]


def test_setns_error(fake_libc):
    fake_libc.fail["setns"] = errno.EINVAL
    with pytest.raises(OSError, match="cannot join net namespace: Invalid argument"):
        ns.setns(3, "net")


def test_open_ns_by_pid_and_by_proc_fd():
    fd = ns.open_ns("mnt")
    proc_fd = os.open(f"/proc/{os.getpid()}", os.O_RDONLY | os.O_DIRECTORY)
    other = ns.open_ns("mnt", proc_fd=proc_fd)
    try:
        assert os.fstat(fd).st_ino == os.fstat(other).st_ino == os.stat("/proc/self/ns/mnt").st_ino
        assert not os.get_inheritable(fd)
    finally:
        for f in (fd, proc_fd, other):
            os.close(f)


def test_open_ns_refuses_unknown_kinds():
    with pytest.raises(ValueError):
        ns.open_ns("../../etc")


@pytest.mark.root
def test_real_unshare_then_setns_back(in_child):
    host = os.stat("/proc/self/ns/mnt").st_ino

    def body():
        back = ns.open_ns("mnt")
        ns.unshare(ns.CLONE_NEWNS)
        assert os.stat("/proc/self/ns/mnt").st_ino != host
        ns.setns(back, "mnt")
        assert os.stat("/proc/self/ns/mnt").st_ino == host

    in_child(body)

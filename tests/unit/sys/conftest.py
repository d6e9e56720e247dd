"""Fakes at the libc boundary of rkt_core.sys, and a helper to run code in a private mount
namespace (root tests: real mounts that never reach the host's mount table)."""

import ctypes
import os
import traceback

import pytest

from rkt_core.sys import libc as libc_module
from rkt_core.sys import mount, ns


class FakeLibc:
    """Stands in for the C library (``rkt_core.sys.libc``): records mount/umount2/unshare/setns/
    prctl/syncfs calls; ``fail[name] = errno`` makes a call fail, ``hooks[name](*args)`` runs
    during it (to look at the state the call sees)."""

    def __init__(self):
        self.calls = []
        self.fail = {}
        self.hooks = {}

    def _call(self, name, *args):
        self.calls.append((name, *args))
        if name in self.hooks:
            self.hooks[name](*args)
        err = self.fail.get(name)
        if err:
            ctypes.set_errno(err)
            return -1
        return 0

    def mount(self, *args):
        return self._call("mount", *args)

    def umount2(self, *args):
        return self._call("umount2", *args)

    def unshare(self, *args):
        return self._call("unshare", *args)

    def setns(self, *args):
        return self._call("setns", *args)

    def prctl(self, *args):
        return self._call("prctl", *args)

    def syncfs(self, *args):
        return self._call("syncfs", *args)


@pytest.fixture
def libc(monkeypatch):
    fake = FakeLibc()
    monkeypatch.setattr(libc_module, "_libc", fake)
    return fake


def _in_child(fn, *, private_mounts=False):
    """Run ``fn()`` in a forked child (in its own mount namespace with ``/`` private when
    ``private_mounts``); re-raise its failure here."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 0
        try:
            if private_mounts:
                ns.unshare(ns.CLONE_NEWNS)
                mount.make_private("/")
            fn()
        except BaseException:
            os.write(write, traceback.format_exc().encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        report = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report or f"child status {status}"


@pytest.fixture
def in_child():
    """:func:`_in_child`: ``in_child(fn, private_mounts=True)``."""
    return _in_child

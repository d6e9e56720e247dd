"""A recording fake of the C library behind ``rkt_core.sys`` (the Linux-call boundary: the one
seam, ``rkt_core.sys.libc``), for unit tests of code that mounts, unshares or joins namespaces
without root::

    def test_bind_mount(fake_libc):            # the pytest kit's fixture
        mount.bind("/a", "/b")
        assert fake_libc.calls[0][:3] == ("mount", b"/a", b"/b")
        fake_libc.fail["mount"] = errno.EPERM  # the next mount fails with EPERM
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable

class FakeLibc:
    """Records mount/umount2/unshare/setns/prctl/syncfs calls; ``fail[name] = errno`` makes a
    call fail, ``hooks[name](*args)`` runs during it (to look at the state the call sees)."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.fail: dict[str, int] = {}
        self.hooks: dict[str, Callable[..., Any]] = {}

    def _call(self, name: str, *args) -> int:
        self.calls.append((name, *args))
        if name in self.hooks:
            self.hooks[name](*args)
        err = self.fail.get(name)
        if err:
            ctypes.set_errno(err)
            return -1
        return 0

    def mount(self, *args) -> int:
        return self._call("mount", *args)

    def umount2(self, *args) -> int:
        return self._call("umount2", *args)

    def unshare(self, *args) -> int:
        return self._call("unshare", *args)

    def setns(self, *args) -> int:
        return self._call("setns", *args)

    def prctl(self, *args) -> int:
        return self._call("prctl", *args)

    def syncfs(self, *args) -> int:
        return self._call("syncfs", *args)


def install(monkeypatch) -> FakeLibc:
    """A :class:`FakeLibc` put in place of the C library of ``rkt_core.sys`` until
    ``monkeypatch`` is undone."""
    from ..sys import libc

    fake = FakeLibc()
    monkeypatch.setattr(libc, "_libc", fake)
    return fake

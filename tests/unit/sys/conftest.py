"""A helper to run code in a private mount namespace (root tests: real mounts that never reach
the host's mount table). The fake C library is the kit's ``fake_libc`` fixture."""

import os
import traceback

import pytest

from rkt_core.sys import mount, ns


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

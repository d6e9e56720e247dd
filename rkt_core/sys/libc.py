"""The C library, for the Linux calls Python 3.11 lacks (mount, unshare, setns, prctl, syncfs,
inotify).

This is the one place ``rkt_core`` reaches libc: the modules of :mod:`rkt_core.sys` go through
:func:`call`, which turns a failure into an ``OSError`` carrying errno. Unit tests fake the
Linux-call boundary here, by replacing :data:`_libc` with an object that has the functions.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

# Argument types of the functions with a fixed signature (others get ctypes' defaults).
_ARGTYPES = {
    "mount": (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p),
    "umount2": (ctypes.c_char_p, ctypes.c_int),
    "unshare": (ctypes.c_int,),
    "setns": (ctypes.c_int, ctypes.c_int),
    "prctl": (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong),
    "syncfs": (ctypes.c_int,),
    "inotify_init1": (ctypes.c_int,),
    "inotify_add_watch": (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32),
}

_libc: Any = None  # the C library, loaded on first use; unit tests replace it with a fake


def _library() -> Any:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        for name, argtypes in _ARGTYPES.items():
            getattr(lib, name).argtypes = argtypes
        _libc = lib
    return _libc


def call(name: str, *args: Any, what: str) -> int:
    """Call the C function ``name``; a result of -1 raises ``OSError(errno, "<what>: <reason>")``
    (``what`` says what failed, e.g. ``cannot unmount /x``)."""
    result = getattr(_library(), name)(*args)
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result

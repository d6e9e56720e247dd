"""Waiting, in a poll loop, for names to appear in a directory (inotify(7)).

A :class:`DirectoryWatch` is a descriptor that becomes readable when a file is created in its
directory or moved into it; :meth:`DirectoryWatch.has_all` drains it and says whether the names
waited for are all there now. Checking the directory itself, not the events, keeps it right
however the events were batched, and whatever existed before the watch began.
"""

from __future__ import annotations

import os

from . import libc

IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
IN_CREATE = 0x100
IN_MOVED_TO = 0x80


class DirectoryWatch:
    """The creations in one directory, as a pollable descriptor (:meth:`fileno`)."""

    def __init__(self, directory: str, names: list[str]):
        self.directory = directory
        self.names = set(names)
        self._fd = libc.call("inotify_init1", IN_NONBLOCK | IN_CLOEXEC,
                             what="cannot watch a directory")
        try:
            libc.call("inotify_add_watch", self._fd, os.fsencode(directory),
                      IN_CREATE | IN_MOVED_TO, what=f"cannot watch {directory}")
        except OSError:
            os.close(self._fd)
            raise

    def fileno(self) -> int:
        return self._fd

    def has_all(self) -> bool:
        """Read the pending events; whether every name waited for is in the directory now."""
        try:
            while os.read(self._fd, 4096):
                pass
        except BlockingIOError:
            pass
        try:
            return self.names <= set(os.listdir(self.directory))
        except FileNotFoundError:
            return False

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> DirectoryWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

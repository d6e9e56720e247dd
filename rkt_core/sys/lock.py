"""flock(2)-based locks on files and directories, as rkt uses them.

flock, not POSIX ``lockf``: a flock belongs to the open file description, so it survives other
descriptors of the same file being closed, and it can be handed to a child across ``exec``.
"""

from __future__ import annotations

import errno
import fcntl
import os

from ..errors import RktError


class LockBusyError(RktError):
    """The lock is held by someone else and a non-blocking acquisition was asked for."""


class FileLock:
    """An flock on an open file or directory descriptor.

    With ``create``, the path is a lock file that its last user may unlink (an image's or a
    tree's, once removed): a lock taken on a file unlinked meanwhile is taken again on the file
    now at the path, so that two holders never lock different files of the same name.
    """

    def __init__(self, path: str, *, directory: bool = False, create: bool = False):
        flags = os.O_RDONLY | os.O_CLOEXEC
        if directory:
            flags |= os.O_DIRECTORY
        if create:
            flags |= os.O_CREAT
        self.path = path
        self._flags = flags
        self.fd = os.open(path, flags, 0o640)

    def _flock(self, op: int, blocking: bool) -> None:
        while True:
            try:
                fcntl.flock(self.fd, op | (0 if blocking else fcntl.LOCK_NB))
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise LockBusyError(f'cannot acquire lock on "{self.path}": '
                                        "resource temporarily unavailable") from None
                raise
            if not self._flags & os.O_CREAT or self._is_at_path():
                return
            os.close(self.fd)  # unlinked while this waited: lock the file at the path now
            self.fd = -1
            self.fd = os.open(self.path, self._flags, 0o640)

    def _is_at_path(self) -> bool:
        """Whether the locked file is still the one at ``path``."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(self.fd)
        return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)

    def exclusive(self, blocking: bool = True) -> "FileLock":
        """Take (or convert to) an exclusive lock."""
        self._flock(fcntl.LOCK_EX, blocking)
        return self

    def shared(self, blocking: bool = True) -> "FileLock":
        """Take (or convert to) a shared lock."""
        self._flock(fcntl.LOCK_SH, blocking)
        return self

    def unlock(self) -> None:
        """Release the lock but keep the descriptor."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the descriptor, which releases the lock."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_locked(path: str, *, directory: bool = True) -> bool:
    """Whether someone holds an exclusive flock on ``path`` (probe with a non-blocking shared lock)."""
    try:
        lock = FileLock(path, directory=directory)
    except FileNotFoundError:
        return False
    with lock:
        try:
            lock.shared(blocking=False)
        except LockBusyError:
            return True
        return False

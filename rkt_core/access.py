"""Who may change the data directory: its owner and root. Members of group ``rkt`` only read.

The owner is the owner of the data directory (root for ``/var/lib/rkt`` after ``rkt install``).
Commands that change the store or pods call :func:`require_write_access` before they change
anything; everyone else opens the store read-only. Every directory and file rkt creates there is
writable by its owner alone, so nothing a member of group ``rkt`` can write changes what root runs.
"""

from __future__ import annotations

import os
import pwd
import stat

from .errors import RktError


def owner_of(data_dir: str) -> int | None:
    """The uid owning the data directory, or None if it does not exist yet."""
    try:
        return os.stat(data_dir).st_uid
    except FileNotFoundError:
        return None


def may_write(data_dir: str) -> bool:
    """Whether this process may change the data directory (root, its owner, or nobody owns it
    yet: whoever creates it becomes the owner)."""
    euid = os.geteuid()
    owner = owner_of(data_dir)
    return euid == 0 or owner is None or owner == euid


def user_name(uid: int) -> str:
    """The login name of ``uid``, or the number if it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def require_write_access(data_dir: str, activity: str) -> None:
    """Refuse, before any change, a command that writes when this process may only read."""
    if may_write(data_dir):
        return
    raise RktError(f"{activity} needs write access to {data_dir} (owned by "
                   f"{user_name(owner_of(data_dir))}): members of group rkt can only list and inspect",
                   hint="run it as root")


def check_not_shared(paths: list[str], owner: int) -> None:
    """Refuse to write a store whose ``paths`` others could have changed: writable by group or
    others, or owned by someone other than ``owner`` and root (one stat per path)."""
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        problem = ""
        if stat.S_ISLNK(st.st_mode):
            problem = "is a symbolic link"
        elif st.st_mode & 0o022:
            problem = "is group-writable" if st.st_mode & 0o020 else "is writable by others"
        elif st.st_uid not in (owner, 0):
            problem = f"is owned by {user_name(st.st_uid)}"
        if problem:
            raise RktError(f"refusing to use the store: {path} {problem}, so others could change "
                           "what rkt runs",
                           hint="run rkt install (as root) to repair the store's owners and modes")

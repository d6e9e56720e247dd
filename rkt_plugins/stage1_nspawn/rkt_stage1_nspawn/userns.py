"""``--private-users``: the pod's files owned by the shifted ids.

nspawn could chown the pod itself, but it would walk into the volumes bound into the apps and
change the owners of the host's files. So rkt shifts the stage1 root and each app's root
itself, before the volumes are mounted, and never across a mount point.
"""

from __future__ import annotations

import os
import stat

COUNT = 65536
NOBODY = 65534


def shifted(old: int, shift: int) -> int:
    """The id ``old`` (of the pod's range, or already shifted into it) shifted by ``shift``."""
    base = old - shift if shift <= old < shift + COUNT else old
    return shift + (base if base < COUNT else NOBODY)


def shift_tree(top: str, shift: int) -> None:
    """Give every file under ``top`` (``top`` included, mount points below left alone) the
    shifted owner and group, keeping setuid/setgid bits (chown(2) clears them)."""
    device = os.lstat(top).st_dev

    def one(path: str, st: os.stat_result) -> None:
        uid, gid = shifted(st.st_uid, shift), shifted(st.st_gid, shift)
        if (uid, gid) == (st.st_uid, st.st_gid):
            return
        os.lchown(path, uid, gid)
        if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(path, stat.S_IMODE(st.st_mode))

    def walk(directory: str) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if st.st_dev != device:
                    continue  # a mount point: not ours to change
                one(entry.path, st)
                if stat.S_ISDIR(st.st_mode):
                    walk(entry.path)

    one(top, os.lstat(top))
    walk(top)

"""Helpers for the archive tests: hand-made tars and a victim directory that must never change."""

import hashlib
import io
import os
import tarfile

import pytest

MTIME = 1_500_000_000


class TarBuilder:
    """Builds a tar entry by entry (PAX format); every method returns the builder."""

    def __init__(self):
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name, type=tarfile.REGTYPE, data=b"", **attrs):
        info = tarfile.TarInfo(name)
        info.type = type
        info.mtime = MTIME
        info.mode = 0o755 if type == tarfile.DIRTYPE else 0o644
        for key, value in attrs.items():
            setattr(info, key, value)
        if type in tarfile.REGULAR_TYPES:
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))
        else:
            self._tar.addfile(info)
        return self

    def file(self, name, data=b"", **attrs):
        return self.add(name, tarfile.REGTYPE, data, **attrs)

    def dir(self, name, **attrs):
        return self.add(name, tarfile.DIRTYPE, **attrs)

    def symlink(self, name, target, **attrs):
        return self.add(name, tarfile.SYMTYPE, linkname=target, **attrs)

    def hardlink(self, name, target, **attrs):
        return self.add(name, tarfile.LNKTYPE, linkname=target, **attrs)

    def fifo(self, name, **attrs):
        return self.add(name, tarfile.FIFOTYPE, **attrs)

    def device(self, name, kind, major, minor, **attrs):
        type = tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE
        return self.add(name, type, devmajor=major, devminor=minor, **attrs)

    def bytes(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


@pytest.fixture
def tar_builder():
    """``tar_builder()`` is a new :class:`TarBuilder`."""
    return TarBuilder


def _snapshot(top):
    """Everything observable about the tree at ``top`` (not following symlinks)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [""] + dirnames + filenames:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            entry = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ino,
                     st.st_nlink)
            if os.path.islink(path):
                entry += (os.readlink(path),)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    entry += (hashlib.sha256(f.read()).hexdigest(),)
            state[os.path.relpath(path, top)] = entry
    return state


class Victim:
    """A sandbox holding the extraction target ``root`` and, next to it, ``victim/hello`` (and a
    ``victim/sub`` dir). Whatever an archive does, :meth:`check` must find the victim exactly as it
    was, no new entry in the sandbox, and no file inside ``root`` sharing an inode with the victim.
    """

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.root = sandbox / "root"
        self.root.mkdir(parents=True)
        self.dir = sandbox / "victim"
        self.dir.mkdir()
        (self.dir / "sub").mkdir()
        self.hello = self.dir / "hello"
        self.hello.write_bytes(b"precious data\n")
        os.chmod(self.hello, 0o640)
        for path in (self.hello, self.dir / "sub", self.dir):
            os.utime(path, ns=(MTIME * 10**9, MTIME * 10**9))
        self.before = _snapshot(self.dir)

    def check(self):
        """Assert nothing outside ``root`` changed."""
        assert _snapshot(self.dir) == self.before, "HOST PATH WAS CHANGED: a path escape"
        assert sorted(os.listdir(self.sandbox)) == ["root", "victim"]
        victim_inodes = {(st.st_dev, st.st_ino) for st in
                         (os.lstat(p) for p in (self.hello, self.dir, self.dir / "sub"))}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                assert (st.st_dev, st.st_ino) not in victim_inodes, f"{name} is the victim"


@pytest.fixture
def victim(tmp_path):
    """A :class:`Victim` in ``tmp_path/sandbox``: extract into ``victim.root``."""
    return Victim(tmp_path / "sandbox")

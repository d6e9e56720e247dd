"""Helpers of the hardening suite: the rkt command, clear-error checks, victim directories and
the figures the suite prints."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections import defaultdict
from pathlib import Path

FIGURES: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # area -> cases, trials, failures


class Figures:
    """What one test tried: ``add(area, trials=1, failures=0)``."""

    def __init__(self):
        self.areas: set[str] = set()

    def add(self, area: str, trials: int = 1, failures: int = 0) -> None:
        figures = FIGURES[area]
        if area not in self.areas:
            self.areas.add(area)
            figures[0] += 1
        figures[1] += trials
        figures[2] += failures


def assert_clear_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    """rkt refused with its exit code 254, a ``rkt: ...`` message naming what is wrong, and
    no traceback or generic handler."""
    assert result.returncode == 254, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("rkt: ") or "\nrkt: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr, \
        result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its type and content digest (symlinks: their target)."""
    found = {}
    if not os.path.lexists(root):
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    found[rel] = hashlib.sha256(f.read()).hexdigest()
            else:
                found[rel] = "dir" if os.path.isdir(path) else "other"
    return found


class Victim:
    """A directory with files that nothing may change (``victim.path``); ``changes()`` lists
    what differs from when it was made."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        (path / "precious").write_bytes(b"do not touch\n")
        (path / "sub").mkdir(exist_ok=True)
        (path / "sub" / "file").write_bytes(b"nor this\n")
        self.before = snapshot(path)

    def changes(self) -> dict[str, tuple[str | None, str | None]]:
        after = snapshot(self.path)
        return {k: (self.before.get(k), after.get(k)) for k in set(self.before) | set(after)
                if self.before.get(k) != after.get(k)}




def lock_waiters(path: str | Path) -> int:
    """How many processes are blocked waiting for an flock on ``path`` (from /proc/locks)."""
    st = os.stat(path)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        return sum(1 for line in f if " -> " in line and device in line.split())


def wait_until_blocked(path: str | Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``process`` waits for a lock on ``path``; fail at once if it ended instead."""
    deadline = time.monotonic() + timeout
    while lock_waiters(path) == 0:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the command did not wait for {path}: exit {process.returncode}"
                                 f"\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the command never waited for {path}")
        time.sleep(0.05)


MANIFEST = {"acKind": "ImageManifest", "acVersion": "0.7.4",
            "labels": [{"name": "version", "value": "1.0"}]}


def manifest_bytes(name: str, **extra) -> bytes:
    """An image manifest called ``name``; ``extra`` keys are added (``dependencies`` ...)."""
    return json.dumps({**MANIFEST, "name": name, **extra}).encode()


class Tar:
    """A tar built entry by entry: ``Tar().dir("rootfs").file("rootfs/x", b"...")...``; every
    method returns the builder, ``bytes()`` the archive."""

    def __init__(self):
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name: str, type=tarfile.REGTYPE, data: bytes = b"", **attrs) -> "Tar":
        info = tarfile.TarInfo(name)
        info.type, info.mtime = type, 1_500_000_000
        info.mode = 0o755 if type == tarfile.DIRTYPE else 0o644
        for key, value in attrs.items():
            setattr(info, key, value)
        if type in tarfile.REGULAR_TYPES:
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))
        else:
            self._tar.addfile(info)
        return self

    def file(self, name: str, data: bytes = b"", **attrs) -> "Tar":
        return self.add(name, tarfile.REGTYPE, data, **attrs)

    def dir(self, name: str, **attrs) -> "Tar":
        return self.add(name, tarfile.DIRTYPE, **attrs)

    def symlink(self, name: str, target: str) -> "Tar":
        return self.add(name, tarfile.SYMTYPE, linkname=target)

    def hardlink(self, name: str, target: str) -> "Tar":
        return self.add(name, tarfile.LNKTYPE, linkname=target)

    def image(self, name: str = "example.com/hostile", **extra) -> bytes:
        """The archive with a manifest appended."""
        return self.file("manifest", manifest_bytes(name, **extra)).bytes()

    def bytes(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def compressed_stream(chunks: list[bytes], compression: str | None) -> bytes:
    """``chunks`` compressed one stream each and concatenated (gzip, bzip2 and xz all allow
    that); the same chunk given many times is compressed once."""
    from rkt_core.testing.aci import compress

    cache: dict[int, bytes] = {}
    out = []
    for chunk in chunks:
        if id(chunk) not in cache:
            cache[id(chunk)] = compress(chunk, compression)
        out.append(cache[id(chunk)])
    return b"".join(out)


def bomb(compression: str, size: int) -> bytes:
    """An ACI whose one file is ``size`` bytes of zeros with a random byte every 4 KiB: gzip
    makes it ~500 times smaller (under deflate's ~1030:1 ceiling), bzip2 and xz more."""
    chunk = bytearray(1 << 20)
    for offset in range(0, len(chunk), 4096):
        chunk[offset] = os.urandom(1)[0] or 1
    chunk = bytes(chunk)
    info = tarfile.TarInfo("rootfs/bomb")
    info.size, info.mode = size, 0o644
    root = tarfile.TarInfo("rootfs")
    root.type, root.mode = tarfile.DIRTYPE, 0o755
    head = root.tobuf(tarfile.PAX_FORMAT) + info.tobuf(tarfile.PAX_FORMAT)
    manifest = manifest_bytes("example.com/bomb")
    minfo = tarfile.TarInfo("manifest")
    minfo.size, minfo.mode = len(manifest), 0o644
    tail = (minfo.tobuf(tarfile.PAX_FORMAT) + manifest
            + b"\0" * (-len(manifest) % 512) + b"\0" * 1024)
    assert size % len(chunk) == 0
    return compressed_stream([head] + [chunk] * (size // len(chunk)) + [tail], compression)


def store_state(data: Path) -> dict:
    """What the store holds: database rows, blob and manifest files, temporary files, trees."""
    from rkt_core.store.imagestore import ImageStore

    cas = data / "cas"
    if not (cas / "db").exists():
        return {"rows": [], "blob": [], "imageManifest": [], "tmp": [], "trees": []}
    files = {kind: sorted(p.name for p in (cas / kind).rglob("sha512-*"))
             for kind in ("blob", "imageManifest")}
    return {"rows": sorted(i.key for i in ImageStore(str(data), read_only=True).list_images()),
            **files, "tmp": sorted(os.listdir(cas / "tmp")) if (cas / "tmp").exists() else [],
            "trees": sorted(os.listdir(cas / "tree")) if (cas / "tree").exists() else []}

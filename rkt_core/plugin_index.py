"""The installed plugins' entry points (group ``rkt.plugins``), from an index kept between runs.

Finding entry points means reading the metadata of every installed distribution
(``importlib.metadata``): tens of milliseconds, on every command that needs a plugin. The
index keeps what the last scan found, in ``$XDG_CACHE_HOME/rkt/`` (``~/.cache/rkt/``), keyed
by the interpreter and ``sys.path``; it holds the modification time of every ``sys.path``
directory. Installing or removing a distribution adds or removes its ``*.dist-info``
directory in one of them, which changes that time: one ``stat`` per ``sys.path`` entry tells
whether the index still holds. An index is not written while a directory has just changed
(an installation may still be under way), nor trusted unless it belongs to this user and no
one else may write it.
"""

from __future__ import annotations

import os
import sys
import time
import zlib

GROUP = "rkt.plugins"
FORMAT = 1
RACY_SECONDS = 2  # a directory changed this recently may still be changing


class EntryPoint:
    """One entry point of the group: its name, ``module[:attr]`` value, and the distribution
    (name and version) that ships it."""

    __slots__ = ("name", "value", "distribution", "version")

    def __init__(self, name: str, value: str, distribution: str = "", version: str = ""):
        self.name, self.value = name, value
        self.distribution, self.version = distribution, version

    def __repr__(self) -> str:
        return f"EntryPoint({self.name!r}, {self.value!r})"

    def load(self):
        """Import the module the entry point names and return it (or its attribute)."""
        import importlib

        module, _, attrs = self.value.partition(":")
        target = importlib.import_module(module.strip())
        for attr in attrs.split("[")[0].strip().split("."):
            if attr:
                target = getattr(target, attr)
        return target


def entry_points() -> list[EntryPoint]:
    """The entry points of ``rkt.plugins`` in every distribution ``sys.path`` finds, in the
    order ``importlib.metadata`` gives them (the first distribution of a name only)."""
    key = _path_key()
    path = _index_file(key)
    found = _read(path, key)
    if found is None:
        found = _scan()
        if not _racy(key):
            _write(path, key, found)
    return found


def _path_key() -> list:
    """What the index depends on: the interpreter, and each ``sys.path`` entry with its
    modification time (-1 where it does not exist)."""
    entries = []
    for entry in sys.path:
        try:
            mtime = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = -1
        entries.append([entry, mtime])
    return [FORMAT, sys.executable, sys.prefix, entries]


def _racy(key: list) -> bool:
    newest = max((mtime for _, mtime in key[3]), default=-1)
    return newest > time.time_ns() - RACY_SECONDS * 10**9


def _index_file(key: list) -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    name = "\0".join([key[1], key[2], *(entry for entry, _ in key[3])])
    return os.path.join(cache, "rkt", f"plugins-{zlib.crc32(name.encode()):08x}.json")


def _read(path: str, key: list) -> list[EntryPoint] | None:
    """The entry points the index at ``path`` holds, if it was made for ``key`` by this user
    and no one else may have changed it."""
    import json

    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            data = json.loads(f.read())
        if data["key"] != key:
            return None
        return [EntryPoint(*fields) for fields in data["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _scan() -> list[EntryPoint]:
    from importlib.metadata import entry_points as installed

    found, seen = [], set()
    for ep in installed(group=GROUP):
        if (ep.name, ep.value) not in seen:  # one package found twice on sys.path
            seen.add((ep.name, ep.value))
            found.append(EntryPoint(ep.name, ep.value, ep.dist.name if ep.dist else "",
                                    ep.dist.version if ep.dist else ""))
    return found


def _write(path: str, key: list, found: list[EntryPoint]) -> None:
    """Replace the index at ``path`` (best effort: without it, the next run scans again)."""
    import json
    import tempfile

    data = {"key": key, "entry_points": [[e.name, e.value, e.distribution, e.version]
                                         for e in found]}
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass

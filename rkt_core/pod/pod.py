"""Pod directories and their lifecycle, as rkt keeps them.

A pod is a directory ``<data>/pods/<state dir>/<uuid>``; its state is the directory it is in plus
whether someone holds an exclusive flock on it:

    ==================  ===================  ===============
    directory           locked               unlocked
    ==================  ===================  ===============
    embryo/             embryo               embryo
    prepare/            preparing            aborted prepare
    prepared/           prepared             prepared
    run/                running              exited
    exited-garbage/     exited deleting      exited garbage
    garbage/            deleting             garbage
    ==================  ===================  ===============

Every transition is an atomic rename(2) followed by an fsync of the target directory. The pod's
own files are written atomically (temp file, rename: never seen half-written) but made durable
only where the pod must outlive a crash: as a whole, by one syncfs(2), before it becomes prepared.
A pod that a crash leaves in ``prepare/`` is an aborted prepare (``gc`` removes it), and one left
in ``run/`` is exited, and its files (pid, exit statuses) describe processes the crash ended:
``list`` and ``status`` show such a pod however little of it reached the disk, and ``gc`` removes
it. The lock is
taken on an O_DIRECTORY descriptor, which follows the directory through renames; a running pod
keeps it open in the processes that live as long as the pod (``RKT_LOCK_FD``), so the kernel drops
it exactly when the pod dies.
"""

from __future__ import annotations

import json
import os
from typing import Iterator

from ..crashpoints import crash_point
from ..errors import NotFoundError, RktError
from ..sys.fs import fsync_dir, syncfs
from ..sys.lock import FileLock, LockBusyError

EMBRYO, PREPARE, PREPARED, RUN, EXITED_GARBAGE, GARBAGE = (
    "embryo", "prepare", "prepared", "run", "exited-garbage", "garbage")
STATE_DIRS = (EMBRYO, PREPARE, PREPARED, RUN, EXITED_GARBAGE, GARBAGE)
MOST_DIRS = (PREPARE, PREPARED, RUN, EXITED_GARBAGE)

# The state names rkt prints.
S_EMBRYO, S_PREPARING, S_ABORTED_PREPARE, S_PREPARED = "embryo", "preparing", "aborted prepare", "prepared"
S_RUNNING, S_EXITED, S_EXITED_DELETING, S_EXITED_GARBAGE = "running", "exited", "exited deleting", "exited garbage"
S_DELETING, S_GARBAGE = "deleting", "garbage"

_STATE = {  # directory -> (state when locked, state when unlocked)
    EMBRYO: (S_EMBRYO, S_EMBRYO),
    PREPARE: (S_PREPARING, S_ABORTED_PREPARE),
    PREPARED: (S_PREPARED, S_PREPARED),
    RUN: (S_RUNNING, S_EXITED),
    EXITED_GARBAGE: (S_EXITED_DELETING, S_EXITED_GARBAGE),
    GARBAGE: (S_DELETING, S_GARBAGE),
}


def pods_dir(data_dir: str, state_dir: str = "") -> str:
    """``<data>/pods`` or one of its state directories."""
    return os.path.join(data_dir, "pods", state_dir) if state_dir else os.path.join(data_dir, "pods")


def random_uuid() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives (the ``uuid`` module
    imports ``platform``, which compiles ten regexes: 2% of a fly run's instructions)."""
    octets = bytearray(os.urandom(16))
    octets[6] = octets[6] & 0x0F | 0x40  # version 4
    octets[8] = octets[8] & 0x3F | 0x80  # RFC 4122 variant
    h = octets.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def init_pods_dirs(data_dir: str) -> None:
    """Create the state directories (mode 0750) if missing."""
    for state_dir in STATE_DIRS:
        os.makedirs(pods_dir(data_dir, state_dir), mode=0o750, exist_ok=True)


class Pod:
    """A handle on one pod directory. Keeps an O_DIRECTORY descriptor of it open (``lock``),
    locked or not, so that transitions act on this very directory."""

    def __init__(self, data_dir: str, uuid: str, state_dir: str, lock: FileLock, locked_by_me: bool):
        self.data_dir = data_dir
        self.uuid = uuid
        self.state_dir = state_dir
        self.lock = lock
        self.locked_by_me = locked_by_me

    # --- finding pods -------------------------------------------------------------------------

    @classmethod
    def create(cls, data_dir: str) -> "Pod":
        """A new pod in state *preparing*: a fresh uuid, made in ``embryo/``, exclusively locked,
        then renamed into ``prepare/``."""
        init_pods_dirs(data_dir)
        while True:
            pod_uuid = random_uuid()
            embryo = os.path.join(pods_dir(data_dir, EMBRYO), pod_uuid)
            os.mkdir(embryo, 0o750)
            try:
                lock = FileLock(embryo, directory=True)
            except FileNotFoundError:
                continue  # gc took it for a crash's leftover before it was locked
            lock.exclusive()
            if os.fstat(lock.fd).st_nlink:
                break
            lock.close()
        crash_point("pod.embryo")
        pod = cls(data_dir, pod_uuid, EMBRYO, lock, True)
        pod._move(PREPARE)
        return pod

    @classmethod
    def remove_abandoned_embryos(cls, data_dir: str) -> list[str]:
        """Delete the embryo directories of crashed ``Pod.create`` calls (unlocked ones);
        return their uuids."""
        removed = []
        for _state_dir, pod_uuid in _list(data_dir, (EMBRYO,)):
            path = os.path.join(pods_dir(data_dir, EMBRYO), pod_uuid)
            try:
                lock = FileLock(path, directory=True)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with lock:
                try:
                    lock.exclusive(blocking=False)
                except LockBusyError:
                    continue  # being created right now
                if not os.fstat(lock.fd).st_nlink:
                    continue
                try:
                    os.rmdir(path)
                except OSError:
                    continue  # not empty: not one of ours
                removed.append(pod_uuid)
        return removed

    @classmethod
    def open(cls, data_dir: str, pod_uuid: str) -> "Pod":
        """The pod with this exact uuid, wherever it is; NotFoundError if it is nowhere."""
        for state_dir in STATE_DIRS:
            path = os.path.join(pods_dir(data_dir, state_dir), pod_uuid)
            try:
                lock = FileLock(path, directory=True)
            except (FileNotFoundError, NotADirectoryError):
                continue
            return cls(data_dir, pod_uuid, state_dir, lock, False)
        raise NotFoundError(f'pod "{pod_uuid}" was not present')

    @classmethod
    def find(cls, data_dir: str, prefix: str) -> "Pod":
        """The pod whose uuid starts with ``prefix`` (rkt accepts unambiguous prefixes)."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise RktError("empty pod UUID")
        matches = sorted({u for _, u in _list(data_dir, MOST_DIRS) if u.startswith(prefix)})
        if not matches:
            raise NotFoundError(f'no matches found for "{prefix}"')
        if len(matches) > 1:
            raise RktError(f"ambiguous uuid, {len(matches)} matches")
        return cls.open(data_dir, matches[0])

    @classmethod
    def walk(cls, data_dir: str, state_dirs: tuple[str, ...] = MOST_DIRS) -> Iterator["Pod"]:
        """Every pod in the given state directories (each handle must be closed by the caller);
        pods that vanish while walking are skipped."""
        for _state_dir, pod_uuid in _list(data_dir, state_dirs):
            try:
                yield cls.open(data_dir, pod_uuid)
            except NotFoundError:
                continue

    # --- state --------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The pod directory as of the last known state."""
        return os.path.join(pods_dir(self.data_dir, self.state_dir), self.uuid)

    def is_locked(self) -> bool:
        """Whether someone (possibly this process) holds the pod's exclusive lock."""
        if self.locked_by_me:
            return True
        try:
            self.lock.shared(blocking=False)
        except LockBusyError:
            return True
        self.lock.unlock()
        return False

    @property
    def state(self) -> str:
        """The state as rkt names it (``running``, ``exited``, ``prepared``...)."""
        locked, unlocked = _STATE[self.state_dir]
        return locked if self.is_locked() else unlocked

    def is_gone(self) -> bool:
        """Whether the directory this handle holds has been deleted (by another gc)."""
        return os.fstat(self.lock.fd).st_nlink == 0

    def refresh(self) -> None:
        """Find the pod's directory again (another process may have moved it)."""
        for state_dir in STATE_DIRS:
            if os.path.isdir(os.path.join(pods_dir(self.data_dir, state_dir), self.uuid)):
                self.state_dir = state_dir
                return
        raise NotFoundError(f'pod "{self.uuid}" is gone')

    # --- transitions --------------------------------------------------------------------------

    def _move(self, target: str) -> None:
        """Rename the pod into another state directory and make the rename durable."""
        source = self.path
        os.rename(source, os.path.join(pods_dir(self.data_dir, target), self.uuid))
        fsync_dir(pods_dir(self.data_dir, target))
        self.state_dir = target

    def exclusive_lock(self, blocking: bool = False) -> None:
        """Take the pod's exclusive lock (non-blocking: LockBusyError if someone holds it)."""
        self.lock.exclusive(blocking=blocking)
        self.locked_by_me = True

    def unlock(self) -> None:
        """Release the pod's lock (the descriptor stays open)."""
        self.lock.unlock()
        self.locked_by_me = False

    def to_prepared(self) -> None:
        """preparing -> prepared: make the pod's files durable, rename it into ``prepared/``
        and release the lock."""
        self._expect(PREPARE, locked=True)
        syncfs(self.path)
        self._move(PREPARED)
        self.unlock()

    def to_run(self) -> None:
        """preparing or prepared -> running: lock (if not already), rename into ``run/``.

        A prepared pod that another ``run-prepared`` took first raises an error, never runs twice.
        """
        if self.state_dir not in (PREPARE, PREPARED):
            raise RktError(f'pod "{self.uuid}" is {self.state}, it cannot be run')
        if not self.locked_by_me:
            try:
                self.exclusive_lock()
            except LockBusyError:
                raise RktError(f'pod "{self.uuid}" is already being run') from None
        try:
            self._move(RUN)
        except FileNotFoundError:
            raise RktError(f'pod "{self.uuid}" is already being run') from None

    def to_exited_garbage(self) -> None:
        """exited -> exited garbage (gc's mark; the directory's ctime starts the grace period)."""
        self._expect(RUN, locked=False)
        self._move(EXITED_GARBAGE)

    def to_garbage(self) -> None:
        """aborted prepare or prepared -> garbage."""
        if self.state_dir not in (PREPARE, PREPARED):
            raise RktError(f'pod "{self.uuid}" is {self.state}, it cannot become garbage')
        self._move(GARBAGE)

    def _expect(self, state_dir: str, locked: bool) -> None:
        if self.state_dir != state_dir or self.is_locked() != locked:
            raise RktError(f'pod "{self.uuid}" is {self.state}')

    def close(self) -> None:
        """Close the pod's descriptor (releasing the lock if this process held it)."""
        self.lock.close()

    def __enter__(self) -> "Pod":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- contents -----------------------------------------------------------------------------

    def file(self, *parts: str) -> str:
        """A path inside the pod directory."""
        return os.path.join(self.path, *parts)

    def _where(self, parts: tuple[str, ...]) -> tuple[str, int | None]:
        """A pod file as (path, dir_fd): relative to the pod's descriptor while it is open, so
        that reads follow the pod when another process moves it to another state."""
        if self.lock.fd >= 0:
            return os.path.join(*parts), self.lock.fd
        return self.file(*parts), None

    def read_bytes(self, *parts: str) -> bytes | None:
        """The content of a pod file, or None if it does not exist."""
        path, dir_fd = self._where(parts)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with open(fd, "rb") as f:
            return f.read()

    def read_text(self, *parts: str) -> str | None:
        """The stripped content of a pod file, or None if it does not exist."""
        data = self.read_bytes(*parts)
        return None if data is None else data.decode("utf-8", "replace").strip()

    def manifest_json(self) -> bytes | None:
        """The pod manifest as written by prepare, or None (embryo, early preparing)."""
        return self.read_bytes("pod")

    def manifest(self):
        """The parsed pod manifest (NotFoundError if the pod has none yet)."""
        from ..appc import PodManifest

        data = self.manifest_json()
        if data is None:
            raise NotFoundError(f'pod "{self.uuid}" has no manifest')
        return PodManifest.from_json(data)

    def _mtime(self, *parts: str) -> float | None:
        path, dir_fd = self._where(parts)
        try:
            return os.stat(path, dir_fd=dir_fd).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None

    @property
    def created_at(self) -> float | None:
        """When the pod was created (mtime of ``pod-created``)."""
        return self._mtime("pod-created")

    @property
    def started_at(self) -> float | None:
        """When stage1 started (mtime of the ``pid`` file, else of ``ppid``), if it did."""
        started = self._mtime("pid")
        return started if started is not None else self._mtime("ppid")

    @property
    def gc_marked_at(self) -> float | None:
        """When gc marked the pod as garbage (ctime of its directory in exited-garbage/garbage)."""
        if self.state_dir not in (EXITED_GARBAGE, GARBAGE):
            return None
        try:
            return os.stat(self.path).st_ctime
        except FileNotFoundError:
            return None

    def cgroup(self) -> str:
        """The cgroup of a running pod ("" otherwise), rooted at the hierarchy's top: the
        ``subcgroup`` its flavor recorded, else the cgroup of its pid (the systemd or unified
        hierarchy's, without a trailing ``/init.scope``), as rkt's API service found it."""
        if self.state != S_RUNNING:
            return ""
        recorded = self.read_text("subcgroup")
        if recorded:
            return "/" + recorded.lstrip("/")
        pid = self.pid
        if pid is None:
            return ""
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        found = {}
        for line in lines:
            _, controllers, path = line.split(":", 2)
            found[controllers] = path
        path = found.get("name=systemd", found.get("", ""))
        return path.removesuffix("/init.scope")

    @property
    def pid(self) -> int | None:
        """The pid stage1 recorded for the pod: ``pid``, else ``ppid`` (a stage1 writes one or
        the other, as rkt's stage1 contract says)."""
        for name in ("pid", "ppid"):
            text = self.read_text(name)
            if text and text.isdigit():
                return int(text)
        return None

    def app_exit_codes(self) -> dict[str, int]:
        """Exit codes the flavor recorded per app (``stage1/rootfs/rkt/status/<app>``)."""
        codes = {}
        for name in self._list_dir("stage1", "rootfs", "rkt", "status"):
            if name.endswith(("-created", "-started")):
                continue
            text = self.read_text("stage1", "rootfs", "rkt", "status", name)
            if text is not None and text.lstrip("-").isdigit():
                codes[name] = int(text)
        return codes

    def _list_dir(self, *parts: str) -> list[str]:
        """The sorted names in a directory of the pod (none if it does not exist)."""
        path, dir_fd = self._where(parts)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            return []
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    def networks(self) -> list[dict]:
        """The networks of the pod, from ``net-info.json`` (empty without contained networking)."""
        text = self.read_text("net-info.json")
        try:
            networks = json.loads(text) if text else []
        except (ValueError, RecursionError):
            return []
        if not isinstance(networks, list):
            return []
        return [n for n in networks if isinstance(n, dict)]


def entries(data_dir: str, state_dirs: tuple[str, ...] = STATE_DIRS) -> Iterator[tuple[str, str]]:
    """``(state directory, uuid)`` of the pods in ``state_dirs``, none of them opened."""
    return _list(data_dir, state_dirs)


def _list(data_dir: str, state_dirs: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for state_dir in state_dirs:
        try:
            names = sorted(os.listdir(pods_dir(data_dir, state_dir)))
        except FileNotFoundError:
            continue
        for name in names:
            yield state_dir, name

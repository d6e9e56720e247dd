"""What pods on disk still use: tree store ids and image keys.

``image gc`` and ``image rm`` must not delete what a pod needs. Pods record the trees they were
built from in ``stage1TreeStoreID`` and ``appsinfo/<app>/treeStoreID``, their apps' images in
the pod manifest and their stage1 image, if they have one, in ``stage1ID`` (rkt's name).
"""

from __future__ import annotations

import os
import re

from ..sys.lock import is_locked

STAGE1_ID = "stage1ID"  # the key of the pod's stage1 image (pods of stage1 images only)
_IMAGE_KEY = re.compile(r"^sha512-[0-9a-f]{64}$")

# Pod states whose trees are still needed (all but embryo and garbage).
TREE_USING_STATES = ("prepare", "prepared", "run", "exited-garbage")


def _pod_dirs(data_dir: str, states: tuple[str, ...]):
    for state in states:
        base = os.path.join(data_dir, "pods", state)
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            continue
        for name in names:
            yield state, os.path.join(base, name)


def _read(path: str) -> str | None:
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def referenced_tree_ids(data_dir: str) -> set[str]:
    """Tree store ids used by any pod that is not garbage.

    Pods move forward through the state directories in the order they are walked, so a pod that
    moves while it is looked at is found in the next one; a pod deleted meanwhile is skipped.
    Hold the prepare lock (:func:`prepare_lock`) exclusively, or new pods may be missed.
    """
    ids: set[str] = set()
    for _state, pod in _pod_dirs(data_dir, TREE_USING_STATES):
        try:
            fd = os.open(pod, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            ids.update(_tree_ids(fd))
        finally:
            os.close(fd)
    return ids


def _tree_ids(pod_fd: int) -> set[str]:
    """The tree ids one pod records (read relative to its directory descriptor)."""
    ids = {_read_at(pod_fd, "stage1TreeStoreID")}
    try:
        apps_fd = os.open("appsinfo", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pod_fd)
    except (FileNotFoundError, NotADirectoryError):
        apps_fd = -1
    if apps_fd >= 0:
        try:
            ids.update(_read_at(apps_fd, os.path.join(app, "treeStoreID"))
                       for app in os.listdir(apps_fd))
        finally:
            os.close(apps_fd)
    ids.discard(None)
    ids.discard("")
    return ids


def _read_at(dir_fd: int, path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with open(fd, errors="replace") as f:
        return f.read().strip()


def running_image_keys(data_dir: str) -> set[str]:
    """Image keys of running pods (in ``run/`` and locked): their apps' and their stage1's; a
    pod whose manifest cannot be read is skipped (its trees are kept all the same)."""
    from ..appc import AppcError, PodManifest

    keys: set[str] = set()
    for _state, pod in _pod_dirs(data_dir, ("run",)):
        if not is_locked(pod):
            continue
        stage1 = _read(os.path.join(pod, STAGE1_ID))
        if stage1 and _IMAGE_KEY.match(stage1):
            keys.add(stage1)
        manifest = _read(os.path.join(pod, "pod"))
        try:
            apps = PodManifest.from_json(manifest).apps if manifest else []
        except AppcError:
            continue
        keys.update(app.image.id for app in apps if app.image.id)
    return keys


def prepare_lock(data_dir: str):
    """The ``locks/prepareLock`` file lock: pods being prepared hold it shared, and ``image gc``
    holds it exclusive while it decides which trees are unused."""
    from ..sys.lock import FileLock

    locks = os.path.join(data_dir, "locks")
    os.makedirs(locks, mode=0o2750, exist_ok=True)
    return FileLock(os.path.join(locks, "prepareLock"), create=True)

"""What pods on disk still use: tree store ids and image keys.

``image gc`` and ``image rm`` must not delete what a pod needs. Pods record the trees they were
built from in ``stage1TreeStoreID`` and ``appsinfo/<app>/treeStoreID``, and their images in the
pod manifest.
"""

from __future__ import annotations

import json
import os

from ..sys.lock import is_locked

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
        with open(path) as f:
            return f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def referenced_tree_ids(data_dir: str) -> set[str]:
    """Tree store ids used by any pod that is not garbage."""
    ids: set[str] = set()
    for _state, pod in _pod_dirs(data_dir, TREE_USING_STATES):
        stage1 = _read(os.path.join(pod, "stage1TreeStoreID"))
        if stage1:
            ids.add(stage1)
        apps = os.path.join(pod, "appsinfo")
        for app in os.listdir(apps) if os.path.isdir(apps) else ():
            tree = _read(os.path.join(apps, app, "treeStoreID"))
            if tree:
                ids.add(tree)
    return ids


def running_image_keys(data_dir: str) -> set[str]:
    """Image keys of the apps of running pods (in ``run/`` and locked)."""
    keys: set[str] = set()
    for _state, pod in _pod_dirs(data_dir, ("run",)):
        if not is_locked(pod):
            continue
        manifest = _read(os.path.join(pod, "pod"))
        try:
            apps = json.loads(manifest).get("apps") or [] if manifest else []
        except ValueError:
            continue
        keys.update(app.get("image", {}).get("id", "") for app in apps if isinstance(app, dict))
    keys.discard("")
    return keys


def prepare_lock(data_dir: str):
    """The ``locks/prepareLock`` file lock: pods being prepared hold it shared, and ``image gc``
    holds it exclusive while it decides which trees are unused."""
    from ..sys.lock import FileLock

    locks = os.path.join(data_dir, "locks")
    os.makedirs(locks, mode=0o2750, exist_ok=True)
    return FileLock(os.path.join(locks, "prepareLock"), create=True)

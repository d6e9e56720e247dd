"""The pod as plugins see it: what it is and what its directory holds, but no transitions.

Stage0 hands flavors, network backends and observers a :class:`PodView` of the pod it holds; only
stage0 moves pods between states and takes or releases their locks.
"""

from __future__ import annotations

from typing import Any

# The pod's metadata service URL (``--mds-register``), for ``rkt enter``: it holds the pod's
# secret token, so only root reads it.
METADATA_URL_FILE = "metadata-url"


class PodView:
    """A read-only view of a pod (``rkt_core.pod.pod.Pod``)."""

    def __init__(self, pod: Any):
        self._pod = pod

    @classmethod
    def of(cls, pod: Any) -> "PodView":
        """A view of ``pod`` (``pod`` itself if it is one already)."""
        return pod if isinstance(pod, cls) else cls(pod)

    def __repr__(self) -> str:
        return f"PodView({self.uuid}, {self.state_dir})"

    @property
    def uuid(self) -> str:
        """The pod's uuid."""
        return self._pod.uuid

    @property
    def data_dir(self) -> str:
        """rkt's data directory (``--dir``)."""
        return self._pod.data_dir

    @property
    def path(self) -> str:
        """The pod directory (it moves between state directories)."""
        return self._pod.path

    @property
    def state_dir(self) -> str:
        """The state directory the pod is in (``prepared``, ``run``, ``exited-garbage``...)."""
        return self._pod.state_dir

    @property
    def state(self) -> str:
        """The state as rkt names it (``running``, ``exited``, ``prepared``...)."""
        return self._pod.state

    @property
    def lock_fd(self) -> int:
        """The pod directory's descriptor: stage0 holds its exclusive lock while the pod runs;
        a flavor keeps it open in the pod's processes (see ``RunOptions.lock_fd``)."""
        return self._pod.lock.fd

    @property
    def holds_lock(self) -> bool:
        """Whether this process holds the pod's exclusive lock."""
        return self._pod.locked_by_me

    def is_locked(self) -> bool:
        """Whether any process holds the pod's exclusive lock."""
        return self._pod.is_locked()

    def file(self, *parts: str) -> str:
        """A path inside the pod directory."""
        return self._pod.file(*parts)

    def read_text(self, *parts: str) -> str | None:
        """The stripped content of a pod file, or None if it does not exist."""
        return self._pod.read_text(*parts)

    def manifest(self):
        """The pod manifest (``PodManifest``)."""
        return self._pod.manifest()

    def manifest_json(self) -> bytes | None:
        """The pod manifest as written by prepare, or None."""
        return self._pod.manifest_json()

    @property
    def flavor(self) -> str:
        """The stage1 flavor the pod was prepared for ("" if none is recorded)."""
        return self._pod.read_text("stage1", "flavor") or ""

    @property
    def pid(self) -> int | None:
        """The pid the flavor recorded for the pod."""
        return self._pod.pid

    @property
    def created_at(self) -> float | None:
        """When the pod was created."""
        return self._pod.created_at

    @property
    def started_at(self) -> float | None:
        """When its flavor started it, if it did."""
        return self._pod.started_at

    @property
    def gc_marked_at(self) -> float | None:
        """When gc marked it as garbage (moved it to ``exited-garbage/`` or ``garbage/``)."""
        return self._pod.gc_marked_at

    @property
    def metadata_url(self) -> str:
        """The URL the pod was registered under with a metadata service, which its apps get as
        ``AC_METADATA_URL`` ("" if it was not registered)."""
        return self._pod.read_text(METADATA_URL_FILE) or ""

    def cgroup(self) -> str:
        """The cgroup of a running pod ("" otherwise): the ``subcgroup`` its flavor recorded,
        else its pid's cgroup."""
        return self._pod.cgroup()

    def app_exit_codes(self) -> dict[str, int]:
        """The exit status the flavor recorded for each app."""
        return self._pod.app_exit_codes()

    def networks(self) -> list[dict]:
        """The pod's networks (``net-info.json``)."""
        return self._pod.networks()

"""Helpers shared by the pod commands: UUID arguments and pod rows."""

from __future__ import annotations

from ..errors import RktError, UsageError


def read_uuid_file(path: str) -> str:
    """The UUID stored in a ``--uuid-file``."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise RktError(f"unable to resolve UUID from file {path}: {e.strerror}") from None


def uuid_argument(uuid: str | None, uuid_file: str) -> str:
    """Exactly one pod, given as an argument or with ``--uuid-file``."""
    if bool(uuid) == bool(uuid_file):
        raise UsageError("give exactly one pod UUID, as an argument or with --uuid-file")
    return uuid or read_uuid_file(uuid_file)


def uuid_arguments(uuids: tuple[str, ...], uuid_file: str) -> list[str]:
    """One or more pods, given as arguments or with ``--uuid-file``."""
    if bool(uuids) == bool(uuid_file):
        raise UsageError("give pod UUIDs as arguments or one with --uuid-file")
    return list(uuids) or [read_uuid_file(uuid_file)]


def format_networks(networks: list[dict]) -> str:
    """``default:ip4=172.16.28.7, other:ip4=...`` as rkt prints networks."""
    return ", ".join(f'{n.get("netName", "")}:ip4={n.get("ip", "")}' for n in networks)

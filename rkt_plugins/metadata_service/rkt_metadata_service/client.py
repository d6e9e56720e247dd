"""Registering pods with the metadata service, as ``rkt run --mds-register`` and ``rkt gc`` do.

The pod is registered under a fresh random token with its manifest, its network namespace (so
that the service listens inside it) and its directory (so that the service unregisters it once
the pod's lock is free), then each app's image manifest. ``mds-registered`` in the pod directory
(rkt's marker) tells ``rkt gc`` to unregister it again.
"""

from __future__ import annotations

import os

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.fs import write_atomic

DEFAULT_PORT = 18112
DEFAULT_SOCKET = "/run/rkt/metadata-svc.sock"
SOCKET_ENV = "RKT_METADATA_SOCKET"  # another registration socket, for both sides
REGISTERED_FILE = "mds-registered"
TOKEN_BYTES = 16  # 128 bits, as rkt
TIMEOUT = 10  # seconds for one request
MAX_REPLY = 64 << 10


def socket_path() -> str:
    """Where registrations go: ``$RKT_METADATA_SOCKET``, else ``/run/rkt/metadata-svc.sock``."""
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


class Unreachable(RktError):
    """No metadata service answers on the registration socket."""


def request(method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request on the registration socket: its status and (start of its) reply."""
    import http.client
    import socket

    path = socket_path()

    class Connection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(TIMEOUT)
            self.sock.connect(path)

    connection = Connection("localhost", timeout=TIMEOUT)
    try:
        connection.request(method, target, body=body)
        reply = connection.getresponse()
        return reply.status, reply.read(MAX_REPLY)
    except OSError as e:
        raise Unreachable(f"cannot reach the metadata service at {path}: "
                          f"{e.strerror or e}") from None
    finally:
        connection.close()


def _check(status: int, reply: bytes, what: str) -> None:
    if status != 200:
        text = reply.decode("utf-8", "replace").strip()
        raise RktError(f"the metadata service refused to {what}: {status} {text}")


def register(pod, options) -> str:
    """Register the pod (a ``PodView``) and its apps; return its metadata URL."""
    import secrets
    from urllib.parse import quote, urlencode

    query = {"token": secrets.token_hex(TOKEN_BYTES), "dir": pod.path}
    if options.netns:
        query["netns"] = options.netns
    write_atomic(pod.file(REGISTERED_FILE), b"", durable=False)
    status, reply = request("PUT", f"/pods/{pod.uuid}?{urlencode(query)}", pod.manifest_json())
    _check(status, reply, "register the pod")
    url = reply.decode("ascii", "replace")
    try:
        for app in pod.manifest().apps:
            with open(pod.file("appsinfo", app.name, "manifest"), "rb") as f:
                status, reply = request("PUT", f"/pods/{pod.uuid}/{quote(app.name)}", f.read())
            _check(status, reply, f'register app "{app.name}"')
    except BaseException:
        unregister(pod)
        raise
    return url


def unregister(pod) -> None:
    """Unregister the pod if it was registered; a service that is gone forgot it already."""
    marker = pod.file(REGISTERED_FILE)
    if not os.path.exists(marker):
        return
    try:
        status, reply = request("DELETE", f"/pods/{pod.uuid}")
    except Unreachable:
        status = 404
    if status not in (200, 404):
        _check(status, reply, "unregister the pod")
    os.unlink(marker)

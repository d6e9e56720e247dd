"""``rkt run`` under systemd socket activation: which app gets which socket.

A service manager that starts ``rkt run`` by socket activation (a ``.socket`` unit,
``systemd-socket-activate``) passes it listening sockets (``LISTEN_FDS``). As in rkt, each goes
to the app that declares its port with ``socketActivated`` in its image: same protocol, and the
socket's port is the port's host port (``--port=NAME:PORT``), else the port the image gives
(within ``count`` ports of it). A socket no app claims, or several apps do, is refused before
the pod exists: a socket left to nobody would leave its clients waiting forever.
"""

from __future__ import annotations

import functools

from ..errors import RktError, UsageError
from ..types import ActivatedSocket


@functools.cache
def passed_sockets() -> tuple:
    """The sockets passed to this process (``ListenSocket``), read once: reading takes the
    variables out of the environment."""
    from ..sys.activation import listen_sockets

    return tuple(listen_sockets())


def claim_sockets(manifest, passed) -> tuple[ActivatedSocket, ...]:
    """Each passed socket (``ListenSocket``) with the app of ``manifest`` whose port it is; an
    error for a socket that is not exactly one app's."""
    host_ports = {p.name: p.host_port for p in manifest.ports if p.host_port}
    claimed = []
    for sock in passed:
        where = f"socket activation: descriptor {sock.fd}"
        if not sock.protocol:
            raise RktError(f"{where} is not a TCP or UDP socket: rkt passes only those to apps")
        claims = []
        for ra in manifest.apps:
            for port in ra.app.ports if ra.app else ():
                first = host_ports.get(port.name, port.port)
                if (port.socket_activated and port.protocol.lower() == sock.protocol
                        and first <= sock.port < first + port.count):
                    claims.append((ra.name, port.name))
        if not claims:
            raise UsageError(f"{where} ({sock.protocol} {sock.address}) is no app's: no app "
                             f"declares a socket-activated {sock.protocol} port {sock.port}",
                             hint=f"mark the app's port socketActivated in its image, or map "
                                  f"it with --port=NAME:{sock.port}")
        if len(claims) > 1:
            apps = ", ".join(f'"{app}" (port "{port}")' for app, port in claims)
            raise UsageError(f"{where} ({sock.protocol} {sock.address}) is claimed by several "
                             f"apps: {apps}")
        app, port = claims[0]
        claimed.append(ActivatedSocket(sock.fd, app, port, sock.protocol, sock.address))
    return tuple(claimed)

"""systemd socket activation (sd_listen_fds(3)): the sockets a service manager passed.

systemd passes listening sockets as descriptors 3, 4, ... and says so in ``LISTEN_FDS`` (how
many), ``LISTEN_PID`` (for which process) and ``LISTEN_FDNAMES`` (their names, ``:``-separated).
The variables are taken out of the environment once read, so that they reach no other process
by accident, and the descriptors are made close-on-exec.
"""

from __future__ import annotations

import os
import socket
import stat

from ..errors import RktError
from ..records import dataclass

LISTEN_FDS_START = 3
VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


@dataclass(frozen=True)
class ListenSocket:
    """A socket passed by socket activation: its descriptor, name, type and local port."""

    fd: int
    name: str
    type: int  # socket.SOCK_STREAM, SOCK_DGRAM...
    port: int  # of an IP socket, else 0

    @property
    def protocol(self) -> str:
        """``tcp`` or ``udp`` for IP sockets of those types, else ""."""
        if not self.port:
            return ""
        return {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(self.type, "")


def listen_sockets(environ: dict[str, str] | None = None) -> list[ListenSocket]:
    """The sockets passed to this process (none without ``LISTEN_FDS``, or if ``LISTEN_PID``
    names another process); an error if a passed descriptor is not a socket."""
    environ = os.environ if environ is None else environ
    values = {name: environ.pop(name, None) for name in VARIABLES}
    count, pid = values["LISTEN_FDS"], values["LISTEN_PID"]
    if count is None or (pid is not None and pid != str(os.getpid())):
        return []
    if not count.isdigit():
        raise RktError(f'LISTEN_FDS="{count}" is not a number of descriptors')
    names = (values["LISTEN_FDNAMES"] or "").split(":")
    found = []
    for i in range(int(count)):
        fd = LISTEN_FDS_START + i
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            raise RktError(f"LISTEN_FDS={count}, but descriptor {fd} is not open") from None
        if not stat.S_ISSOCK(mode):
            raise RktError(f"LISTEN_FDS={count}, but descriptor {fd} is not a socket")
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        try:
            port = sock.getsockname()[1] if sock.family in (socket.AF_INET,
                                                            socket.AF_INET6) else 0
            kind = sock.type
        finally:
            sock.detach()
        found.append(ListenSocket(fd, names[i] if i < len(names) else "", kind, port))
    return found

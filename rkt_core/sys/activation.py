"""systemd socket activation (sd_listen_fds(3)): the sockets a service manager passed, and
passing them on.

systemd passes listening sockets as descriptors 3, 4, ... and says so in ``LISTEN_FDS`` (how
many), ``LISTEN_PID`` (for which process) and ``LISTEN_FDNAMES`` (their names, ``:``-separated).
The variables are taken out of the environment once read, so that they reach no other process
by accident, and the descriptors are made close-on-exec. :func:`pass_sockets` hands sockets on
the same way to a program about to be executed.
"""

from __future__ import annotations

import fcntl
import os
import stat

from ..errors import RktError
from ..records import dataclass

LISTEN_FDS_START = 3
VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


@dataclass(frozen=True)
class ListenSocket:
    """A socket passed by socket activation: its descriptor, name, type, local port and
    address."""

    fd: int
    name: str
    type: int  # socket.SOCK_STREAM, SOCK_DGRAM...
    port: int  # of an IP socket, else 0
    address: str = ""  # of an IP socket as systemd writes it: 127.0.0.1:80, [::1]:80

    @property
    def protocol(self) -> str:
        """``tcp`` or ``udp`` for IP sockets of those types, else ""."""
        if not self.port:
            return ""
        import socket

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
    import socket  # only when sockets were passed: most runs never import it

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
            port, address = _ip_address(sock)
            kind = sock.type
        finally:
            sock.detach()
        found.append(ListenSocket(fd, names[i] if i < len(names) else "", kind, port, address))
    return found


def _ip_address(sock) -> tuple[int, str]:
    """The local port and address of an IP socket; (0, "") for others."""
    import socket

    if sock.family == socket.AF_INET:
        host, port = sock.getsockname()[:2]
        return port, f"{host}:{port}"
    if sock.family == socket.AF_INET6:
        host, port = sock.getsockname()[:2]
        return port, f"[{host}]:{port}"
    return 0, ""


def pass_sockets(fds: list[int], names: list[str], env: dict[str, str],
                 keep: tuple[int, ...] = ()) -> tuple[int, ...]:
    """In a forked child about to exec: put the sockets ``fds`` on descriptors 3, 4, ...
    (inheritable) and say so in ``env``: ``LISTEN_FDS``, ``LISTEN_PID`` (this process, which
    exec keeps) and ``LISTEN_FDNAMES`` (``names``). Returns the descriptors they are on now; an
    error if one of ``keep`` (descriptors that must stay as they are) is in the way."""
    if not fds:
        return ()
    if any(":" in name for name in names) or len(names) != len(fds):
        raise RktError(f"socket activation: bad descriptor names {names!r}")
    targets = tuple(range(LISTEN_FDS_START, LISTEN_FDS_START + len(fds)))
    in_the_way = sorted(set(keep) & set(targets))
    if in_the_way:
        raise RktError(f"socket activation: descriptor {in_the_way[0]} is needed for "
                       "something else")
    # Copies above every descriptor involved first, so that no move overwrites a socket that
    # is still to be moved.
    above = max(*fds, *keep, targets[-1]) + 1
    copies = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, above) for fd in fds]
    for copy, target in zip(copies, targets):
        os.dup2(copy, target)
        os.close(copy)
    env.update(LISTEN_FDS=str(len(fds)), LISTEN_PID=str(os.getpid()),
               LISTEN_FDNAMES=":".join(names))
    return targets

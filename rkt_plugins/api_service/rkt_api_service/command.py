"""``rkt api-service [--listen=ADDR]``: the v1alpha gRPC API, until SIGTERM or SIGINT.

It listens on ``--listen`` (default ``localhost:15441``), or on the sockets systemd passes
(socket activation, ``LISTEN_FDS``; then ``--listen`` is an error, as in rkt). gRPC cannot serve
a socket it did not open, so an activated socket's connections are relayed to the server
listening on a unix socket in a private directory (:mod:`.relay`). The service only reads:
a member of group ``rkt`` runs it as well as root.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

import click

from rkt_core.plugin_api import RktError, UsageError
from rkt_core.plugin_api.cli import RktCommand, context

DEFAULT_LISTEN = "localhost:15441"
STOP_GRACE_SECONDS = 1.0


@click.command("api-service", cls=RktCommand)
@click.option("--listen", default="", metavar="ADDR",
              help=f"address to listen for client API requests [default: {DEFAULT_LISTEN}]")
def api_service(listen: str) -> None:
    """Run the API service (gRPC, rkt's v1alpha API), read-only."""
    ctx = context()
    sockets = activated_sockets()
    if sockets and listen:
        for sock in sockets:
            sock.close()
        raise UsageError("started under systemd socket activation (LISTEN_FDS), but --listen "
                         "was passed")
    serve(ctx, listen or DEFAULT_LISTEN, sockets)


def activated_sockets() -> list[socket.socket]:
    """The listening stream sockets systemd passed, if any."""
    from rkt_core.plugin_api.linux import activation

    passed = activation.listen_sockets()
    sockets = [socket.socket(fileno=p.fd) for p in passed]
    for sock in sockets:
        if sock.type != socket.SOCK_STREAM:
            for other in sockets:
                other.close()
            raise RktError("socket activation: the API service needs stream sockets "
                           "(ListenStream=)")
    return sockets


def serve(ctx, listen: str, sockets: list) -> None:
    """Serve until SIGTERM or SIGINT: on ``sockets`` if any, else on ``listen``."""
    from . import relay
    from .events import EventLog
    from .server import PublicAPI, make_server

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print("API service starting...", file=sys.stderr)
    events = EventLog(ctx)
    events.start()
    server = make_server(PublicAPI(ctx, events))
    relays = []
    try:
        if sockets:
            private = relay.private_socket()
            if not server.add_insecure_port(f"unix:{private.path}"):
                raise RktError(f"could not listen on {private.path}")
            relays = [relay.Relay(sock, private.path) for sock in sockets]
            where = ", ".join(r.name for r in relays)
        else:
            port = server.add_insecure_port(listen)
            if not port:
                raise RktError(f'could not listen on "{listen}"')
            host = listen.rpartition(":")[0]
            where = f"{host}:{port}"
        server.start()
        for r in relays:
            r.start()
        print(f"API service listening on {where}", file=sys.stderr, flush=True)
        stop.wait()
        print("API service exiting...", file=sys.stderr)
    finally:
        for r in relays:
            r.close()
        events.stop()
        server.stop(STOP_GRACE_SECONDS).wait()
        if sockets:
            private.remove()

"""Serving a socket that systemd passed: gRPC listens only on sockets it opens itself, so each
connection accepted on the activated socket is relayed, byte for byte, to the server's own
unix socket in a directory only this user can enter."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading

CHUNK = 65536


class PrivateSocket:
    """A path for a unix socket in a fresh ``0700`` directory."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="rkt-api-")
        self.path = os.path.join(self.directory, "grpc.sock")

    def remove(self) -> None:
        """Remove the directory and the socket."""
        shutil.rmtree(self.directory, ignore_errors=True)


def private_socket() -> PrivateSocket:
    """A new private socket path."""
    return PrivateSocket()


class Relay:
    """Accepts connections on a listening socket and relays each to ``target``."""

    def __init__(self, listening: socket.socket, target: str):
        self.listening = listening
        self.target = target
        self.name = _name(listening)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name=f"relay {self.name}",
                                        daemon=True)

    def start(self) -> None:
        """Start accepting."""
        self._thread.start()

    def close(self) -> None:
        """Stop accepting (connections being relayed end with the server)."""
        self._closed = True
        try:
            self.listening.shutdown(socket.SHUT_RDWR)  # wakes accept() up
        except OSError:
            pass
        self.listening.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listening.accept()
            except OSError:
                if self._closed:
                    return
                continue
            try:
                server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                server.connect(self.target)
            except OSError:
                client.close()
                continue
            _Connection(client, server).start()


class _Connection:
    """One relayed connection: a thread per direction; both sockets are closed once both
    directions have ended."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.sockets = (client, server)
        self._running = 2
        self._lock = threading.Lock()

    def start(self) -> None:
        client, server = self.sockets
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            self._running -= 1
            if self._running:
                return
        for sock in self.sockets:
            sock.close()


def _name(sock: socket.socket) -> str:
    address = sock.getsockname()
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}" if sock.family == socket.AF_INET else \
            f"[{address[0]}]:{address[1]}"
    return address if isinstance(address, str) else repr(address)

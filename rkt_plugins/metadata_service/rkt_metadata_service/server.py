"""The metadata service process (``rkt metadata-service``): its sockets and how pods reach it.

- **Registrations** arrive on a unix socket only root can use (``/run/rkt/metadata-svc.sock``,
  mode 0600, the peer's uid checked too), or on the socket systemd passes (``LISTEN_FDS``).
- **Apps on the host's network** reach the service on the host's loopback,
  ``127.0.0.1:<port>`` (default 18112): it never listens on an outside address.
- **Apps on a contained network** reach it on their own loopback: when a pod is registered
  with its network namespace, the service opens a listening socket *inside* that namespace
  (``127.0.0.1:<port>`` there) and serves it like the others. That works on every kind of
  network (bridged, ptp, macvlan, none), no other pod or host can connect to it, and only that
  pod's token is accepted on it.

So every pod's ``AC_METADATA_URL`` is ``http://127.0.0.1:<port>/<token>``. A pod registered
with its directory is unregistered by itself once the pod's lock is free, i.e. once its last
process is gone, which also closes the listener that kept its namespace alive; ``rkt gc``
unregisters it again in case the service missed it.

One thread waits for connections on every listener; each connection gets a thread of its own,
at most :data:`MAX_CONNECTIONS` at a time per listener, so one pod cannot starve the others.
"""

from __future__ import annotations

import errno
import fcntl
import os
import selectors
import signal
import socket
import stat
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.linux import ns

from .api import HttpError, MetadataHandler, RegistrationHandler
from .registry import HOST_SCOPE, Registry, RegisteredPod, Signer

LOOPBACK = "127.0.0.1"
MAX_CONNECTIONS = 32  # being served at once, per listener
LISTEN_FDS_START = 3  # the first descriptor systemd passes (sd_listen_fds)


def log(message: str) -> None:
    """One line on the service's stderr."""
    print(f"metadata-service: {message}", file=sys.stderr, flush=True)


@dataclass(eq=False)
class Listener:
    """A listening socket, the handler of its connections, and the scope of the requests it
    takes (the pod whose namespace it is in, or the host)."""

    sock: socket.socket
    handler: type
    service: "Service"
    scope: str = HOST_SCOPE
    name: str = "host"
    slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_CONNECTIONS))

    def log(self, message: str) -> None:
        """Log a request served here."""
        log(f"{self.name}: {message}")


class Service:
    """The registered pods, their listeners and the loop that accepts connections."""

    def __init__(self, port: int, signer: Signer | None = None, registrar_uid: int = 0):
        self.port = port
        self.registrar_uid = registrar_uid  # who may register pods (root)
        self.registry = Registry()
        self.signer = signer or Signer()
        self._selector = selectors.DefaultSelector()
        self._wake, self._waker = socket.socketpair()
        self._wake.setblocking(False)
        self._selector.register(self._wake, selectors.EVENT_READ, None)
        self._stopping = False

    def url(self, token: str) -> str:
        """A pod's ``AC_METADATA_URL``."""
        return f"http://{LOOPBACK}:{self.port}/{token}"

    # --- listeners ----------------------------------------------------------------------------

    def add_listener(self, sock: socket.socket, handler: type, scope: str = HOST_SCOPE,
                     name: str = "host") -> Listener:
        """Serve connections to the listening socket ``sock`` with ``handler``."""
        sock.setblocking(False)
        listener = Listener(sock, handler, self, scope, name)
        self._selector.register(sock, selectors.EVENT_READ, listener)
        return listener

    def drop_listener(self, listener: Listener) -> None:
        """Stop listening on ``listener`` (connections being served finish)."""
        try:
            self._selector.unregister(listener.sock)
        except (KeyError, ValueError):
            pass
        listener.sock.close()

    # --- pods ---------------------------------------------------------------------------------

    def register(self, pod: RegisteredPod, netns: str = "", pod_dir: str = "") -> str:
        """Register ``pod`` (with a listener in the network namespace ``netns`` and watching
        the pod directory ``pod_dir``, if given); return its metadata URL. Raises
        :class:`HttpError`."""
        sock = listen_in_netns(netns, self.port) if netns else None
        try:
            watched = _open_pod_dir(pod_dir) if pod_dir else None
            if sock is not None:
                pod.scope = pod.uuid
            try:
                replaced = self.registry.add(pod)
            except ValueError as e:
                if watched is not None:
                    os.close(watched)
                raise HttpError(HTTPStatus.CONFLICT, str(e)) from None
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        if replaced is not None:
            self._release(replaced)
        if sock is not None:
            pod.listener = self.add_listener(sock, MetadataHandler, pod.uuid, f"pod {pod.uuid}")
        if watched is not None:
            threading.Thread(target=self._unregister_when_gone, args=(pod, watched),
                             daemon=True).start()
        log(f"registered pod {pod.uuid}"
            + (" (listening in its network namespace)" if sock is not None else ""))
        return self.url(pod.token)

    def unregister(self, uuid: str, only: RegisteredPod | None = None) -> bool:
        """Forget the pod ``uuid`` (only if its registration is ``only``, when given) and
        close its listener; returns whether it was registered."""
        pod = self.registry.remove(uuid, only)
        if pod is None:
            return False
        self._release(pod)
        log(f"unregistered pod {uuid}")
        return True

    def _release(self, pod: RegisteredPod) -> None:
        if pod.listener is not None:
            self.drop_listener(pod.listener)

    def _unregister_when_gone(self, pod: RegisteredPod, watched: int) -> None:
        """Wait until no process holds the pod's lock, then unregister it."""
        try:
            fcntl.flock(watched, fcntl.LOCK_SH)
            fcntl.flock(watched, fcntl.LOCK_UN)
        finally:
            os.close(watched)
        self.unregister(pod.uuid, only=pod)

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        """Accept connections until :meth:`stop`."""
        while not self._stopping:
            for key, _events in self._selector.select():
                if key.data is None:
                    _drain(self._wake)
                    continue
                self._accept(key.data)

    def _accept(self, listener: Listener) -> None:
        try:
            conn, address = listener.sock.accept()
        except OSError:  # nobody there any more, or the listener was dropped meanwhile
            return
        if not listener.slots.acquire(blocking=False):
            conn.close()  # too many at once from there
            return
        conn.setblocking(True)
        threading.Thread(target=self._serve, args=(listener, conn, address),
                         daemon=True).start()

    @staticmethod
    def _serve(listener: Listener, conn: socket.socket, address) -> None:
        try:
            listener.handler(conn, address, listener)
        except OSError:
            pass  # the client went away
        except Exception as e:  # noqa: BLE001 - one request must not take the service down
            listener.log(f"request failed: {type(e).__name__}: {e}")
        finally:
            conn.close()
            listener.slots.release()

    def stop(self) -> None:
        """Make :meth:`run` return (safe from a signal handler or another thread)."""
        self._stopping = True
        try:
            self._waker.send(b"x")
        except OSError:
            pass


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(64):
            pass
    except BlockingIOError:
        pass


def _open_pod_dir(path: str) -> int:
    """A descriptor of a pod directory, to wait on its lock."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"cannot open the pod directory {path}: "
                                                f"{e.strerror}") from None


def listen_in_netns(path: str, port: int) -> socket.socket:
    """A socket listening on ``127.0.0.1:port`` inside the network namespace pinned at
    ``path``. A thread of its own joins the namespace (setns(2) moves only the calling thread),
    creates the socket, which stays in that namespace, and ends."""
    result: list = []

    def listen() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ns.setns(fd, "net")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((LOOPBACK, port))
                sock.listen(MAX_CONNECTIONS)
            except BaseException:
                sock.close()
                raise
            result.append(sock)
        except OSError as e:
            result.append(e)

    thread = threading.Thread(target=listen, name="netns-listener")
    thread.start()
    thread.join()
    if isinstance(result[0], OSError):
        raise HttpError(HTTPStatus.BAD_REQUEST, f"cannot listen in the network namespace "
                                                f"{path}: {result[0].strerror or result[0]}")
    return result[0]


# --- the process ------------------------------------------------------------------------------


def registration_socket(path: str) -> tuple[socket.socket, bool]:
    """The socket registrations arrive on: the one systemd passed (``LISTEN_FDS``), else a
    new one at ``path`` that only root may use. Returns it and whether it is ours to remove."""
    if os.environ.get("LISTEN_FDS"):
        return _activated_socket(), False
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)  # born 0600: no window in which others may connect
    try:
        sock.bind(path)
    except OSError as e:
        sock.close()
        raise RktError(f"cannot listen on {path}: {e.strerror}") from None
    finally:
        os.umask(umask)
    sock.listen(MAX_CONNECTIONS)
    return sock, True


def _activated_socket() -> socket.socket:
    """The unix stream socket systemd passed (sd_listen_fds(3)); the variables are removed so
    that nothing started from here takes it for its own."""
    count, pid = os.environ.pop("LISTEN_FDS"), os.environ.pop("LISTEN_PID", "")
    os.environ.pop("LISTEN_FDNAMES", None)
    if pid and pid != str(os.getpid()):
        raise RktError(f"LISTEN_PID={pid} names another process; not taking its sockets")
    if not count.isdigit() or int(count) < 1:
        raise RktError(f"LISTEN_FDS={count}: expected the registration socket")
    try:
        sock = socket.socket(fileno=LISTEN_FDS_START)
    except OSError as e:
        raise RktError(f"LISTEN_FDS: descriptor {LISTEN_FDS_START} is not a socket: "
                       f"{e.strerror}") from None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise RktError("LISTEN_FDS: the registration socket must be a unix stream socket")
    sock.set_inheritable(False)
    return sock


def _remove_stale_socket(path: str) -> None:
    """Remove a socket left at ``path`` by a service that is gone; refuse to take over from one
    that still answers, or to remove anything but a socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RktError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno != errno.ECONNREFUSED:
            raise RktError(f"cannot check {path}: {e.strerror}") from None
        os.unlink(path)
        return
    finally:
        probe.close()
    raise RktError(f"another metadata service is listening on {path}")


def public_socket(port: int) -> socket.socket:
    """The apps' listener on the host: ``127.0.0.1:port``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        sock.listen(MAX_CONNECTIONS)
    except OSError as e:
        sock.close()
        raise RktError(f"cannot listen on {LOOPBACK}:{port}: {e.strerror}") from None
    return sock


def serve(port: int, socket_path: str) -> int:
    """Run the service until SIGTERM or SIGINT; returns the exit status."""
    registration, owned = registration_socket(socket_path)
    try:
        public = public_socket(port)
    except RktError:
        registration.close()
        if owned:
            os.unlink(socket_path)
        raise
    inode = os.lstat(socket_path).st_ino if owned else 0
    service = Service(port)
    service.add_listener(registration, RegistrationHandler, name="registration")
    service.add_listener(public, MetadataHandler)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: service.stop())
    where = socket_path if owned else "the socket systemd passed"
    log(f"running: apps on http://{LOOPBACK}:{port}, registrations on {where}")
    try:
        service.run()
    finally:
        if owned:
            _unlink_if_ours(socket_path, inode)
        registration.close()
    log("exiting")
    return 0



def _unlink_if_ours(path: str, inode: int) -> None:
    """Remove the socket file unless another service replaced it meanwhile."""
    try:
        if os.lstat(path).st_ino == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass

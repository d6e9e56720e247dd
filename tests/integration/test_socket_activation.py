"""``rkt run`` started by systemd socket activation (``systemd-socket-activate``, which opens a
listening socket on loopback and starts ``rkt run`` on the first connection) passes the socket
to the app whose port is marked ``socketActivated``: the connection reaches the app, with the
fly flavor and with nspawn on the host's network and on a contained one. A socket no app claims
is refused before any pod exists.

The app is the host's Python (its ``/usr`` a read-only volume in a busybox image): busybox has
no program that accepts on an inherited socket.
"""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from rkt_core.testing.aci import build_aci, busybox_rootfs, image_manifest
from rkt_core.testing.runner import RKT_TIMEOUT
from rkt_core.testing.wait import wait_for

pytestmark = pytest.mark.root

# Accepts one connection on each socket passed, and answers it with what it was told about
# that socket (the name of its port) and about the others.
SERVE = """
import os, select, socket
names = os.environ["LISTEN_FDNAMES"].split(":")
count = int(os.environ["LISTEN_FDS"])
sockets = {fd: socket.socket(fileno=fd) for fd in range(3, 3 + count)}
while sockets:
    for fd in select.select(list(sockets), [], [])[0]:
        connection, _ = sockets.pop(fd).accept()
        connection.sendall(("port=%s fds=%d own-pid=%s app=%s\\n" % (
            names[fd - 3], count, os.environ["LISTEN_PID"] == str(os.getpid()),
            os.environ["AC_APP_NAME"])).encode())
        connection.close()
"""
USR = ["--volume=usr,kind=host,source=/usr,readOnly=true"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    """busybox, with /lib and /lib64 where the host's /usr (a volume) has them."""
    root = busybox_rootfs(tmp_path_factory.mktemp("rootfs") / "rootfs")
    for name in ("lib", "lib64"):
        (root / name).symlink_to(f"usr/{name}")
    return root


def server_image(path, rootfs, ports: list[dict]):
    """An app running SERVE with the host's Python, declaring ``ports``."""
    manifest = image_manifest("example.com/server", exec=["/usr/bin/python3", "-c", SERVE])
    manifest["app"]["ports"] = ports
    manifest["app"]["mountPoints"] = [{"name": "usr", "path": "/usr", "readOnly": True}]
    return build_aci(path, manifest, rootfs)


def activated(rkt, address: str, *args) -> subprocess.Popen:
    """``rkt run ARGS`` as systemd-socket-activate starts it: on the first connection to
    ``address``, with the socket (systemd-socket-activate passes on no other environment)."""
    env = [f"{k}={v}" for k, v in rkt.env.items()]
    return subprocess.Popen(["systemd-socket-activate", f"--listen={address}", "env", *env,
                             *rkt.argv("run", *args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ask(port: int) -> str:
    """What the app answers on a connection to 127.0.0.1:PORT ("" if the socket closed), once
    something listens there."""
    def connection():
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=RKT_TIMEOUT)
        except ConnectionRefusedError:
            return None

    with wait_for(connection, what=f"a listener on port {port}") as conn:
        try:
            return conn.makefile().readline()
        except ConnectionResetError:
            return ""


@pytest.mark.parametrize("flavor,net", [("fly", "host"), ("nspawn", "host"),
                                        ("nspawn", "default")])
def test_the_app_gets_the_socket_and_answers(rkt, rootfs, tmp_path, flavor, net):
    port = free_port()
    image = server_image(tmp_path / "server.aci", rootfs,
                         [{"name": "echo", "protocol": "tcp", "port": port,
                           "socketActivated": True}])
    run = activated(rkt, f"127.0.0.1:{port}", f"--stage1-name={flavor}", f"--net={net}", *USR,
                    image)
    try:
        assert ask(port) == "port=echo fds=1 own-pid=True app=server\n"
        _, err = run.communicate(timeout=RKT_TIMEOUT)
        assert run.returncode == 0, err
    finally:
        run.kill()
        run.wait()
    (uuid,) = rkt.pods()
    assert rkt.status(uuid)["app-server"] == "0"
    rkt("gc", "--grace-period=0s", check=0)


@pytest.mark.parametrize("flavor", ["fly", "nspawn"])
def test_each_socket_goes_to_the_port_it_is(rkt, rootfs, tmp_path, flavor):
    """Two sockets, two ports of an app (nspawn: one socket unit each, in the pod)."""
    first, second = free_port(), free_port()
    image = server_image(tmp_path / "server.aci", rootfs, [
        {"name": "one", "protocol": "tcp", "port": first, "socketActivated": True},
        {"name": "two", "protocol": "tcp", "port": second, "socketActivated": True}])
    env = [f"{k}={v}" for k, v in rkt.env.items()]
    run = subprocess.Popen(["systemd-socket-activate", f"--listen=127.0.0.1:{first}",
                            f"--listen=127.0.0.1:{second}", "env", *env,
                            *rkt.argv("run", f"--stage1-name={flavor}", "--net=host", *USR, image)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert ask(second) == "port=two fds=2 own-pid=True app=server\n"
        assert ask(first) == "port=one fds=2 own-pid=True app=server\n"
        _, err = run.communicate(timeout=RKT_TIMEOUT)
        assert run.returncode == 0, err
    finally:
        run.kill()
        run.wait()


@pytest.mark.parametrize("ports,message", [
    ([], "is no app's: no app declares a socket-activated tcp port"),
    ([{"name": "echo", "protocol": "tcp", "port": 1, "socketActivated": True}],
     "is no app's"),
    ([{"name": "echo", "protocol": "udp", "port": "PORT", "socketActivated": True}],
     "is no app's"),
    ([{"name": "echo", "protocol": "tcp", "port": "PORT"}], "is no app's"),
])
def test_a_socket_no_app_claims_is_refused_before_any_pod(rkt, rootfs, tmp_path, ports,
                                                          message):
    port = free_port()
    ports = [{**p, "port": port if p["port"] == "PORT" else p["port"]} for p in ports]
    image = server_image(tmp_path / "server.aci", rootfs, ports)
    run = activated(rkt, f"127.0.0.1:{port}", "--stage1-name=fly", *USR, image)
    try:
        assert ask(port) == ""  # rkt exits, and the socket closes with it
        _, err = run.communicate(timeout=RKT_TIMEOUT)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 254
    assert f"rkt: socket activation: descriptor 3 (tcp 127.0.0.1:{port}) {message}" in err
    assert rkt.pods() == []
    assert json.loads(rkt("list", "--format=json", check=0).stdout or "[]") == []


def test_a_flavor_of_interface_1_refuses_sockets_before_any_pod(rkt, rootfs, tmp_path):
    """kvm (stage1 interface 1) cannot hand host sockets to apps in its VM: refused clearly
    rather than leaving the socket's clients waiting."""
    port = free_port()
    image = server_image(tmp_path / "server.aci", rootfs,
                         [{"name": "echo", "protocol": "tcp", "port": port,
                           "socketActivated": True}])
    run = activated(rkt, f"127.0.0.1:{port}", "--stage1-name=kvm", "--net=none", *USR, image)
    try:
        assert ask(port) == ""
        _, err = run.communicate(timeout=RKT_TIMEOUT)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 254
    assert ("rkt: the kvm flavor (stage1 interface version 1) does not support socket "
            "activation (LISTEN_FDS) (version 2 and later)") in err
    assert rkt.pods() == []

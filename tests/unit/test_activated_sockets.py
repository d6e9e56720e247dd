"""Socket activation: which app's port a passed socket is (stage0), and handing sockets on to
a program as systemd does (in a forked child, with real sockets on loopback)."""

import json
import os
import socket

import pytest

from rkt_core.appc.pod_manifest import PodManifest
from rkt_core.errors import RktError, UsageError
from rkt_core.stage0.activation import claim_sockets
from rkt_core.sys.activation import ListenSocket, listen_sockets, pass_sockets
from rkt_core.types import ActivatedSocket


def _manifest(apps: dict[str, list[dict]], exposed=()) -> PodManifest:
    return PodManifest.from_json({
        "acVersion": "0.7.4", "acKind": "PodManifest", "ports": list(exposed),
        "apps": [{"name": name, "image": {"name": "example.com/x", "id": "sha512-" + "a" * 64},
                  "app": {"exec": ["/x"], "user": "0", "group": "0", "ports": ports}}
                 for name, ports in apps.items()]})


def _tcp(fd: int, port: int) -> ListenSocket:
    return ListenSocket(fd, "", socket.SOCK_STREAM, port, f"127.0.0.1:{port}")


def _port(name, port, protocol="tcp", count=1, activated=True):
    return {"name": name, "protocol": protocol, "port": port, "count": count,
            "socketActivated": activated}


def test_each_socket_goes_to_the_socket_activated_port_it_listens_on():
    manifest = _manifest({"web": [_port("http", 80), _port("dns", 53, "UDP")],
                          "other": [_port("ssh", 22)]})
    dns = ListenSocket(5, "", socket.SOCK_DGRAM, 53, "[::1]:53")
    assert claim_sockets(manifest, [_tcp(3, 22), _tcp(4, 80), dns]) == (
        ActivatedSocket(3, "other", "ssh", "tcp", "127.0.0.1:22"),
        ActivatedSocket(4, "web", "http", "tcp", "127.0.0.1:80"),
        ActivatedSocket(5, "web", "dns", "udp", "[::1]:53"))
    assert claim_sockets(manifest, []) == ()


def test_a_port_range_and_a_host_port_claim_their_sockets():
    manifest = _manifest({"web": [_port("range", 8000, count=3), _port("http", 80)]},
                         exposed=[{"name": "http", "hostPort": 9090}])
    claimed = claim_sockets(manifest, [_tcp(3, 8002), _tcp(4, 9090)])
    assert [(s.app, s.port) for s in claimed] == [("web", "range"), ("web", "http")]
    with pytest.raises(UsageError, match="is no app's"):
        claim_sockets(manifest, [_tcp(3, 8003)])
    with pytest.raises(UsageError, match="is no app's"):  # port 80 is mapped to 9090
        claim_sockets(manifest, [_tcp(3, 80)])


@pytest.mark.parametrize("port", [_port("http", 80, activated=False), _port("http", 81),
                                  _port("http", 80, "udp")])
def test_a_socket_no_port_claims_is_refused(port):
    with pytest.raises(UsageError, match=r"descriptor 3 \(tcp 127.0.0.1:80\) is no app's"):
        claim_sockets(_manifest({"web": [port]}), [_tcp(3, 80)])


def test_a_socket_two_apps_claim_is_refused():
    manifest = _manifest({"a": [_port("http", 80)], "b": [_port("web", 80)]})
    with pytest.raises(UsageError, match='claimed by several apps: "a" .port "http"., "b"'):
        claim_sockets(manifest, [_tcp(3, 80)])


def test_a_socket_that_is_not_tcp_or_udp_is_refused():
    unix = ListenSocket(3, "", socket.SOCK_STREAM, 0)
    with pytest.raises(RktError, match="not a TCP or UDP socket"):
        claim_sockets(_manifest({"web": [_port("http", 80)]}), [unix])


def _in_child(body) -> dict:
    """What ``body()`` returns (JSON), run in a forked child, whose descriptors it may move."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            result = {"ok": body()}
        except Exception as e:  # noqa: BLE001 - reported to the parent
            result = {"error": f"{type(e).__name__}: {e}"}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        result = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return result


def _listening(kind=socket.SOCK_STREAM) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


def test_sockets_are_handed_on_on_descriptors_3_and_up():
    def body():
        # the sockets start above 3 and 4, in the reverse order: moving one must not
        # overwrite the other
        first, second = _listening(), _listening(socket.SOCK_DGRAM)
        high = [os.dup2(second.fileno(), 40), os.dup2(first.fileno(), 41)]
        ports = [second.getsockname()[1], first.getsockname()[1]]
        env = {}
        placed = pass_sockets(high, ["dns", "http"], env, keep=(7,))
        inheritable = [os.get_inheritable(fd) for fd in placed]
        found = listen_sockets(dict(env))
        return {"placed": list(placed), "env": env, "pid": os.getpid(), "ports": ports,
                "inheritable": inheritable,
                "found": [[s.fd, s.name, s.protocol, s.port, s.address] for s in found]}

    result = _in_child(body)["ok"]
    dns, http = result["ports"]
    assert result["placed"] == [3, 4]
    assert result["inheritable"] == [True, True]
    assert result["env"] == {"LISTEN_FDS": "2", "LISTEN_PID": str(result["pid"]),
                             "LISTEN_FDNAMES": "dns:http"}
    assert result["found"] == [[3, "dns", "udp", dns, f"127.0.0.1:{dns}"],
                               [4, "http", "tcp", http, f"127.0.0.1:{http}"]]


def test_handing_on_refuses_to_overwrite_a_descriptor_it_must_keep():
    def body():
        sock = _listening()
        return pass_sockets([sock.fileno()], ["http"], {}, keep=(3,))

    assert _in_child(body) == {"error": "RktError: socket activation: descriptor 3 is "
                                        "needed for something else"}


def test_no_sockets_change_nothing():
    env = {}
    assert pass_sockets([], [], env) == ()
    assert env == {}

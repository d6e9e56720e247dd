"""Contained networking as root, with Debian's real CNI plugins (/usr/lib/cni) and iptables.

Pods run through the real ``rkt`` command with every installed flavor that has contained
networking, and with the test-only ``nettest`` flavor (apps on the host's filesystem, in the
pod's network namespace). Traffic goes only to the host's loopback and to addresses inside the
namespaces these tests create. Every test is wrapped in a leak check (the ``rkt`` fixture): no
network namespace, link, iptables rule, host-local lease or process of its pods may be left
once they exited, nor after ``rkt gc``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from netcheck import contained_flavors
from rkt_core.testing.aci import app_image
from rkt_core.testing.wait import wait_for
from rkt_net_cni import portfwd

pytestmark = pytest.mark.root

FLAVORS = contained_flavors()
# (cd, not httpd's -h: rkt's app argument parser takes a -h anywhere for --help)
SERVE = ["--exec", "/bin/busybox", "--", "sh", "-c", "cd /bin && exec httpd -f -p 80"]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """busybox, declaring port ``http`` (80/tcp)."""
    return app_image(tmp_path_factory.mktemp("img") / "bb.aci",
                          ports=[{"name": "http", "protocol": "tcp", "port": 80}])


def _networks(rkt, uuid) -> str:
    return wait_for(lambda: rkt.status(uuid).get("networks"), what="the pod's networks")


def _ip(networks: str, name: str = "default") -> str:
    entries = dict(n.strip().split(":ip4=") for n in networks.split(","))
    return entries[name]


def _stop(rkt, started, uuid):
    rkt("stop", uuid, check=0)
    started.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_ip() -> str:
    """An address of the default network no lease holds now (others may run pods too)."""
    leases = Path("/var/lib/cni/networks/default")
    taken = set(os.listdir(leases)) if leases.is_dir() else set()
    return next(ip for ip in (f"172.16.28.{n}" for n in range(200, 254)) if ip not in taken)


def _fetch(url: str):
    def get():
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status == 200 and len(reply.read()) > 100000
        except OSError:
            return False
    return get


def _run_output(rkt, *args) -> str:
    """Run a one-shot pod; return its output."""
    done = rkt("run", *args, check=0)
    return done.stdout


@pytest.mark.parametrize("flavor", FLAVORS)
def test_two_pods_on_the_default_network_reach_each_other(rkt, image, flavor):
    server = rkt.start(f"--stage1-name={flavor}", image, *SERVE)
    uuid = server.uuid
    ip = _ip(_networks(rkt, uuid))
    assert ip.startswith("172.16.28.")
    listing = rkt("list", "--no-legend", check=0).stdout
    assert f"default:ip4={ip}" in listing
    assert wait_for(_fetch(f"http://{ip}/busybox"), what="the server pod")  # from the host
    client = rkt("run", f"--stage1-name={flavor}", image, "--exec", "/bin/busybox", "--", "sh",
                 "-c", f"wget -q -O /dev/null http://{ip}/busybox && echo reached")
    assert client.returncode == 0 and "reached" in client.stdout, client.stderr
    # the client pod got an address of its own, and released it when it ended
    client_uuid = next(u for u in rkt.note_pods() if u != uuid)
    client_ip = _ip(rkt.status(client_uuid)["networks"])
    assert client_ip.startswith("172.16.28.") and client_ip != ip
    assert rkt.leaks()["leases"] == [f"/var/lib/cni/networks/default/{ip}"]
    _stop(rkt, server, uuid)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_forwarded_port_is_reached_from_the_hosts_loopback(rkt, image, flavor):
    port = _free_port()
    server = rkt.start(f"--stage1-name={flavor}", f"--port=http:{port}", image, *SERVE)
    uuid = server.uuid
    _networks(rkt, uuid)
    assert wait_for(_fetch(f"http://127.0.0.1:{port}/busybox"), what="the forwarded port")
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert portfwd.chains(uuid)[0] in nat and f"--dport {port}" in nat
    # From the outside: another pod plays the other host and connects to the host's address
    # on its link (its gateway), which the DNAT rule in PREROUTING sends to the server.
    client = rkt("run", f"--stage1-name={flavor}", image, "--exec", "/bin/busybox", "--", "sh",
                 "-c", "gw=$(ip route | awk '/^default/ {print $3}'); "
                       f"wget -q -O /dev/null http://$gw:{port}/busybox && echo reached $gw")
    assert client.returncode == 0 and "reached 172.16.28." in client.stdout, client.stderr
    _stop(rkt, server, uuid)


def test_forwarded_port_on_one_host_address(rkt, image):
    port = _free_port()
    server = rkt.start("--stage1-name=nettest", f"--port=http:127.0.0.1:{port}", image,
                       *SERVE)
    uuid = server.uuid
    _networks(rkt, uuid)
    assert wait_for(_fetch(f"http://127.0.0.1:{port}/busybox"), what="the forwarded port")
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert f"-d 127.0.0.1/32 -p tcp -m tcp --dport {port}" in nat
    _stop(rkt, server, uuid)


def test_a_host_port_is_forwarded_to_one_pod_only(rkt, image):
    port = _free_port()
    server = rkt.start("--stage1-name=nettest", f"--port=http:{port}", image, *SERVE)
    uuid = server.uuid
    _networks(rkt, uuid)
    done = rkt("run", "--stage1-name=nettest", f"--port=http:{port}", image)
    assert done.returncode == 254
    assert f"host port tcp/{port} is already forwarded to another pod" in done.stderr
    assert wait_for(_fetch(f"http://127.0.0.1:{port}/busybox"), what="the first pod")
    _stop(rkt, server, uuid)


def test_port_needs_a_contained_network_and_a_declared_name(rkt, image):
    done = rkt("run", "--stage1-name=nettest", "--net=none", "--port=http:18932", image)
    assert done.returncode == 254 and "--port does not work with --net=none" in done.stderr
    done = rkt("run", "--stage1-name=nettest", "--port=nope:18932", image)
    assert done.returncode == 254 and 'port name "nope" is not declared' in done.stderr
    assert rkt.note_pods() == []  # refused before any pod existed


@pytest.mark.parametrize("flavor", FLAVORS)
def test_net_none_has_only_loopback(rkt, image, flavor):
    out = _run_output(rkt, f"--stage1-name={flavor}", "--net=none", image, "--exec",
                      "/bin/busybox", "--", "ip", "-o", "link")
    names = [line.split(":")[1].strip() for line in out.splitlines()]
    assert names == ["lo"] and "UP" in out


def test_cni_args_dns_and_interfaces_in_order(rkt, image, tmp_path):
    resolv = tmp_path / "cni-resolv.conf"
    resolv.write_text("nameserver 10.99.0.53\nsearch cni.example\n")
    leases = tmp_path / "leases"
    rkt.lease_dirs.append(leases)
    (rkt.local_config / "net.d" / "10-first.conf").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "first", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "10.99.7.0/24", "resolvConf": str(resolv),
                 "dataDir": str(leases)}}))
    ip = _free_ip()
    out = _run_output(rkt, "--stage1-name=nettest", f"--net=default:IP={ip},first",
                      image, "--exec", "/bin/busybox", "--", "ip", "-o", "-4", "addr")
    assert "eth0    inet 10.99.7." in out
    assert f"eth1    inet {ip}/24" in out
    uuid = rkt.note_pods()[0]
    status = rkt.status(uuid)
    assert "first:ip4=10.99.7." in status["networks"]
    assert f"default:ip4={ip}" in status["networks"]
    pod = rkt.data_dir / "pods" / "run" / uuid
    info = json.loads((pod / "net-info.json").read_text())
    assert [(n["netName"], n["ifName"], n["args"]) for n in info] == [
        ("first", "eth0", ""), ("default", "eth1", f"IP={ip}")]
    assert info[1]["ip"] == ip and info[1]["mask"] == "255.255.255.0"
    assert info[1]["pluginPath"] == "/usr/lib/cni/ptp"
    options = json.loads((pod / "nettest-options.json").read_text())
    assert (pod / "resolv.conf").read_text() == "nameserver 10.99.0.53\nsearch cni.example\n"
    assert options["resolv_conf"] == str(pod / "resolv.conf")
    assert options["hosts_fallback"] == str(pod / "hosts") and options["hosts_file"] == ""
    assert options["netns"] == f"/run/netns/rkt-{uuid}"
    # released at exit: no namespace, no records left
    assert not (pod / "netns").exists() and not list((pod / "net").iterdir())


def test_net_all_is_every_user_network_and_default(rkt, image, tmp_path):
    leases = tmp_path / "leases"
    rkt.lease_dirs.append(leases)
    # results of older spec versions too: 0.2.0 (ip4), 0.3.1 (ips with a version)
    for name, subnet, version in (("zeta", "10.97.1.0/24", "0.3.1"),
                                  ("alpha", "10.97.2.0/24", "0.2.0")):
        (rkt.local_config / "net.d" / f"50-{name}.conf").write_text(json.dumps({
            "cniVersion": version, "name": name, "type": "ptp",
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": str(leases)}}))
    rkt("run", "--stage1-name=nettest", "--net=all", image, check=0)
    info = json.loads((rkt.data_dir / "pods" / "run" / rkt.note_pods()[0] / "net-info.json")
                      .read_text())
    # file name order (50-alpha, 50-zeta), rkt's built-in default last
    assert [(n["netName"], n["ifName"], n["ip"].rsplit(".", 1)[0]) for n in info] == [
        ("alpha", "eth0", "10.97.2"), ("zeta", "eth1", "10.97.1"), ("default", "eth2", "172.16.28")]


def test_default_restricted_has_no_route_out(rkt, image):
    out = _run_output(rkt, "--stage1-name=nettest", "--net=default-restricted", image,
                      "--exec", "/bin/busybox", "--", "ip", "-4", "route")
    assert "default" not in out and "172.31." in out


def test_dns_flags_and_hosts_entries(rkt, image):
    out = _run_output(rkt, "--stage1-name=nettest", "--dns=10.1.2.3", "--dns-search=example.com",
                      "--hosts-entry=10.9.8.7=db", "--hostname=web", image)
    uuid = rkt.note_pods()[0]
    pod = rkt.data_dir / "pods" / "run" / uuid
    assert (pod / "resolv.conf").read_text() == "nameserver 10.1.2.3\nsearch example.com\n"
    assert (pod / "hosts").read_text() == ("127.0.0.1\tlocalhost web\n::1\tlocalhost\n"
                                           "10.9.8.7\tdb\n")
    assert "hi" in out
    done = rkt("run", "--stage1-name=nettest", "--dns=host", "--dns-opt=rotate", image)
    assert done.returncode == 254 and "cannot be used with --dns=host" in done.stderr


@pytest.mark.parametrize("flavor", FLAVORS)
def test_name_service_files_reach_the_apps(rkt, image, flavor):
    out = _run_output(rkt, f"--stage1-name={flavor}", "--dns=10.1.2.3", "--dns-opt=ndots:2",
                      "--hosts-entry=10.9.8.7=db", image, "--exec", "/bin/busybox", "--", "sh",
                      "-c", "cat /etc/resolv.conf /etc/hosts")
    if flavor == "nettest":  # apps see the host's files: check what the flavor was given
        pod = rkt.data_dir / "pods" / "run" / rkt.note_pods()[0]
        options = json.loads((pod / "nettest-options.json").read_text())
        out = "".join(open(options[k]).read() for k in ("resolv_conf", "hosts_file"))
    assert "nameserver 10.1.2.3\noptions ndots:2\n" in out
    assert "127.0.0.1\tlocalhost rkt-" in out and "10.9.8.7\tdb\n" in out


def test_run_prepared_takes_the_network_flags(rkt, image):
    uuid = rkt("prepare", "--quiet", "--stage1-name=nettest", "--port=http:18933", image,
               "--exec", "/bin/busybox", "--", "ip", "-o", "-4", "addr", check=0).stdout.strip()
    done = rkt("run-prepared", "--net=none", uuid)
    assert done.returncode == 254 and "--port does not work with --net=none" in done.stderr
    ip = _free_ip()
    done = rkt("run-prepared", f"--net=default:IP={ip}", uuid, check=0)
    assert f"eth0    inet {ip}/24" in done.stdout
    assert rkt.status(uuid)["networks"] == f"default:ip4={ip}"


def test_unknown_network_and_bad_plugins(rkt, image):
    done = rkt("--disable-plugin=net-cni", "run", "--stage1-name=nettest", image)
    assert done.returncode == 254 and "rkt-net-cni" in done.stderr
    assert 'no network backend is installed for network "default"' in done.stderr
    assert rkt.note_pods() == []  # refused before any pod existed
    done = rkt("run", "--stage1-name=nettest", "--net=nosuchnet", image)
    assert done.returncode == 254 and "networks not found: nosuchnet" in done.stderr
    (rkt.local_config / "net.d" / "10-bad.conf").write_text(json.dumps(
        {"name": "bad", "type": "no-such-plugin"}))
    done = rkt("run", "--stage1-name=nettest", "--net=bad", image)
    assert done.returncode == 254 and 'CNI plugin "no-such-plugin" not found' in done.stderr
    (rkt.local_config / "net.d" / "10-bad.conf").write_text(json.dumps(
        {"name": "bad", "type": "../../../bin/true"}))
    done = rkt("run", "--stage1-name=nettest", "--net=bad", image)
    assert done.returncode == 254 and "invalid plugin type" in done.stderr


def test_failing_plugin_leaves_nothing(rkt, image, tmp_path):
    """The second network fails (its subnet is full); the first one is torn down again."""
    leases = tmp_path / "leases"
    rkt.lease_dirs.append(leases)
    (rkt.local_config / "net.d" / "20-full.conf").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "full", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "10.98.0.0/30", "rangeStart": "10.98.0.1",
                 "rangeEnd": "10.98.0.1", "dataDir": str(leases)}}))
    (leases / "full").mkdir(parents=True)
    (leases / "full" / "10.98.0.1").write_text("someone-else")
    done = rkt("run", "--stage1-name=nettest", "--net=default,full", image)
    assert done.returncode == 254 and 'error adding network "full"' in done.stderr
    assert (leases / "full" / "10.98.0.1").read_text() == "someone-else"


# A CNI plugin for the tests below: logs each command it gets in <itself>.log; refuses
# REFUSE=yes in CNI_ARGS (at ADD and DEL alike, as plugins refuse arguments they do not know);
# fails every DEL with another error while <itself>.busy exists.
CHECKING_PLUGIN = """#!/bin/sh
cat > /dev/null
echo "$CNI_COMMAND" >> "$0.log"
if [ "$CNI_COMMAND" = DEL ] && [ -e "$0.busy" ]; then
    echo '{"code": 11, "msg": "busy"}'; exit 1
fi
case ";$CNI_ARGS;" in *";REFUSE=yes;"*)
    echo '{"code": 999, "msg": "ARGS: unknown args [\\"REFUSE=yes\\"]"}'; exit 1 ;;
esac
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion": "0.4.0"}'
exit 0
"""


def _chain(rkt, leases, *types) -> dict[str, Path]:
    """The network ``chain``: ptp (addresses leased in ``leases``), then plugins of
    :data:`CHECKING_PLUGIN` named ``types``; returns their logs by name."""
    rkt.lease_dirs.append(leases)
    net_d = rkt.local_config / "net.d"
    for name in types:
        (net_d / name).write_text(CHECKING_PLUGIN)
        (net_d / name).chmod(0o755)
    (net_d / "10-chain.conflist").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "chain", "plugins": [
            {"type": "ptp", "ipMasq": True,
             "ipam": {"type": "host-local", "subnet": "10.96.41.0/24", "dataDir": str(leases)}},
            *({"type": name} for name in types)]}))
    return {name: net_d / f"{name}.log" for name in types}


def _pods_gone(rkt) -> bool:
    return not list((rkt.data_dir / "pods").glob("*/*"))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_network_refusing_its_arguments_leaves_nothing(rkt, image, tmp_path, flavor):
    """ptp refuses an argument it does not know, at ADD and at DEL alike: the pod is undone
    at once, the error said once, and gc removes the pod (rkt kept it forever)."""
    leases = tmp_path / "leases"
    rkt.lease_dirs.append(leases)
    (rkt.local_config / "net.d" / "10-mynet.conf").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "mynet", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "10.96.40.0/24", "dataDir": str(leases)}}))
    done = rkt("run", f"--stage1-name={flavor}", "--net=mynet:FOO=bar", image)
    assert done.returncode == 254
    assert done.stderr.splitlines()[-1] == ('rkt: error adding network "mynet": CNI plugin '
                                            '"ptp" (ADD) failed: ARGS: unknown args ["FOO=bar"]')
    assert "networking" not in done.stderr and done.stderr.count("FOO=bar") == 1
    (uuid,) = rkt.note_pods()
    pod = rkt.data_dir / "pods" / "run" / uuid
    assert not (pod / "netns").exists() and not (pod / "net-backend").exists()
    assert not list((pod / "net").iterdir())
    assert f"rkt-{uuid}" not in os.listdir("/run/netns")
    gc = rkt("gc", "--grace-period=0s")
    assert gc.returncode == 0, gc.stderr
    assert _pods_gone(rkt)


def test_a_plugin_failing_in_a_chain_is_undone_with_those_before_it(rkt, image, tmp_path):
    """ptp's ADD succeeded, the next plugin refused its arguments: ptp's address is released
    at once, and the plugin after the one that failed, never added, is not deleted either."""
    logs = _chain(rkt, tmp_path / "leases", "refuser", "witness")
    done = rkt("run", "--stage1-name=nettest", "--net=chain:IgnoreUnknown=1;REFUSE=yes", image)
    assert done.returncode == 254
    assert 'error adding network "chain": CNI plugin "refuser" (ADD) failed' in done.stderr
    assert "networking" not in done.stderr
    assert logs["refuser"].read_text() == "ADD\nDEL\n" and not logs["witness"].exists()
    assert rkt.leaks() == {"netns": [], "links": [], "iptables": [], "leases": []}
    assert rkt("gc", "--grace-period=0s").returncode == 0 and _pods_gone(rkt)


def test_a_del_failing_otherwise_keeps_the_pod_for_gc(rkt, image, tmp_path):
    """A DEL that fails with another error than the plugin's ADD may succeed later: the
    records (and the pod) stay, the failure said once; a gc after the cause is gone cleans."""
    logs = _chain(rkt, tmp_path / "leases", "refuser")
    busy = logs["refuser"].with_suffix("").with_name("refuser.busy")
    busy.write_text("")
    done = rkt("run", "--stage1-name=nettest", "--net=chain:IgnoreUnknown=1;REFUSE=yes", image)
    assert done.returncode == 254
    assert done.stderr.count('CNI plugin "refuser" (DEL) failed: busy') == 1
    (uuid,) = rkt.note_pods()
    assert f"rkt-{uuid}" in os.listdir("/run/netns")
    gc = rkt("gc", "--grace-period=0s")
    assert gc.returncode == 254 and "kept for the next gc" in gc.stderr
    assert not _pods_gone(rkt)
    busy.unlink()
    gc = rkt("gc", "--grace-period=0s")
    assert gc.returncode == 0, gc.stderr
    assert _pods_gone(rkt) and f"rkt-{uuid}" not in os.listdir("/run/netns")


def test_killed_rkt_run_is_cleaned_up_when_the_pod_ends(rkt, image):
    """rkt leaked a killed pod's networks until gc; here they go when its last process does."""
    started = rkt.start("--stage1-name=nettest", image, "--exec", "/bin/busybox", "--",
                        "sleep", "1000")
    uuid = started.uuid
    _networks(rkt, uuid)
    started.process.kill()
    assert started.wait() == -signal.SIGKILL
    pod = rkt.data_dir / "pods" / "run" / uuid
    assert (pod / "netns").exists()  # the app still runs, and so does the pod
    assert rkt.status(uuid)["state"] == "running"
    app = int((pod / "pid").read_text())  # the app: a session of its own, out of rkt's group
    os.killpg(app, signal.SIGKILL)
    wait_for(lambda: not (pod / "netns").exists() and not (pod / "net-backend").exists(),
               what="the guardian's teardown")
    assert wait_for(lambda: rkt.status(uuid)["state"] == "exited", what="the pod to exit")
    assert f"rkt-{uuid}" not in os.listdir("/run/netns")


def test_flavor_that_execs_is_torn_down_when_the_app_exits(rkt, image):
    """A flavor may replace ``rkt run`` with its own process (exec): the guardian still
    releases the networks, once that process (the pod) is gone."""
    out = _run_output(rkt, "--stage1-name=nettest-exec", image, "--exec", "/bin/busybox", "--",
                      "ip", "-o", "-4", "addr")
    assert "eth0    inet 172.16.28." in out
    uuid = rkt.note_pods()[0]
    pod = rkt.data_dir / "pods" / "run" / uuid
    wait_for(lambda: not (pod / "netns").exists() and not (pod / "net-backend").exists(),
               what="the guardian's teardown")
    assert not list((pod / "net").iterdir())


def test_daemonized_app_keeps_the_network_until_it_exits(rkt, image):
    """``rkt run`` returns when the flavor does; a process of the pod that is still alive (it
    holds the pod's lock) keeps the networks until it exits."""
    done = rkt("run", "--stage1-name=nettest", image, "--exec", "/bin/busybox", "--", "sh", "-c",
               "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!", check=0)
    uuid = rkt.note_pods()[0]
    daemon = int(done.stdout.split()[-1])
    pod = rkt.data_dir / "pods" / "run" / uuid
    assert rkt.status(uuid)["state"] == "running" and (pod / "netns").exists()
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not (pod / "netns").exists(), what="the guardian's teardown")


def test_gc_mark_releases_a_leaked_pod(rkt, image, tmp_path):
    """A pod whose networks outlived it (rkt and its guardian both gone) loses them at gc's
    mark, without waiting for the grace period."""
    script = ("import sys\n"
              "from rkt_core.appc import PodManifest\n"
              "from rkt_core.context import Context\n"
              "from rkt_core.pod.pod import Pod\n"
              "from rkt_core import network\n"
              "from rkt_core.types import RunOptions\n"
              "ctx = Context(dir=sys.argv[1], local_config=sys.argv[2])\n"
              "pod = Pod.create(ctx.data_dir)\n"
              "open(pod.file('pod'), 'w').write(PodManifest(apps=[]).to_json())\n"
              "pod.to_run()\n"
              "network.setup(ctx, pod, RunOptions(lock_fd=-1, net=('default',)))\n"
              "print(pod.uuid)\n")
    done = subprocess.run([sys.executable, "-c", script, str(rkt.data_dir), str(rkt.local_config)],
                          capture_output=True, text=True, check=True)
    uuid = done.stdout.strip()
    rkt.seen.add(uuid)
    assert f"rkt-{uuid}" in os.listdir("/run/netns")
    assert rkt.leaks()["leases"]
    out = rkt("gc", "--mark-only", check=0)
    assert f'moving pod "{uuid}" to garbage' in out.stderr
    assert rkt.leaks() == {"netns": [], "links": [], "iptables": [], "leases": []}
    assert (rkt.data_dir / "pods" / "exited-garbage" / uuid / "net-info.json").exists()

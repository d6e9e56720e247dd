"""Contained networking as root, with Debian's real CNI plugins (/usr/lib/cni) and iptables.

Pods run through the real ``rkt`` command with every installed flavor that has contained
networking, and with the test-only ``nettest`` flavor (apps on the host's filesystem, in the
pod's network namespace). Traffic goes only to the host's loopback and to addresses inside the
namespaces these tests create. Every test is wrapped in a leak check (``no_leaks``): no network
namespace, link, iptables rule, host-local lease or process may be left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

import pytest

from conftest import contained_flavors
from rkt_core.testing.stage1_contract import contract_image

pytestmark = pytest.mark.root

FLAVORS = contained_flavors()
# (cd, not httpd's -h: rkt's app argument parser takes a -h anywhere for --help)
SERVE = ["--exec", "/bin/busybox", "--", "sh", "-c", "cd /bin && exec httpd -f -p 80"]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """busybox, declaring port ``http`` (80/tcp)."""
    return contract_image(tmp_path_factory.mktemp("img") / "bb.aci",
                          ports=[{"name": "http", "protocol": "tcp", "port": 80}])


def _networks(rkt, uuid):
    return rkt.wait_for(lambda: rkt.status(uuid).get("networks"))


def _ip(networks: str, name: str = "default") -> str:
    entries = dict(n.strip().split(":ip4=") for n in networks.split(","))
    return entries[name]


def _stop(rkt, process, uuid):
    rkt("stop", uuid, check=0)
    process.communicate(timeout=60)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_two_pods_on_the_default_network_reach_each_other(rkt, image, flavor):
    server = rkt.start("run", f"--stage1-name={flavor}", image, *SERVE)
    uuid = rkt.only_pod()
    ip = _ip(_networks(rkt, uuid))
    assert ip.startswith("172.16.28.")
    listing = rkt("list", "--no-legend", check=0).stdout
    assert f"default:ip4={ip}" in listing
    client = rkt("run", f"--stage1-name={flavor}", image, "--exec", "/bin/busybox", "--", "sh",
                 "-c", f"for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /dev/null http://{ip}/busybox"
                       " && echo reached && exit 0; sleep 0.5; done; exit 1")
    assert client.returncode == 0 and "reached" in client.stdout, client.stderr
    _stop(rkt, server, uuid)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_forwarded_port_is_reached_from_the_hosts_loopback(rkt, image, flavor):
    server = rkt.start("run", f"--stage1-name={flavor}", "--port=http:18931", image, *SERVE)
    uuid = rkt.only_pod()
    _networks(rkt, uuid)

    def fetch():
        try:
            with urllib.request.urlopen("http://127.0.0.1:18931/busybox", timeout=5) as reply:
                return reply.status == 200 and len(reply.read()) > 100000
        except OSError:
            return False

    assert rkt.wait_for(fetch)
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert f"RKT-PFWD-DNAT-{uuid[:8]}" in nat and "--dport 18931" in nat
    _stop(rkt, server, uuid)


def test_port_needs_a_contained_network(rkt, image):
    done = rkt("run", "--stage1-name=nettest", "--net=none", "--port=http:18932", image)
    assert done.returncode == 254 and "--port does not work with --net=none" in done.stderr
    done = rkt("run", "--stage1-name=nettest", "--port=nope:18932", image)
    assert done.returncode == 254 and 'port name "nope" is not declared' in done.stderr
    assert not (rkt.data / "pods" / "run").exists() or not list((rkt.data / "pods" / "run").iterdir())


@pytest.mark.parametrize("flavor", FLAVORS)
def test_net_none_has_only_loopback(rkt, image, flavor):
    done = rkt("run", f"--stage1-name={flavor}", "--net=none", image, "--exec", "/bin/busybox",
               "--", "ip", "-o", "link", check=0)
    names = [line.split(":")[1].strip() for line in done.stdout.splitlines()]
    assert names == ["lo"] and "UP" in done.stdout


def test_cni_args_dns_and_interfaces_in_order(rkt, image, tmp_path):
    resolv = tmp_path / "cni-resolv.conf"
    resolv.write_text("nameserver 10.99.0.53\nsearch cni.example\n")
    (rkt.local_config / "net.d" / "10-first.conf").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "first", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "10.99.7.0/24", "resolvConf": str(resolv),
                 "dataDir": str(tmp_path / "leases")}}))
    done = rkt("run", "--stage1-name=nettest", "--net=default:IP=172.16.28.211,first", image,
               "--exec", "/bin/busybox", "--", "ip", "-o", "-4", "addr", check=0)
    assert "eth0    inet 10.99.7." in done.stdout
    assert "eth1    inet 172.16.28.211/24" in done.stdout
    uuid = rkt("list", "--no-legend", "--full").stdout.split()[0]
    status = rkt.status(uuid)
    assert "first:ip4=10.99.7." in status["networks"] and "default:ip4=172.16.28.211" in status["networks"]
    pod = rkt.data / "pods" / "run" / uuid
    info = json.loads((pod / "net-info.json").read_text())
    assert [(n["netName"], n["ifName"], n["args"]) for n in info] == [
        ("first", "eth0", ""), ("default", "eth1", "IP=172.16.28.211")]
    options = json.loads((pod / "nettest-options.json").read_text())
    assert (pod / "resolv.conf").read_text() == "nameserver 10.99.0.53\nsearch cni.example\n"
    assert options["resolv_conf"] == str(pod / "resolv.conf")
    assert options["hosts_fallback"] == str(pod / "hosts") and options["hosts_file"] == ""
    assert not (pod / "netns").exists() and not list((pod / "net").iterdir())


def test_dns_flags_and_hosts_entries(rkt, image):
    rkt("run", "--stage1-name=nettest", "--dns=10.1.2.3", "--dns-search=example.com",
        "--hosts-entry=10.9.8.7=db", "--hostname=web", image, check=0)
    uuid = rkt("list", "--no-legend", "--full").stdout.split()[0]
    pod = rkt.data / "pods" / "run" / uuid
    assert (pod / "resolv.conf").read_text() == "nameserver 10.1.2.3\nsearch example.com\n"
    assert (pod / "hosts").read_text() == ("127.0.0.1\tlocalhost web\n::1\tlocalhost\n"
                                           "10.9.8.7\tdb\n")
    done = rkt("run", "--stage1-name=nettest", "--dns=host", "--dns-opt=rotate", image)
    assert done.returncode == 254 and "cannot be used with --dns=host" in done.stderr


def test_unknown_network_and_missing_plugin(rkt, image):
    done = rkt("run", "--stage1-name=nettest", "--net=nosuchnet", image)
    assert done.returncode == 254 and "networks not found: nosuchnet" in done.stderr
    (rkt.local_config / "net.d" / "10-bad.conf").write_text(json.dumps(
        {"name": "bad", "type": "no-such-plugin"}))
    done = rkt("run", "--stage1-name=nettest", "--net=bad", image)
    assert done.returncode == 254 and 'CNI plugin "no-such-plugin" not found' in done.stderr


def test_failing_plugin_leaves_nothing(rkt, image, tmp_path):
    """The second network fails (its subnet is full); the first one is torn down again."""
    (rkt.local_config / "net.d" / "20-full.conf").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "full", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "10.98.0.0/30", "rangeStart": "10.98.0.1",
                 "rangeEnd": "10.98.0.1", "dataDir": str(tmp_path / "leases")}}))
    (tmp_path / "leases" / "full").mkdir(parents=True)
    (tmp_path / "leases" / "full" / "10.98.0.1").write_text("someone-else")
    done = rkt("run", "--stage1-name=nettest", "--net=default,full", image)
    assert done.returncode == 254 and 'error adding network "full"' in done.stderr


def test_killed_rkt_run_is_cleaned_up_when_the_pod_ends(rkt, image):
    """rkt leaked a killed pod's networks until gc; here they go when its last process does."""
    process = rkt.start("run", "--stage1-name=nettest", image, "--exec", "/bin/busybox", "--",
                        "sleep", "1000")
    uuid = rkt.only_pod()
    _networks(rkt, uuid)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    pod = rkt.data / "pods" / "run" / uuid
    assert (pod / "netns").exists()  # the app still runs, and so does the pod
    assert rkt.status(uuid)["state"] == "running"
    os.killpg(int((pod / "pid").read_text()), signal.SIGKILL)
    rkt.wait_for(lambda: not (pod / "netns").exists() and not (pod / "net-backend").exists())
    assert rkt.wait_for(lambda: rkt.status(uuid)["state"] == "exited")


def test_gc_mark_releases_a_leaked_pod(rkt, image, tmp_path):
    """A pod whose networks outlived it (rkt and its guardian both gone) loses them at gc's
    mark, without waiting for the grace period."""
    script = ("import sys\n"
              "from rkt_core.appc import PodManifest\n"
              "from rkt_core.context import Context\n"
              "from rkt_core.pod.pod import Pod\n"
              "from rkt_core.stage0 import network\n"
              "from rkt_core.types import RunOptions\n"
              "ctx = Context(dir=sys.argv[1], local_config=sys.argv[2])\n"
              "pod = Pod.create(ctx.data_dir)\n"
              "open(pod.file('pod'), 'w').write(PodManifest(apps=[]).to_json())\n"
              "pod.to_run()\n"
              "network.setup(ctx, pod, RunOptions(lock_fd=-1, net=('default',)))\n"
              "print(pod.uuid)\n")
    done = subprocess.run([os.sys.executable, "-c", script, str(rkt.data), str(rkt.local_config)],
                          capture_output=True, text=True, check=True)
    uuid = done.stdout.strip()
    assert f"rkt-{uuid}" in os.listdir("/run/netns")
    rkt("gc", "--mark-only", check=0)
    assert f"rkt-{uuid}" not in os.listdir("/run/netns")
    assert (rkt.data / "pods" / "exited-garbage" / uuid / "net-info.json").exists()

"""The flannel network type as root: rkt-net-cni runs ``python -m rkt_net_flannel.cni``, which
reads the test's own subnet.env (no flanneld) and delegates to Debian's real bridge plugin.
The bridge gets a name of the test's own and is removed with the test's pods; the leak check
(see net_cni's ``netcheck``) covers namespaces, rules, leases and processes."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from rkt_core.testing.aci import app_image
from rkt_core.testing.wait import wait_for

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return app_image(tmp_path_factory.mktemp("img") / "bb.aci")


def _in_pod(uuid: str, *argv: str) -> str:
    """Run a command in the pod's network namespace (one the test created)."""
    done = subprocess.run(["ip", "netns", "exec", f"rkt-{uuid}", *argv], capture_output=True,
                          text=True, check=True)
    return done.stdout


@pytest.mark.parametrize("flannel_masquerades", [True, False])
def test_pod_on_a_flannel_network(rkt, image, tmp_path, flannel_masquerades):
    subnet_env = tmp_path / "subnet.env"
    subnet_env.write_text("FLANNEL_NETWORK=10.223.0.0/16\nFLANNEL_SUBNET=10.223.5.1/24\n"
                          f"FLANNEL_MTU=1400\nFLANNEL_IPMASQ={str(flannel_masquerades).lower()}\n")
    bridge = f"rktfl{os.getpid() % 100000}"
    rkt.bridges.append(bridge)
    data = tmp_path / "flannel"
    (rkt.local_config / "net.d" / "10-flannel.conf").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "flan", "type": "flannel", "subnetFile": str(subnet_env),
        "dataDir": str(data), "delegate": {"bridge": bridge}}))
    started = rkt.start("--stage1-name=nettest", "--net=flan", image, "--exec",
                        "/bin/busybox", "--", "sleep", "1000")
    uuid = started.uuid
    networks = wait_for(lambda: rkt.status(uuid).get("networks"), what="the pod's networks")
    pod = rkt.data_dir / "pods" / "run" / uuid
    info = json.loads((pod / "net-info.json").read_text())
    assert networks == f"flan:ip4={info[0]['ip']}" and info[0]["ip"].startswith("10.223.5.")
    assert info[0]["pluginPath"].endswith("-m rkt_net_flannel.cni")
    assert "mtu 1400" in _in_pod(uuid, "ip", "link", "show", "eth0")
    assert "10.223.0.0/16 via 10.223.5.1 dev eth0" in _in_pod(uuid, "ip", "-4", "route")
    assert json.loads((data / uuid).read_text())["bridge"] == bridge  # kept for DEL
    # the pod's address on the host's bridge, its gateway
    assert "inet 10.223.5.1/24" in subprocess.run(["ip", "-o", "-4", "addr", "show", bridge],
                                                  capture_output=True, text=True).stdout
    # masquerading by the delegate only when flanneld does not masquerade itself
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert (uuid in nat) is not flannel_masquerades
    rkt("stop", uuid, check=0)
    started.wait()
    # released at exit, with the delegate's kept configuration
    wait_for(lambda: not (pod / "netns").exists(), what="teardown")
    assert list(data.iterdir()) == []

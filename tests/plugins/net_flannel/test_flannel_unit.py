"""The flannel CNI plugin without root: subnet.env, the delegate configuration, and the
plugin run as rkt-net-cni runs it (``python -m``) with a stand-in ``bridge`` delegate."""

import json
import subprocess
import sys

import pytest

from rkt_net_cni import invoke
from rkt_net_flannel import cni

SUBNET_ENV = ("FLANNEL_NETWORK=10.222.0.0/16\nFLANNEL_SUBNET=10.222.7.1/24\nFLANNEL_MTU=1450\n"
              "FLANNEL_IPMASQ=true\n")


@pytest.fixture
def subnet_env(tmp_path):
    path = tmp_path / "subnet.env"
    path.write_text(SUBNET_ENV)
    return path


def test_read_subnet_env(subnet_env, tmp_path):
    assert cni.read_subnet_env(str(subnet_env)) == {
        "network": "10.222.0.0/16", "subnet": "10.222.7.0/24", "mtu": 1450, "ipmasq": True}
    partial = tmp_path / "partial.env"
    partial.write_text("FLANNEL_SUBNET=10.1.2.1/24\n")
    with pytest.raises(cni.PluginError, match="missing FLANNEL_NETWORK, FLANNEL_MTU, FLANNEL_IPMASQ"):
        cni.read_subnet_env(str(partial))
    with pytest.raises(cni.PluginError, match="cannot read"):
        cni.read_subnet_env(str(tmp_path / "absent"))


def test_delegate_defaults_to_a_gateway_bridge():
    subnet = {"network": "10.222.0.0/16", "subnet": "10.222.7.0/24", "mtu": 1450, "ipmasq": True}
    assert cni.delegate_config({"cniVersion": "0.4.0", "name": "fl", "type": "flannel"}, subnet) == {
        "name": "fl", "type": "bridge", "ipMasq": False, "mtu": 1450, "isGateway": True,
        "cniVersion": "0.4.0",
        "ipam": {"type": "host-local", "subnet": "10.222.7.0/24",
                 "routes": [{"dst": "10.222.0.0/16"}]}}
    custom = cni.delegate_config({"name": "fl", "delegate": {"type": "ipvlan", "master": "eth0",
                                                             "mtu": 1400}},
                                 {**subnet, "ipmasq": False})
    assert custom["type"] == "ipvlan" and custom["mtu"] == 1400 and custom["ipMasq"] is True
    assert "isGateway" not in custom and custom["master"] == "eth0"


@pytest.mark.parametrize("delegate,message", [
    ({"name": "x"}, "must not have 'name'"), ({"ipam": {}}, "must not have 'ipam'"),
    ({"type": 3}, r"\(string\) 'type'"), ({"type": "../sh"}, "invalid delegate plugin type"),
])
def test_bad_delegates(delegate, message):
    subnet = {"network": "10.0.0.0/8", "subnet": "10.1.0.0/24", "mtu": 1500, "ipmasq": False}
    with pytest.raises(cni.PluginError, match=message):
        cni.delegate_config({"name": "fl", "delegate": delegate}, subnet)


BRIDGE = """#!/bin/sh
cat > "$0.$CNI_COMMAND.stdin"
[ "$CNI_COMMAND" = ADD ] && printf '{"cniVersion":"1.0.0","ips":[{"address":"10.222.7.2/24"}]}'
exit 0
"""


def _run(command, conf, cni_path, container="pod-1"):
    env = invoke.environment(command, container, "/run/netns/x", "eth0", "", [str(cni_path)])
    return subprocess.run([sys.executable, "-m", "rkt_net_flannel.cni"], env=env,
                          input=json.dumps(conf).encode(), capture_output=True)


def test_add_and_del_through_the_delegate(tmp_path, subnet_env):
    bridge = tmp_path / "bin" / "bridge"
    bridge.parent.mkdir()
    bridge.write_text(BRIDGE)
    bridge.chmod(0o755)
    conf = {"cniVersion": "1.0.0", "name": "fl", "type": "flannel",
            "subnetFile": str(subnet_env), "dataDir": str(tmp_path / "data")}
    done = _run("ADD", conf, bridge.parent)
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["ips"] == [{"address": "10.222.7.2/24"}]
    delegated = json.loads((tmp_path / "bin" / "bridge.ADD.stdin").read_text())
    assert delegated["ipam"]["subnet"] == "10.222.7.0/24" and delegated["name"] == "fl"
    assert json.loads((tmp_path / "data" / "pod-1").read_text()) == delegated
    done = _run("DEL", conf, bridge.parent)
    assert done.returncode == 0 and not (tmp_path / "data" / "pod-1").exists()
    assert json.loads((tmp_path / "bin" / "bridge.DEL.stdin").read_text())["type"] == "bridge"
    assert _run("DEL", conf, bridge.parent).returncode == 0  # nothing kept: nothing to do


def test_errors_are_cni_error_json(tmp_path, subnet_env):
    conf = {"cniVersion": "1.0.0", "name": "fl", "type": "flannel", "subnetFile": str(subnet_env),
            "dataDir": str(tmp_path / "data")}
    done = _run("ADD", conf, tmp_path)  # no bridge anywhere
    assert done.returncode == 1
    assert json.loads(done.stdout)["msg"].startswith('failed to find plugin "bridge"')
    done = _run("ADD", conf, tmp_path, container="../escape")
    assert json.loads(done.stdout)["msg"] == 'invalid CNI_CONTAINERID "../escape"'
    done = _run("VERSION", {}, tmp_path)
    assert "1.0.0" in json.loads(done.stdout)["supportedVersions"]

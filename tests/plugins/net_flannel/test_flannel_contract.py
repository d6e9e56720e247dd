"""A flannel network (rkt-net-cni with rkt-net-flannel's CNI type, the test's own subnet.env
and bridge) passes the network backend contract."""

import json
import os
import subprocess

import pytest

from rkt_core.testing.network_contract import NetworkContract


class TestFlannelContract(NetworkContract):
    backend = "cni"
    network = "flan"

    @pytest.fixture
    def local_config(self, tmp_path):
        subnet_env = tmp_path / "subnet.env"
        subnet_env.write_text("FLANNEL_NETWORK=10.224.0.0/16\nFLANNEL_SUBNET=10.224.7.1/24\n"
                              "FLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n")
        bridge = f"rktfc{os.getpid() % 100000}"
        (tmp_path / "etc" / "net.d").mkdir(parents=True)
        (tmp_path / "etc" / "net.d" / "10-flannel.conf").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "flan", "type": "flannel",
            "subnetFile": str(subnet_env), "dataDir": str(tmp_path / "flannel"),
            "delegate": {"bridge": bridge}}))
        yield tmp_path / "etc"
        # CNI's bridge plugin never deletes a bridge (other pods may join it any time)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
        assert not list((tmp_path / "flannel").iterdir())  # the delegate's records released

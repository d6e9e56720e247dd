"""rkt-net-cni passes the network backend contract on rkt's default network, with Debian's
real CNI plugins."""

import json

import pytest

from rkt_core.testing.network_contract import NetworkContract


class TestCniContract(NetworkContract):
    backend = "cni"
    network = "default"


class TestCniUserNetworkContract(NetworkContract):
    """A user network of ptp with host-local leases in a directory of the test's own."""

    backend = "cni"
    network = "contract"

    @pytest.fixture
    def local_config(self, tmp_path):
        leases = tmp_path / "leases"
        self.lease_dirs = (leases,)
        (tmp_path / "etc" / "net.d").mkdir(parents=True)
        (tmp_path / "etc" / "net.d" / "10-contract.conf").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "contract", "type": "ptp", "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": "10.96.5.0/24", "dataDir": str(leases)}}))
        return tmp_path / "etc"

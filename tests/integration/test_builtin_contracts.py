"""The built-in plugins of rkt-core pass the contract suites of their kinds, as any plugin does."""

from rkt_core.testing.network_contract import NetworkContract


class TestHostNetworkContract(NetworkContract):
    backend = "host"
    network = "host"
    contained = False
    interfaces = 0


class TestNoneNetworkContract(NetworkContract):
    backend = "none"
    network = "none"
    interfaces = 0

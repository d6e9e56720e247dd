"""Built-in network backend ``host``: the pod shares the host's network (no namespace)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..types import NetworkBackend, PodNetworks

RKT_PLUGIN_API = 1


class HostNetwork:
    """Nothing to set up or tear down: the pod keeps the host's network namespace."""

    def setup(self, pod, requests, context) -> PodNetworks:
        return PodNetworks(netns="")

    def teardown(self, pod, context) -> None:
        pass


@hookimpl
def rkt_network_backends():
    """Declare the ``host`` backend."""
    return [NetworkBackend("host", lambda name: name == "host", HostNetwork,
                           "--net=host: the host's network")]

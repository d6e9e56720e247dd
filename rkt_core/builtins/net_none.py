"""Built-in network backend ``none``: a network namespace of the pod's own with only the
loopback interface, up (``--net=none``)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..types import NetworkBackend, PodNetworks

RKT_PLUGIN_API = 1


class LoopbackOnly:
    """A private namespace with ``lo``; stage0 removes the namespace at teardown."""

    def setup(self, pod, requests, context) -> PodNetworks:
        from ..network import create_netns

        return PodNetworks(netns=create_netns(pod))

    def teardown(self, pod, context) -> None:
        pass  # the namespace is all there is, and stage0 removes it


@hookimpl
def rkt_network_backends():
    """Declare the ``none`` backend."""
    return [NetworkBackend("none", lambda name: name == "none", LoopbackOnly,
                           "--net=none: a network namespace with loopback only")]

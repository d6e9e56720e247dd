"""For network backends: ``--net`` requests, the pod's network namespace and state files,
forwarded ports.

A backend's ``setup(pod, requests, ctx)`` creates the pod's namespace with
:func:`create_netns` (its path is recorded first, so a crash right after still finds it),
attaches it to the requested networks, records what it did under the pod directory with
:func:`write_state`, and returns :class:`~rkt_core.types.PodNetworks`; ``teardown(pod, ctx)``
undoes it from those records (stage0 removes the namespace itself afterwards).
:func:`forwarded_ports` matches ``--port`` with the apps' ports; :func:`cni_args` turns a
request's arguments into ``CNI_ARGS``; :func:`is_word` says whether a DNS value fits one field
of resolv.conf.
"""

from ..network import (ForwardedPort, cni_args, create_netns, forwarded_ports, is_word,
                              netns_path, write_state)
from ..sys.netns import is_netns
from ..types import NetworkBackend, NetworkRequest, PodNetworks

__all__ = [
    "ForwardedPort", "NetworkBackend", "NetworkRequest", "PodNetworks", "cni_args",
    "create_netns", "forwarded_ports", "is_netns", "is_word", "netns_path", "write_state",
]

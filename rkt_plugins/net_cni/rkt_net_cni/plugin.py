"""Entry point of the CNI network backend (``net-cni``); the implementation is imported only
when a pod joins a CNI network."""

from rkt_core.plugin_api import NetworkBackend, hookimpl

RKT_PLUGIN_API = 1

SPECIAL = ("host", "none")


def _factory():
    from .backend import CniNetworks

    return CniNetworks()


@hookimpl
def rkt_add_hookspecs(add):
    from . import hookspecs

    add(hookspecs)


@hookimpl
def rkt_network_backends():
    return [NetworkBackend("cni", lambda name: name not in SPECIAL, _factory,
                           "contained networks run by CNI plugins: default, default-restricted, "
                           "<local-config>/net.d/*.conf, all")]

"""Entry point of rkt-net-flannel (``net-flannel``): it provides the CNI plugin type ``flannel``
(:mod:`.cni`, run as ``python -m rkt_net_flannel.cni``) through rkt-net-cni's
``rkt_cni_plugin_types`` hook; ``--disable-plugin=net-flannel`` takes the type away."""

from rkt_core.plugin_api import hookimpl
from rkt_net_cni.hookspecs import CniPluginType

RKT_PLUGIN_API = 1


@hookimpl
def rkt_cni_plugin_types():
    return [CniPluginType("flannel", "rkt_net_flannel.cni",
                          "delegates to the bridge plugin with flanneld's subnet.env")]

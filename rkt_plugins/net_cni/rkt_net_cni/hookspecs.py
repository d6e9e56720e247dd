"""The hook rkt-net-cni publishes: CNI plugin types implemented in Python.

A distribution provides a CNI plugin type by implementing :func:`rkt_cni_plugin_types`; the
module it names runs as that plugin (``python -m <module>``), under the CNI calling conventions,
for networks whose configuration has that ``type``. rkt-net-flannel provides ``flannel`` so.
Disabling the providing plugin (``--disable-plugin``) takes the type away.
"""

from __future__ import annotations

from rkt_core.plugin_api import dataclass, hookspec


@dataclass(frozen=True)
class CniPluginType:
    """A CNI plugin type (``name``) run as ``python -m <module>``."""

    name: str
    module: str
    description: str = ""


@hookspec.declare(CniPluginType)
def rkt_cni_plugin_types():
    """Declare CNI plugin types implemented by Python modules (``CniPluginType``)."""

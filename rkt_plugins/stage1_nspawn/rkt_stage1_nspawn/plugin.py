"""Entry point of the nspawn flavor (``stage1-nspawn``); the implementation is imported only when
a pod uses it."""

from rkt_core.plugin_api import Stage1Flavor, hookimpl

RKT_PLUGIN_API = 1


def _factory():
    from .stage1 import NspawnStage1

    return NspawnStage1()


@hookimpl
def rkt_stage1_flavors():
    return [Stage1Flavor(name="nspawn", factory=_factory, interface_version=2,
                         description="systemd-nspawn with systemd as the pod's PID 1, one service "
                                     "per app, isolators, contained networking (the default)")]

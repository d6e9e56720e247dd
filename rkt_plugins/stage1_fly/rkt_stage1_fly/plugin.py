"""Entry point of the fly flavor (``stage1-fly``); the implementation is imported only when
a pod uses it."""

from rkt_core.plugin_api import Stage1Flavor, hookimpl

RKT_PLUGIN_API = 1


def _factory():
    from .stage1 import FlyStage1

    return FlyStage1()


@hookimpl
def rkt_stage1_flavors():
    return [Stage1Flavor(name="fly", factory=_factory, interface_version=2,
                         description="one app, chroot in a private mount namespace, host network, "
                                     "no isolation (for privileged host services)")]

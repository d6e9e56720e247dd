"""Entry point of the kvm flavor (``stage1-kvm``); the implementation is imported only when a
pod uses it."""

from rkt_core.plugin_api import Stage1Flavor, hookimpl

RKT_PLUGIN_API = 1


def _factory():
    from .stage1 import KvmStage1

    return KvmStage1()


@hookimpl
def rkt_stage1_flavors():
    return [Stage1Flavor(name="kvm", factory=_factory, interface_version=1,
                         description="every pod in its own qemu virtual machine (KVM, or "
                                     "software emulation where KVM does not work)")]

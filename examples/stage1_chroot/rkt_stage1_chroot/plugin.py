"""The ``chroot`` flavor: each pod's single app runs chrooted in fresh mount, UTS and IPC
namespaces (so it has a hostname of its own), on the host's network, without isolators.

Written only against rkt's public plugin API (``rkt_core.plugin_api``); see
docs/writing-plugins.md of rkt for a walk through it.
"""

from rkt_core.plugin_api import NotFoundError, RunOptions, Stage1Features, Stage1Flavor, hookimpl
from rkt_core.plugin_api.linux import mount, ns
from rkt_core.plugin_api.stage1 import app_runtimes, chroot

RKT_PLUGIN_API = 1
NAMESPACES = ns.CLONE_NEWUTS | ns.CLONE_NEWIPC  # besides the mount namespace every app gets


class ChrootStage1:
    """Runs the pod's app as a child of ``rkt run``; what it leaves out, rkt refuses."""

    # one app, host network, no isolators, no --interactive; a hostname of its own
    features = Stage1Features(own_hostname=True)

    def run(self, pod, options: RunOptions) -> int:
        """Run the app in the foreground and return its exit status."""
        (app,) = app_runtimes(pod)
        hostname = options.hostname or f"rkt-{pod.uuid}"
        return chroot.run_app(pod, app, options, NAMESPACES, hostname)

    def enter(self, pod, app: str, argv: list[str]) -> int:
        """Run ``argv`` in the app's namespaces and root, as the app's user."""
        for runtime in app_runtimes(pod):
            if runtime.name == app:
                return chroot.enter_app(pod, runtime, argv)
        raise NotFoundError(f'the pod has no app "{app}"')

    def stop(self, pod, force: bool) -> None:
        """SIGTERM the app (SIGKILL with ``force``)."""
        chroot.signal_app(pod, force)

    def gc(self, pod) -> None:
        """Nothing outlives the app's namespaces; unmount anything left anyway."""
        mount.unmount_all_under(pod.path)


@hookimpl
def rkt_stage1_flavors():
    return [Stage1Flavor("chroot", ChrootStage1, interface_version=2,
                         description="example: one app chrooted in fresh mount, UTS and IPC "
                                     "namespaces, host network")]

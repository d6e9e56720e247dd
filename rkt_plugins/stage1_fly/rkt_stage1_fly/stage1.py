"""The fly flavor: one app, chrooted in a private mount namespace, as a direct child of rkt.

The app shares the host's network, PID and UTS namespaces and gets no isolators (rkt's fly
ignored the image's, with a warning). A set-up failure (a missing executable included) is an
error of rkt: ``rkt: <message>`` and exit status 254, as rkt's fly flavor did. Killing
``rkt run`` leaves the app running, and the pod with it.
"""

from __future__ import annotations

from rkt_core.plugin_api import NotFoundError, RktError, RunOptions, Stage1Features
from rkt_core.plugin_api.linux import mount
from rkt_core.plugin_api.stage1 import app_runtimes, chroot


class FlyStage1:
    """Runs pods of exactly one app on the host's network, without isolators."""

    features = Stage1Features(interactive=True)

    def run(self, pod, options: RunOptions) -> int:
        """Run the pod's app in the foreground; return its exit status (128+N if killed by
        signal N)."""
        manifest = pod.manifest()
        if len(manifest.apps) != 1:
            raise RktError("the fly flavor runs exactly one app; this pod has "
                           f"{len(manifest.apps)}")
        if options.net not in ((), ("host",)):
            raise RktError("the fly flavor only supports --net=host "
                           f"(got --net={','.join(options.net)})")
        if options.private_users:
            raise RktError("the fly flavor does not support --private-users")
        if options.hostname:
            raise RktError("the fly flavor shares the host's hostname; --hostname is not supported")
        app = app_runtimes(pod)[0]
        if app.isolators:
            names = ", ".join(i.name for i in app.isolators)
            raise RktError(f'the fly flavor cannot apply isolators (app "{app.name}": {names})')
        return chroot.run_app(pod, app, options)

    def enter(self, pod, app: str, argv: list[str]) -> int:
        """Run ``argv`` (default ``/bin/sh``) in the app's mount namespace and root, as its user
        and with its environment; return its exit status."""
        runtime = next((a for a in app_runtimes(pod) if a.name == app), None)
        if runtime is None:
            raise NotFoundError(f'the pod has no app "{app}"')
        return chroot.enter_app(pod, runtime, argv)

    def stop(self, pod, force: bool) -> None:
        """SIGTERM the app (``force``: SIGKILL), if it is still the pod's app."""
        chroot.signal_app(pod, force)

    def gc(self, pod) -> None:
        """Nothing of a fly pod outlives it: its mounts died with its namespace. Anything found
        mounted under the pod directory anyway is unmounted."""
        mount.unmount_all_under(pod.path)

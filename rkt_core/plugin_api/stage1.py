"""For stage1 flavors: a prepared pod's apps, their roots and processes, and a chroot runner.

A flavor's ``run(pod, options)`` gets a :class:`PodView` of a locked pod in ``run/`` and
:class:`~rkt_core.types.RunOptions`. :func:`app_runtimes` reads what each app needs from the pod
directory (image tree or overlay, command, user, environment, volumes, isolators, handlers). An
app's root comes from an untrusted image, so it is only ever touched through an fd of it:

- :func:`resolve_account`, :func:`resolve_directory`, :func:`resolve_executable`: the app's user
  and groups from its own
  ``/etc/passwd``/``/etc/group``; symlink-free working directories and executables, never under
  ``/proc``; :func:`process_environment` the environment of its processes;
- :func:`mount_root`, :func:`bind_name_service`, :func:`mount_step`: the app's root with /dev,
  /proc, /sys, /tmp, its volumes and the name service files stage0 chose;
- :func:`app_limits`: what an app's Linux isolators mean (capability bounding set, memory and
  CPU limits), for flavors that apply them (:data:`LINUX_ISOLATORS`);
- :mod:`chroot` (``run_app``, ``enter_app``, ``signal_app``, ``write_pid``,
  ``write_exit_status``): a whole chroot-style flavor's run, enter and stop in a few calls.

:func:`flavor_settings` gives a flavor its settings from the ``stage1`` configuration;
:func:`release_networks` lets a flavor that knows when all apps are gone have the pod's networks
released while the rest of the pod is still shutting down.

A flavor records the pod's pid (:func:`~rkt_core.pod.chroot.write_pid`) once the pod started and
each app's exit status (:func:`~rkt_core.pod.chroot.write_exit_status`) when it ends. A flavor
that keeps its apps' logs also has a ``logs`` method (:class:`Stage1Logs`, yielding
:class:`LogLine`), which ``rkt logs`` and the API service call.
"""

from __future__ import annotations

from ..pod import chroot
from ..pod.limits import CAPABILITIES, DEFAULT_CAPABILITIES, LINUX_ISOLATORS, AppLimits, app_limits
from ..pod.approot import (bind_name_service, mount_step, path_exists, resolve_account,
                           resolve_directory, resolve_executable)
from ..pod.runtime import (DEFAULT_PATH, Account, AppRuntime, VolumeMount, app_rootfs,
                           process_environment, resolve_user, shared_volume)
from ..pod.runtime import app_runtimes as _app_runtimes
from ..pod.stage2 import Process, exec_in, mount_root, process, run_handler, start_app
from ..pod.view import PodView
from ..types import LogLine, RunOptions, Stage1, Stage1Features, Stage1Flavor, Stage1Logs


def app_runtimes(pod: PodView) -> list[AppRuntime]:
    """The apps of a prepared pod, in manifest order."""
    return _app_runtimes(pod.data_dir, pod.path, pod.manifest())


def release_networks(pod: PodView) -> None:
    """Release the pod's contained networks now, from ``run``, once every app of the pod has
    exited and none of their processes is left (what else is left of the pod, its init shutting
    down, needs no network); else they are released once the pod's last process is gone. A
    no-op for a pod without contained networks."""
    from ..network.guardian import release_early

    release_early(pod.uuid)


def flavor_settings(flavor: str) -> dict:
    """The settings of ``flavor`` in the running command's ``stage1`` configuration
    (``stage1.d/*.json``: ``{"rktKind": "stage1", "rktVersion": "v1", "flavors": {"kvm":
    {"accel": "tcg"}}}``, system < local < user per setting); {} outside a command."""
    from ..context import current

    try:
        config = current().config
    except RuntimeError:
        return {}
    return dict(config.stage1_flavors.get(flavor, {}))


__all__ = [
    "CAPABILITIES", "DEFAULT_CAPABILITIES", "DEFAULT_PATH", "LINUX_ISOLATORS", "Account",
    "AppLimits", "AppRuntime", "LogLine", "PodView", "Process", "RunOptions", "Stage1",
    "Stage1Features", "Stage1Flavor", "Stage1Logs", "VolumeMount", "app_limits", "app_rootfs",
    "app_runtimes", "bind_name_service", "chroot", "exec_in", "flavor_settings", "mount_root",
    "mount_step", "path_exists", "process", "process_environment", "release_networks",
    "resolve_account", "resolve_directory", "resolve_executable", "resolve_user", "run_handler",
    "shared_volume", "start_app",
]

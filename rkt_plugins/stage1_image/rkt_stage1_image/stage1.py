"""Running a pod through its stage1 image's entrypoints, as rkt's stage0 did.

Stage0 has put the image's manifest in ``stage1/manifest`` and its tree (with the apps' roots
under ``opt/stage2``) in ``stage1/rootfs``. Each entrypoint runs as a child of ``rkt`` with the
pod directory as its working directory, the arguments of the image's interface version
(:mod:`.manifest`), rkt's stdin, stdout and stderr, and the signals ``rkt`` gets passed on; its
exit status is the command's. Entrypoint paths are resolved inside the image's root (symlinks
included), never outside it.

- ``run`` keeps the pod's lock fd open across the exec (``RKT_LOCK_FD``); the stage1 writes
  ``pid`` or ``ppid`` and each app's exit status in ``stage1/rootfs/rkt/status/<app>``.
- ``enter`` gets the pod's pid 1: ``pid``, else the only child of ``ppid``.
- ``stop`` is refused for images without a stop entrypoint (optional in rkt's contract).
- ``gc``'s output goes to stderr: ``rkt gc``'s stdout lists the pods it collects.
"""

from __future__ import annotations

import os
import time

from rkt_core.plugin_api import RktError, RunOptions, Stage1Features
from rkt_core.plugin_api.appc import ImageManifest
from rkt_core.plugin_api.linux import proc, scoped, spawn
from rkt_core.plugin_api.stage1 import LINUX_ISOLATORS, PodView, chroot

from .manifest import (DNS_CONF_MODE_SINCE, ENTER, GC, RUN, STOP, Stage1Image, enter_arguments,
                       gc_arguments, run_arguments, stop_arguments)

PID_POLL_SECONDS = 0.1
STAGE0_RESOLV_CONF, STAGE0_HOSTS = "rkt-resolv.conf", "rkt-hosts"  # in the stage1's /etc


class ImageStage1:
    """The pod's stage1 image does the work; rkt passes on what its contract can carry (apps
    and their isolators in the pod manifest, ``--interactive``) and refuses the rest."""

    features = Stage1Features(isolators=LINUX_ISOLATORS, interactive=True, multi_app=True,
                              own_hostname=True)  # rkt-<uuid>, or --hostname (version 2+)

    def run(self, pod: PodView, options: RunOptions) -> int:
        """Run the ``run`` entrypoint in the foreground; its exit status is the pod's."""
        from rkt_core.plugin_api.cli import context

        if options.lock_fd < 0:
            raise RktError("the pod's lock fd is missing")
        image = stage1_image(pod)
        mode, copies = dns_conf_mode(options)
        if image.version >= DNS_CONF_MODE_SINCE:
            for name, source in copies.items():
                _copy_into_stage1_etc(pod, source, name)
        args = run_arguments(image, options, pod.uuid, mode, context().warn)
        return execute(pod, image, RUN, args, lock_fd=options.lock_fd)

    def enter(self, pod: PodView, app: str, argv: list[str]) -> int:
        """Run ``argv`` (default ``/bin/sh``) in ``app`` through the ``enter`` entrypoint."""
        image = stage1_image(pod)
        args = enter_arguments(pod_pid1(pod), app, list(argv) or chroot.DEFAULT_ENTER_COMMAND)
        return execute(pod, image, ENTER, args)

    def stop(self, pod: PodView, force: bool) -> None:
        """Ask the stage1 to stop the pod (``--force``: kill it)."""
        image = stage1_image(pod)
        if STOP not in image.entrypoints:
            raise RktError(f'rkt stop is not implemented for this pod\'s stage1: image '
                           f'"{image.name}" has no stop entrypoint')
        _succeed(STOP, execute(pod, image, STOP, stop_arguments(pod.uuid, force)))

    def gc(self, pod: PodView) -> None:
        """Let the stage1 release what it set up for the pod."""
        from rkt_core.plugin_api.cli import context

        ctx = context()
        image = stage1_image(pod)
        args = gc_arguments(image, pod.uuid, ctx.debug, ctx.local_config)
        _succeed(GC, execute(pod, image, GC, args, stdout=2))


def stage1_image(pod: PodView) -> Stage1Image:
    """The pod's stage1 image, from the manifest stage0 recorded."""
    try:
        with open(pod.file("stage1", "manifest"), "rb") as f:
            manifest = ImageManifest.from_json(f.read())
    except FileNotFoundError:
        raise RktError(f'pod "{pod.uuid}" has no stage1 image manifest') from None
    return Stage1Image.from_manifest(manifest)


def _succeed(kind: str, code: int) -> None:
    if code != 0:
        raise RktError(f"the stage1 {kind} entrypoint exited with status {code}")


def entrypoint_path(pod: PodView, image: Stage1Image, kind: str) -> str:
    """The host path of an entrypoint, its symlinks resolved inside the stage1's root."""
    rootfs = pod.file("stage1", "rootfs")
    path = image.entrypoint(kind)
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        resolved = scoped.resolve(root, path)
        os.close(resolved.fd)
    except OSError as e:
        raise RktError(f'the {kind} entrypoint "{path}" of stage1 image "{image.name}": '
                       f"{e.strerror or e}") from None
    finally:
        os.close(root)
    return rootfs + resolved.path


def execute(pod: PodView, image: Stage1Image, kind: str, args: list[str],
            lock_fd: int | None = None, stdout: int = 1) -> int:
    """Run an entrypoint with ``args`` in the pod directory and return its exit status (128+N
    if killed by signal N). ``lock_fd`` stays open in it; ``stdout`` is the fd its stdout is."""
    argv = [entrypoint_path(pod, image, kind), *args]
    with proc.blocked_signals(proc.FORWARDED):
        pid, _ = spawn.spawn(lambda channel: _exec(channel, pod.path, argv, lock_fd, stdout))
        return proc.wait_forwarding(pid)


def _exec(channel, cwd: str, argv: list[str], lock_fd: int | None, stdout: int) -> None:
    proc.restore_default_signals()
    os.chdir(cwd)
    env = dict(os.environ, RKT_SELINUX_CONTEXT="", RKT_SELINUX_MOUNT_CONTEXT="")
    env.pop("RKT_LOCK_FD", None)
    keep = [channel.fileno()]
    if lock_fd is not None:
        os.set_inheritable(lock_fd, True)
        env["RKT_LOCK_FD"] = str(lock_fd)
        keep.append(lock_fd)
    if stdout != 1:
        os.dup2(stdout, 1)
    proc.close_fds_except(keep)
    try:
        os.execve(argv[0], argv, env)
    except OSError as e:
        raise RktError(f"executing the stage1 entrypoint {argv[0]}: {e.strerror}") from None


def pod_pid1(pod: PodView) -> int:
    """The pid of the pod's pid 1, as rkt finds it: ``pid``, else the only child of ``ppid``;
    waits while the pod runs without either yet."""
    while True:
        pid = _read_pid(pod, "pid")
        if pid is not None:
            return pid
        ppid = _read_pid(pod, "ppid")
        child = _only_child(ppid) if ppid is not None else None
        if child is not None:
            return child
        if not pod.is_locked():
            raise RktError(f'pod "{pod.uuid}" is not running any more')
        time.sleep(PID_POLL_SECONDS)


def _read_pid(pod: PodView, name: str) -> int | None:
    text = pod.read_text(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise RktError(f'pod "{pod.uuid}": malformed {name} file')
    return int(text)


def _only_child(ppid: int) -> int | None:
    """The only child of ``ppid`` (None while it has none yet)."""
    try:
        with open(f"/proc/{ppid}/task/{ppid}/children") as f:
            children = f.read().split()
    except FileNotFoundError:
        return None  # gone: the pod is exiting
    if len(children) > 1:
        raise RktError(f"too many children of pid {ppid}")
    return int(children[0]) if children else None


def dns_conf_mode(options: RunOptions) -> tuple[str, dict[str, str]]:
    """``--dns-conf-mode`` for the name service files stage0 chose (see ``RunOptions``), ""
    when both are the default: ``host`` for the host's, ``none``, or ``stage0`` for a copy in
    the stage1's ``/etc``; and those copies (file name -> the file stage0 wrote)."""
    resolv = hosts = "default"
    copies = {}
    if options.dns == ("host",):
        resolv = "host"
    elif options.dns == ("none",):
        resolv = "none"
    elif options.resolv_conf:
        resolv, copies[STAGE0_RESOLV_CONF] = "stage0", options.resolv_conf
    if options.hosts_entries == ("host",):
        hosts = "host"
    elif options.hosts_file:
        hosts, copies[STAGE0_HOSTS] = "stage0", options.hosts_file
    if (resolv, hosts) == ("default", "default"):
        return "", copies
    return f"resolv={resolv},hosts={hosts}", copies


def _copy_into_stage1_etc(pod: PodView, source: str, name: str) -> None:
    with open(source, "rb") as f:
        data = f.read()
    root = os.open(pod.file("stage1", "rootfs"), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        etc = scoped.open_dir(root, "/etc", create=True)
    finally:
        os.close(root)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=etc)
    finally:
        os.close(etc)
    with open(fd, "wb") as f:
        f.write(data)

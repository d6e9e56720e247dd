"""The kvm flavor: each pod in its own qemu VM.

``rkt run`` makes sure the kernel and initramfs are cached (:mod:`.assets`), chooses KVM or
emulation (:mod:`.accel`), adds tap devices to the pod's network namespace
(:mod:`.netsetup`) and forks the process that becomes qemu: it joins the pod's network
namespace, mounts the apps' roots in a mount namespace of its own and resolves what each app
runs (:mod:`.plan`), then execs qemu (:mod:`.vm`). ``rkt run`` stays as the VM's supervisor
(:mod:`.supervisor`): it hands the plan to the guest agent, relays the apps' output, records
their exit statuses and kills a VM that hangs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

from rkt_core.plugin_api import NotFoundError, RktError, RunOptions, Stage1Features
from rkt_core.plugin_api.fs import write_atomic
from rkt_core.plugin_api.linux import mount, ns, proc, spawn
from rkt_core.plugin_api.stage1 import (LINUX_ISOLATORS, app_limits, app_runtimes, chroot,
                                        flavor_settings)

from . import accel, assets, netsetup, plan, vm
from .supervisor import Supervisor

KVM_DIR = "kvm"  # the flavor's files in the pod directory
PLAN_FILE = "plan.json"
ENTER_SOCKET = "enter.sock"
QMP_SOCKET = "qmp.sock"
SUPERVISOR_FILE = "supervisor"  # the pid of rkt run, which supervises the VM
CONSOLE_LOG = "console.log"
LOG_DIR = "logs"  # each app's output, see .logs
CACHE_ENV = "RKT_STAGE1_KVM_CACHE"
DEFAULT_CACHE = "/var/cache/rkt/stage1-kvm"
EXIT_GRACE = 10.0  # seconds a VM whose QMP socket is closed may take to release the pod


def cache_dir() -> str:
    """Where the kernel, initramfs and probe result are cached."""
    return os.environ.get(CACHE_ENV) or DEFAULT_CACHE


def unix_socket(directory: str, name: str, listen: bool) -> socket.socket:
    """A unix socket bound (``listen``) or connected to ``directory/name``, through a
    descriptor of the directory: pod paths may be longer than a socket address can be."""
    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        address = f"/proc/self/fd/{dir_fd}/{name}"
        if listen:
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            sock.bind(address)
            sock.listen(4)
        else:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    return sock


class KvmStage1:
    """Pods of any number of apps in a VM: isolators, contained networks, --interactive."""

    features = Stage1Features(isolators=LINUX_ISOLATORS, contained_network=True,
                              host_network=False, interactive=True, multi_app=True,
                              own_hostname=True)

    # --- run ----------------------------------------------------------------------------------

    def run(self, pod, options: RunOptions) -> int:
        """Boot the pod's VM in the foreground; return the first failing app's exit status."""
        if options.lock_fd < 0:
            raise RktError("the kvm flavor needs the pod's lock fd")
        if "host" in options.net or not options.netns:
            raise RktError("the kvm flavor needs a contained network: --net=host is not "
                           "supported (use --net=default, a named network or --net=none)")
        apps = app_runtimes(pod)
        limits = [app_limits(a.name, a.isolators, "kvm") for a in apps]  # refused before booting
        cache = cache_dir()
        boot = assets.ensure(cache)
        settings = flavor_settings("kvm")
        chosen = accel.choose(cache, str(settings.get("accel", "")), lambda: accel.probe_boots(
            vm.probe_argv(boot.kernel, boot.initramfs)))
        directory = pod.file(KVM_DIR)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        write_atomic(os.path.join(directory, SUPERVISOR_FILE), str(os.getpid()).encode(),
                     durable=False)
        nics = netsetup.attach(pod, options.netns) if options.netns else []
        cpus, memory = vm.size(limits)
        control, control_vm = socket.socketpair()
        outputs = []  # (app, stream, our socket, qemu's socket)
        for index, app in enumerate(apps):
            for stream, name in zip((1, 2), plan.output_ports(index)):
                ours, theirs = socket.socketpair()
                outputs.append((app.name, stream, ours, theirs, name))
        enter = unix_socket(directory, ENTER_SOCKET, listen=True)
        qmp = unix_socket(directory, QMP_SOCKET, listen=True)
        machine = vm.Machine(
            name=f"rkt-{pod.uuid}", accel=chosen, cpus=cpus, memory=memory,
            kernel=boot.kernel, initramfs=boot.initramfs,
            console_log=os.path.join(directory, CONSOLE_LOG),
            stage2=os.path.dirname(os.path.dirname(apps[0].rootfs)) if apps else "",
            control_fd=control_vm.fileno(), enter_fd=enter.fileno(), qmp_fd=qmp.fileno(),
            output_fds=[(o[4], o[3].fileno()) for o in outputs], nics=nics,
            interactive=options.interactive)
        qemu_fds = [control_vm, enter, qmp, *(o[3] for o in outputs)]
        argv = vm.argv(machine)
        plan_path = os.path.join(directory, PLAN_FILE)
        try:
            pid, _ = spawn.spawn(lambda _channel: _start(pod, apps, options, nics, argv,
                                                         [s.fileno() for s in qemu_fds],
                                                         plan_path))
        finally:
            for s in qemu_fds:
                s.close()
        chroot.write_pid(pod, pid)
        with open(plan_path, "rb") as f:
            the_plan = json.load(f)
        supervisor = Supervisor(pod, pid, control, [(o[0], o[1], o[2]) for o in outputs],
                                directory)
        return supervisor.run(the_plan, [a.name for a in apps])

    # --- enter, stop, gc ----------------------------------------------------------------------

    def enter(self, pod, app: str, argv: list[str]) -> int:
        """Run ``argv`` in the VM, confined as the app: its root, user, groups, environment,
        capabilities and cgroup."""
        if app not in [a.name for a in app_runtimes(pod)]:
            raise NotFoundError(f'the pod has no app "{app}"')
        from .enter import enter_session

        try:
            sock = unix_socket(pod.file(KVM_DIR), ENTER_SOCKET, listen=False)
        except OSError as e:
            raise RktError(f'pod "{pod.uuid}": cannot reach its VM: {e.strerror}') from None
        with sock:
            return enter_session(sock, app, list(argv) or chroot.DEFAULT_ENTER_COMMAND)

    def stop(self, pod, force: bool) -> None:
        """Ask ``rkt run`` (the VM's supervisor) to stop the pod: the agent sends the apps
        SIGTERM (SIGKILL after a grace period) and powers the VM off; a VM still booting stops
        once it is up. Without a supervisor, press the VM's power button (ACPI), which the
        agent handles alike. ``force``: kill qemu."""
        if force:
            chroot.signal_app(pod, True)  # qemu is the pod's recorded process
            return
        if not _signal_supervisor(pod, signal.SIGTERM):
            try:
                power_button(pod)
            except RktError:
                if not _ends_soon(pod):
                    raise

    def logs(self, pod, app: str, lines: int, follow: bool, since: float | None,
             until: float | None):
        """What the apps wrote to stdout and stderr, as ``rkt run`` relayed it
        (``Stage1Logs``)."""
        from .logs import read_logs

        return read_logs(pod, pod.file(KVM_DIR, LOG_DIR), app, lines, follow, since, until)

    def gc(self, pod) -> None:
        """Nothing of an exited VM outlives qemu but what its mount namespace held; unmount
        anything left anyway. The taps went with the pod's network namespace."""
        mount.unmount_all_under(pod.path)


def _signal_supervisor(pod, sig: int) -> bool:
    """Signal the pod's ``rkt run``, if it is still the one that holds the pod's lock."""
    text = pod.read_text(KVM_DIR, SUPERVISOR_FILE)
    if not text or not text.isdigit():
        return False
    try:
        proc_fd = proc.open_process(int(text))
    except ProcessLookupError:
        return False
    try:
        if not proc.holds_open(proc_fd, os.fstat(pod.lock_fd)):
            return False
        proc.send_signal(proc_fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(proc_fd)


def _ends_soon(pod) -> bool:
    """Whether the pod's lock is released within :data:`EXIT_GRACE` seconds: a VM whose
    ``rkt run`` was killed is killed too (qemu's parent-death signal) and may already have
    closed its QMP socket while still holding the lock."""
    deadline = time.monotonic() + EXIT_GRACE
    while pod.is_locked():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def power_button(pod) -> None:
    """Press the VM's ACPI power button through QMP."""
    try:
        sock = unix_socket(pod.file(KVM_DIR), QMP_SOCKET, listen=False)
    except OSError as e:
        raise RktError(f'pod "{pod.uuid}": cannot reach its VM: {e.strerror}') from None
    with sock:
        sock.settimeout(10)
        stream = sock.makefile("rwb")
        stream.readline()  # the greeting
        for command in ("qmp_capabilities", "system_powerdown"):
            stream.write(json.dumps({"execute": command}).encode() + b"\n")
            stream.flush()
            reply = json.loads(stream.readline() or b"{}")
            while "event" in reply:
                reply = json.loads(stream.readline() or b"{}")
            if "return" not in reply:
                raise RktError(f'pod "{pod.uuid}": qemu refused {command}: {reply}')


def _start(pod, apps, options: RunOptions, nics: list[dict], argv: list[str],
           keep: list[int], plan_path: str) -> None:
    """In the child of ``rkt run``: join the pod's network namespace, mount the apps' roots
    in a mount namespace of our own, write the plan, exec qemu."""
    parent = os.getppid()
    proc.set_parent_death_signal(signal.SIGKILL)  # rkt dying during set-up aborts the start
    if options.netns:
        fd = os.open(options.netns, os.O_RDONLY | os.O_CLOEXEC)
        ns.setns(fd, "net")
        os.close(fd)
    ns.unshare(ns.CLONE_NEWNS)
    the_plan = plan.build(pod, apps, options, nics)
    with open(plan_path, "w") as f:
        json.dump(the_plan, f)
    for fd in (*keep, options.lock_fd):
        os.set_inheritable(fd, True)
    if not options.interactive:
        os.dup2(2, 1)  # only the apps write to rkt's stdout
    proc.set_parent_death_signal(signal.SIGTERM)  # rkt run killed: qemu shuts the VM down
    if os.getppid() != parent:
        raise RktError("rkt exited while the pod was starting")
    os.execv(argv[0], argv)

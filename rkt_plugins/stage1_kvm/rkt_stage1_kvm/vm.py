"""The qemu command line of a pod's VM, and its size the rkt way.

Machine ``microvm`` (no PCI, no firmware: the kernel starts through PVH) with virtio-mmio
devices: a 9p share of the pod's app roots, a virtio-serial device whose ports carry the
control channel, each app's stdout and stderr, ``rkt enter`` sessions and (``--interactive``)
the app's terminal, and a virtio-net NIC per tap device. The kernel's console goes to
``kvm/console.log`` in the pod directory; QMP listens on ``kvm/qmp.sock`` (``rkt stop``).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field

from rkt_core.plugin_api import RktError

QEMU = "qemu-system-x86_64"
DEFAULT_APP_MEMORY = 128 << 20  # rkt's default per app without a memory limit
MEMORY_OVERHEAD = 128 << 20  # the VM's own system
KERNEL_ARGS = ("console=ttyS0", "quiet", "panic=-1", "pci=off", "cryptomgr.notests",
               "8250.nr_uarts=1", "nomodeset")
# Under emulation: the TSC is the host's (its frequency is given, see tsc_khz) and steady, and
# the timer interrupt works; checking either costs seconds of emulated time.
EMULATION_KERNEL_ARGS = ("tsc=reliable", "no_timer_check")


@dataclass
class Machine:
    """What the VM is made of."""

    name: str
    accel: str
    cpus: int
    memory: int  # bytes
    kernel: str
    initramfs: str
    console_log: str
    stage2: str  # host directory shared as the guest's /opt/stage2
    control_fd: int
    enter_fd: int  # listening socket
    qmp_fd: int  # listening socket
    output_fds: list[tuple[str, int]] = field(default_factory=list)  # port name, socket
    nics: list[dict] = field(default_factory=list)  # tap, mac
    interactive: bool = False
    kernel_args: tuple[str, ...] = ()


def size(limits: list, host_cpus: int | None = None) -> tuple[int, int]:
    """vCPUs and RAM for apps with these ``AppLimits``, as rkt sized its VMs: the apps' CPU
    limits rounded up to whole CPUs (the host's CPUs when no app has one, or at most those),
    their memory limits (128 MiB for an app without) plus 128 MiB for the VM."""
    host_cpus = host_cpus or os.cpu_count() or 1
    cpus = sum(math.ceil(l.cpu_millis / 1000) for l in limits if l.cpu_millis)
    if not cpus or cpus > host_cpus:
        cpus = host_cpus
    memory = sum(l.memory_bytes or DEFAULT_APP_MEMORY for l in limits) + MEMORY_OVERHEAD
    return cpus, memory


def qemu() -> str:
    """The qemu binary."""
    path = shutil.which(QEMU)
    if path is None:
        raise RktError(f"the kvm flavor needs {QEMU} (Debian package qemu-system-x86)")
    return path


def tsc_khz() -> int:
    """The host's TSC frequency: under emulation the guest's TSC is the host's, and the
    guest kernel cannot measure it on a machine without a PIT or HPET."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError):
        pass
    return 0


def kernel_command_line(accel: str, extra: tuple[str, ...] = ()) -> str:
    """The guest kernel's arguments."""
    args = list(KERNEL_ARGS)
    if accel == "tcg":
        args += EMULATION_KERNEL_ARGS
        if tsc_khz():
            args.append(f"tsc_early_khz={tsc_khz()}")
    return " ".join(args + list(extra))


def machine_args(accel: str) -> list[str]:
    """``-machine``, ``-accel`` and ``-cpu``."""
    machine = ["-machine", "microvm,pit=off,pic=off,rtc=off"]
    if accel == "kvm":
        return [*machine, "-accel", "kvm", "-cpu", "host"]
    return [*machine, "-accel", "tcg,thread=multi", "-cpu", "max"]


def argv(m: Machine) -> list[str]:
    """The qemu command that boots the VM."""
    args = [qemu(), "-name", m.name, *machine_args(m.accel), "-smp", str(m.cpus),
            "-m", f"{max(1, m.memory >> 20)}M", "-nodefaults", "-no-user-config",
            "-nographic", "-no-reboot", "-kernel", m.kernel, "-initrd", m.initramfs,
            "-append", kernel_command_line(m.accel, m.kernel_args),
            "-chardev", f"file,id=console,path={m.console_log}", "-serial", "chardev:console",
            "-fsdev", f"local,id=stage2,path={m.stage2},security_model=passthrough,"
                      "multidevs=remap",
            "-device", "virtio-9p-device,fsdev=stage2,mount_tag=stage2",
            "-device", f"virtio-serial-device,max_ports={len(m.output_fds) + 4}",
            "-chardev", f"socket,id=control,fd={m.control_fd}",
            "-device", "virtserialport,chardev=control,name=rkt.control",
            "-chardev", f"socket,id=enter,fd={m.enter_fd},server=on,wait=off",
            "-device", "virtserialport,chardev=enter,name=rkt.enter",
            "-chardev", f"socket,id=qmp,fd={m.qmp_fd},server=on,wait=off",
            "-mon", "chardev=qmp,mode=control"]
    for i, (name, fd) in enumerate(m.output_fds):
        args += ["-chardev", f"socket,id=out{i},fd={fd}",
                 "-device", f"virtserialport,chardev=out{i},name={name}"]
    if m.interactive:
        args += ["-chardev", "stdio,id=tty,signal=off", "-device", "virtconsole,chardev=tty"]
    for i, nic in enumerate(m.nics):
        args += ["-netdev", f"tap,id=net{i},ifname={nic['tap']},script=no,downscript=no",
                 "-device", f"virtio-net-device,netdev=net{i},mac={nic['mac']}"]
    return args


def probe_argv(kernel: str, initramfs: str, accel: str = "kvm") -> list[str]:
    """A VM that only says it booted (:data:`.assets.PROBE_MARKER`), under KVM."""
    return [qemu(), *machine_args(accel), "-smp", "1", "-m", "128M", "-nodefaults",
            "-no-user-config", "-nographic", "-no-reboot", "-kernel", kernel,
            "-initrd", initramfs, "-serial", "stdio",
            "-append", kernel_command_line(accel, ("rkt.probe",))]

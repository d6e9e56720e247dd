"""What an app's isolators mean for its processes: capability bounding set, memory and CPU
limits, for every flavor that applies them.

rkt's default capability set applies unless the app has ``os/linux/capabilities-retain-set``
(exactly those) or ``os/linux/capabilities-remove-set`` (the default set minus those).
"""

from __future__ import annotations

from ..appc.isolators import CAPABILITIES_REMOVE_SET, CAPABILITIES_RETAIN_SET, CPU, MEMORY
from ..errors import RktError
from ..records import dataclass

# Linux capability numbers (linux/capability.h).
CAPABILITIES = {name: number for number, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE"))}

DEFAULT_CAPABILITIES = ("CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
                        "CAP_FOWNER", "CAP_KILL", "CAP_MKNOD", "CAP_NET_RAW",
                        "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP",
                        "CAP_SETFCAP", "CAP_SYS_CHROOT")

LINUX_ISOLATORS = frozenset({CPU, MEMORY, CAPABILITIES_RETAIN_SET, CAPABILITIES_REMOVE_SET})


@dataclass(frozen=True)
class AppLimits:
    """An app's resource limits and capabilities, as its service applies them."""

    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    memory_bytes: int | None = None
    cpu_millis: int | None = None

    @property
    def capability_mask(self) -> int:
        """The bounding set as a bit mask (as CapBnd in /proc/<pid>/status shows it)."""
        mask = 0
        for name in self.capabilities:
            mask |= 1 << CAPABILITIES[name]
        return mask

    @property
    def cpu_quota_percent(self) -> int | None:
        """``CPUQuota=`` for the CPU limit: 1000 millicores are 100 %."""
        return None if self.cpu_millis is None else max(1, -(-self.cpu_millis // 10))


def _capability(app: str, name: str) -> str:
    upper = name.strip().upper()
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAPABILITIES:
        raise RktError(f'app "{app}": unknown capability "{name}"')
    return upper


def app_limits(app: str, isolators, flavor: str) -> AppLimits:
    """The limits of an app from its isolators (unknown capabilities and both capability sets
    at once are errors; isolators outside :data:`LINUX_ISOLATORS` are refused, naming
    ``flavor``)."""
    caps = DEFAULT_CAPABILITIES
    memory = cpu = None
    sets = [i.name for i in isolators if i.name in (CAPABILITIES_RETAIN_SET,
                                                    CAPABILITIES_REMOVE_SET)]
    if len(set(sets)) > 1:
        raise RktError(f'app "{app}": capabilities-retain-set and capabilities-remove-set '
                       "cannot be used together")
    for isolator in isolators:
        if isolator.name not in LINUX_ISOLATORS:
            raise RktError(f'app "{app}": the {flavor} flavor cannot apply isolator '
                           f'"{isolator.name}"')
        if isolator.name == CAPABILITIES_RETAIN_SET:
            caps = tuple(dict.fromkeys(_capability(app, c) for c in isolator.capabilities))
        elif isolator.name == CAPABILITIES_REMOVE_SET:
            removed = {_capability(app, c) for c in isolator.capabilities}
            caps = tuple(c for c in DEFAULT_CAPABILITIES if c not in removed)
        elif isolator.name == MEMORY and isolator.limit is not None:
            memory = isolator.limit.value
            if memory < 4096:
                raise RktError(f'app "{app}": memory limit {memory} is less than 4096 bytes')
        elif isolator.name == CPU and isolator.limit is not None:
            cpu = isolator.limit.milli_value
            if cpu <= 0:
                raise RktError(f'app "{app}": the CPU limit must be positive')
    return AppLimits(caps, memory, cpu)

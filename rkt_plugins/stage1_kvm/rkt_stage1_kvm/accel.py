"""KVM or software emulation (TCG): KVM where it works, decided by booting a probe VM with a
timeout (nested KVM may exist and hang), once per host boot.

The answer comes from, in this order: ``RKT_STAGE1_KVM_ACCEL`` (``kvm`` or ``tcg``), the
``accel`` setting of the kvm flavor in the ``stage1`` configuration (``stage1.d/*.json``:
``{"rktKind": "stage1", "rktVersion": "v1", "flavors": {"kvm": {"accel": "tcg"}}}``), the cached result of the
probe for this boot (``accel-<boot id>`` in the cache directory), the probe.
"""

from __future__ import annotations

import glob
import os
import subprocess

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.fs import write_atomic

from .assets import PROBE_MARKER

ENV = "RKT_STAGE1_KVM_ACCEL"
CHOICES = ("kvm", "tcg")
PROBE_TIMEOUT = 15  # seconds: a KVM VM boots its probe in well under one
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def choose(cache_dir: str, setting: str, probe) -> str:
    """``kvm`` or ``tcg``; ``probe()`` says whether KVM boots (called at most once a boot)."""
    for value, where in ((os.environ.get(ENV, ""), ENV), (setting, 'the "accel" setting')):
        if value:
            if value not in CHOICES:
                raise RktError(f'{where}: "{value}" is not one of {", ".join(CHOICES)}')
            return value
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    with open(BOOT_ID) as f:
        boot = f.read().strip()
    cached = os.path.join(cache_dir, f"accel-{boot}")
    try:
        with open(cached) as f:
            value = f.read().strip()
        if value in CHOICES:
            return value
    except FileNotFoundError:
        pass
    value = "kvm" if probe() else "tcg"
    for old in glob.glob(os.path.join(cache_dir, "accel-*")):
        if old != cached:
            os.unlink(old)
    write_atomic(cached, value.encode(), durable=False)
    return value


def probe_boots(argv: list[str], timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the probe VM ``argv`` (a qemu command whose guest prints
    :data:`PROBE_MARKER` and powers off) does so within ``timeout``; a hung one is killed."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return False  # subprocess.run killed and reaped it
    return PROBE_MARKER.encode() in done.stdout

"""The kvm flavor's tests share one cache of kernel and initramfs (built once per run) and use
software emulation: KVM hangs on this kind of machine (nested), and the probe that finds that
out is tested on its own (test_kvm.py)."""

import os

import pytest

CACHE = "/var/tmp/rkt-test-stage1-kvm"


@pytest.fixture(autouse=True, scope="session")
def _kvm_environment():
    saved = {k: os.environ.get(k) for k in ("RKT_STAGE1_KVM_CACHE", "RKT_STAGE1_KVM_ACCEL")}
    os.environ["RKT_STAGE1_KVM_CACHE"] = CACHE
    os.environ["RKT_STAGE1_KVM_ACCEL"] = "tcg"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

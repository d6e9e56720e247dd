"""kvm flavor: ``rkt run`` of a one-app pod from start to the app's exit, and where the time
goes (qemu and firmware, kernel, init, handshake, set-up, app, shutdown: ``kvm/timings.json``
that each run leaves in the pod), under software emulation and, where it works, KVM. Medians
over a few runs; the host's load average is printed beside them (emulation is CPU-bound, so a
busy host stretches every phase). Nothing is asserted. Needs root. Stands alone.

    python bench/kvm.py [RUNS]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rkt_core.testing.aci import app_image

RKT = [sys.executable, "-m", "rkt_core.cli.main"]
PHASES = ("firmware", "kernel", "init", "handshake", "setup", "apps", "shutdown")
TARGET = 6.0  # seconds from start to exit under emulation (issue 12)


def one_run(rkt: list[str], image: Path, net: str, env: dict) -> tuple[float, float, dict]:
    """Wall seconds of one ``rkt run``, the CPU seconds it and qemu used, and the phases the
    pod recorded."""
    uuid_file = image.parent / "uuid"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*rkt, "run", "--stage1-name=kvm", f"--net={net}",
                    f"--uuid-file-save={uuid_file}", str(image), "--exec", "/bin/true"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    uuid = uuid_file.read_text().strip()
    uuid_file.unlink()
    (pod,) = Path(rkt[-1].removeprefix("--dir=")).glob(f"pods/*/{uuid}")
    return wall, cpu, json.loads((pod / "kvm" / "timings.json").read_text())


def bench(rkt: list[str], image: Path, net: str, accel: str, runs: int) -> None:
    env = dict(os.environ, RKT_STAGE1_KVM_ACCEL=accel)
    walls, cpus, phases = [], [], {p: [] for p in PHASES}
    loads = []
    for _ in range(runs):
        wall, cpu, recorded = one_run(rkt, image, net, env)
        walls.append(wall)
        cpus.append(cpu)
        loads.append(os.getloadavg()[0])
        for p in PHASES:
            phases[p].append(recorded.get(p, 0.0))
    wall = statistics.median(walls)
    print(f"rkt run --stage1-name=kvm --net={net} ({accel}): {wall:6.2f} s median of {runs} "
          f"(min {min(walls):.2f} s; target {TARGET:.0f} s under emulation; load average "
          f"{statistics.median(loads):.1f} on {os.cpu_count()} CPUs; CPU time of rkt and qemu "
          f"{statistics.median(cpus):.2f} s)")
    print("   " + "  ".join(f"{p} {statistics.median(v):.2f}" for p, v in phases.items())
          + f"  rkt itself {wall - sum(statistics.median(v) for v in phases.values()):.2f}")


def kvm_works(rkt: list[str], image: Path) -> bool:
    env = dict(os.environ, RKT_STAGE1_KVM_ACCEL="kvm")
    try:
        done = subprocess.run([*rkt, "run", "--stage1-name=kvm", "--net=none", str(image),
                               "--exec", "/bin/true"],
                              env=dict(env, RKT_STAGE1_KVM_BOOT_TIMEOUT="15"),
                              capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/kvm.py needs root")
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="rkt-bench-kvm-"))
    rkt = [*RKT, "--insecure-options=image", f"--dir={work / 'data'}"]
    try:
        image = app_image(work / "busybox.aci")
        one_run(rkt, image, "none", dict(os.environ, RKT_STAGE1_KVM_ACCEL="tcg"))  # warm caches
        bench(rkt, image, "none", "tcg", runs)
        bench(rkt, image, "default", "tcg", runs)
        if kvm_works(rkt, image):
            bench(rkt, image, "none", "kvm", runs)
        else:
            print("KVM: does not boot on this host (nested KVM hangs); not measured")
    finally:
        subprocess.run([*rkt, "gc", "--grace-period=0s"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

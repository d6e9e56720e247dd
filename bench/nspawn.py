"""nspawn flavor: ``rkt run`` of a one-app pod against plain ``systemd-nspawn --boot`` of the
same units and against ``systemd-nspawn --as-pid2`` of the same app (whole-process medians,
ratios printed, nothing asserted). Needs root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RKT, median_seconds, report, require_root  # noqa: E402

from rkt_core.testing.stage1_contract import contract_image  # noqa: E402

RUNS = 10


def main() -> None:
    require_root()
    work = Path(tempfile.mkdtemp(prefix="rkt-bench-nspawn-"))
    try:
        image = contract_image(work / "busybox.aci")
        rkt = [*RKT, f"--dir={work / 'data'}", "--insecure-options=image"]
        run = [*rkt, "run", "--net=host", str(image), "--exec", "/bin/true"]
        subprocess.run(run, check=True, capture_output=True)  # imports and renders the image
        pod = next((work / "data" / "pods" / "run").iterdir())
        stage1 = pod / "stage1" / "rootfs"
        app_root = work / "approot"
        shutil.copytree(pod / "overlay" / "busybox" / "upper", app_root, dirs_exist_ok=True,
                        symlinks=True)
        tree = next((work / "data" / "cas" / "tree").iterdir()) / "rootfs"
        subprocess.run(["cp", "-a", f"{tree}/.", str(app_root)], check=True)
        unit = stage1 / "etc" / "systemd" / "system" / "busybox.service"
        unit.write_text("".join(  # no rkt run reads the FIFOs here
            line for line in unit.read_text().splitlines(keepends=True)
            if not line.startswith(("StandardOutput=", "StandardError="))))
        # plain nspawn --boot of the units rkt generated, in a private mount namespace with the
        # app's root bound where the units expect it
        boot = ["unshare", "-m", "sh", "-c",
                "mount --make-rslave / && mount -t tmpfs tmpfs /run/systemd/nspawn && "
                f"mount --bind {app_root} {stage1}/opt/stage2/busybox/rootfs && "
                f"exec systemd-nspawn -q --register=no --keep-unit -D {stage1} --bind-ro=/usr "
                "--boot -- --log-target=null --show-status=0"]
        pid2 = ["unshare", "-m", "sh", "-c",
                "mount --make-rslave / && mount -t tmpfs tmpfs /run/systemd/nspawn && "
                f"exec systemd-nspawn -q --register=no --keep-unit -D {app_root} --as-pid2 "
                "/bin/true"]
        os.makedirs("/run/systemd/nspawn", exist_ok=True)
        t_rkt = median_seconds(run, RUNS)
        t_net = median_seconds([*rkt, "run", "--net=default", str(image), "--exec", "/bin/true"],
                               RUNS)
        t_boot = _median(boot)
        t_pid2 = median_seconds(pid2, RUNS)
        report("systemd-nspawn --as-pid2 /bin/true", t_pid2)
        report("systemd-nspawn --boot (rkt's units)", t_boot, ("--as-pid2", t_pid2))
        report("rkt run (nspawn, one app, --net=host)", t_rkt, ("nspawn --boot", t_boot),
               target=0.300)
        report("rkt run (nspawn, one app, --net=default)", t_net, ("--net=host", t_rkt),
               target=0.300)
        report("rkt run vs --as-pid2", t_rkt, ("--as-pid2", t_pid2))
    finally:
        subprocess.run([*RKT, f"--dir={work / 'data'}", "gc", "--grace-period=0s"],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _median(argv: list[str]) -> float:
    """Like median_seconds, but the pod's exit status (the app's) is not checked."""
    import statistics
    import time

    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()

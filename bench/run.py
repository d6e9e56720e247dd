"""Pod start to exit with the fly flavor, against the OCI runtimes and a bare chroot on the
same busybox rootfs.

Usage: python bench/run.py   (as root; DESIGN.md target for fly: <= 100 ms)
rkt runs an image already in the store (rendered by a first run); crun and runc run an OCI
bundle made with ``crun spec`` (pid, ipc, uts, mount and network namespaces); ``unshare -m`` +
``chroot`` is what fly does at the least. Every run executes ``/bin/true``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RKT, have, median_seconds, report, require_root

from rkt_core.testing.aci import busybox_aci, busybox_rootfs

RUNS = 20


def oci_bundle(path: Path) -> Path:
    """A bundle running /bin/true in a busybox rootfs, without a terminal."""
    path.mkdir()
    busybox_rootfs(path / "rootfs")
    subprocess.run(["crun", "spec"], cwd=path, check=True)
    config = json.loads((path / "config.json").read_text())
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    (path / "config.json").write_text(json.dumps(config))
    return path


def main() -> None:
    require_root()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        image = busybox_aci(tmp / "busybox.aci", exec=["/bin/true"])
        rkt_run = [*RKT, f"--dir={data}", "--insecure-options=image", "run", "--stage1-name=fly",
                   "example.com/busybox:1.0"]
        subprocess.run([*RKT, f"--dir={data}", "--insecure-options=image", "fetch", str(image)],
                       check=True, capture_output=True)
        subprocess.run(rkt_run, check=True, capture_output=True)  # renders the tree once
        rkt = median_seconds(rkt_run, RUNS)
        bundle = oci_bundle(tmp / "bundle")
        chroot = median_seconds(["unshare", "-m", "chroot", str(bundle / "rootfs"), "/bin/true"], RUNS)
        print(f"median of {RUNS} runs")
        report("rkt run --stage1-name=fly", rkt, ("unshare -m chroot", chroot), target=0.100)
        for runtime in ("crun", "runc"):
            if not have(runtime):
                print(f"{runtime}: not installed (make setup installs it)")
                continue
            argv = [runtime, "run", "--bundle", str(bundle), f"rkt-bench-{os.getpid()}"]
            trial = subprocess.run(argv, capture_output=True, text=True)
            if trial.returncode != 0:  # crun refuses cgroup v1/v2 hybrid hosts
                print(f"{runtime}: cannot run here: {(trial.stderr or trial.stdout).strip()}")
                continue
            report("rkt run --stage1-name=fly", rkt, (f"{runtime} run", median_seconds(argv, RUNS)))
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()

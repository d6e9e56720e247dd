"""Fetch + render of an image against ``tar -xzf`` of the same image, and a second run.

Usage: python bench/fetch_render.py [ROOTFS_DIR]
Without ROOTFS_DIR a Debian minbase rootfs is made once with debootstrap (cached in
/var/cache/rkt-bench/debian). DESIGN.md target: fetch + render <= 1.3x tar -xzf; a second render
of a rendered image re-extracts nothing.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RKT, report, require_root

from rkt_core.testing.aci import build_aci, image_manifest

CACHE = Path("/var/cache/rkt-bench/debian")
ROUNDS = 3


def debian_rootfs() -> Path:
    if not (CACHE / "etc" / "debian_version").exists():
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(CACHE),
                        "http://deb.debian.org/debian"], check=True)
    return CACHE


def timed(argv, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def one_round(aci: Path, tmp: Path) -> tuple[float, float, float, float]:
    """(tar -xzf, tar -xzf + sync, rkt fetch, render) on fresh directories."""
    from rkt_core.store.imagestore import ImageStore
    from rkt_core.store.treestore import TreeStore

    out = tmp / "tar-out"
    data = tmp / "data"
    for path in (out, data):
        shutil.rmtree(path, ignore_errors=True)
    out.mkdir()
    subprocess.run(["sync"])
    tar = timed(["tar", "-xzf", str(aci), "-C", str(out)])
    start = time.perf_counter()
    os.sync()  # rkt makes the blob and the tree durable; plain tar does not
    tar_sync = tar + time.perf_counter() - start
    fetch = timed([*RKT, f"--dir={data}", "--insecure-options=image", "fetch", str(aci)],
                  stderr=subprocess.DEVNULL)
    key = subprocess.run([*RKT, f"--dir={data}", "image", "list", "--full", "--no-legend",
                          "--fields=id"], capture_output=True, text=True).stdout.strip()
    start = time.perf_counter()
    TreeStore(ImageStore(str(data))).render(key)
    return tar, tar_sync, fetch, time.perf_counter() - start


def main() -> None:
    require_root()
    rootfs = Path(sys.argv[1]) if len(sys.argv) > 1 else debian_rootfs()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        aci = build_aci(tmp / "image.aci", image_manifest("example.com/bench", exec=["/bin/true"]), rootfs)
        print(f"image: {aci.stat().st_size / 1e6:.0f} MB compressed (median of {ROUNDS} rounds)",
              flush=True)
        rounds = [one_round(aci, tmp) for _ in range(ROUNDS)]
        tar, tar_sync, fetch, render = (statistics.median(r[i] for r in rounds) for i in range(4))
        both = statistics.median(r[2] + r[3] for r in rounds)
        report("rkt fetch", fetch, ("tar -xzf", tar))
        report("rkt fetch + render", both, ("tar -xzf", tar), target=1.3 * tar)
        report("rkt fetch + render", both, ("tar -xzf + sync", tar_sync))
        from rkt_core.store.imagestore import ImageStore
        from rkt_core.store.treestore import TreeStore

        store = ImageStore(str(tmp / "data"))
        trees = TreeStore(store)
        key = store.list_images()[0].key
        start = time.perf_counter()
        trees.render(key)
        report("second render (already rendered)", time.perf_counter() - start)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()

"""Start-up cost: ``rkt version``, ``rkt image list`` with 200 images, ``rkt list`` with 200 pods.

Usage: python bench/startup.py   (DESIGN.md targets: 60 ms, 150 ms, 100 ms)
"""

import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

from common import RKT, median_seconds, report

from rkt_core.store.imagestore import ImageStore
from rkt_core.testing.aci import build_aci, image_manifest

IMAGES = PODS = 200


def fill_store(data: Path, work: Path) -> None:
    store = ImageStore(str(data))
    for i in range(IMAGES):
        aci = build_aci(work / f"{i}.aci", image_manifest(f"example.com/img{i}", "1.0", ["/x"]),
                        files={"f": str(i).encode()})
        with open(aci, "rb") as f, store.staging(f) as staged:
            store.commit(staged)
        aci.unlink()


def fill_pods(data: Path) -> None:
    """Exited pods as stage0 leaves them (a manifest, its app's image manifest, times)."""
    for i in range(PODS):
        pod = data / "pods" / "run" / str(uuid.uuid4())
        (pod / "appsinfo" / "app").mkdir(parents=True)
        manifest = {"acVersion": "0.7.4", "acKind": "PodManifest", "apps": [{
            "name": "app", "image": {"name": "example.com/img", "id": "sha512-" + "a" * 64},
            "app": {"exec": ["/x"], "user": "0", "group": "0"}}]}
        (pod / "pod").write_text(json.dumps(manifest))
        (pod / "appsinfo" / "app" / "manifest").write_text(json.dumps(image_manifest("example.com/img", exec=["/x"])))
        (pod / "pod-created").write_text("")
        (pod / "pid").write_text("1")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, work = Path(tmp) / "data", Path(tmp) / "work"
        work.mkdir()
        report("rkt version", median_seconds([*RKT, "version"]), target=0.060)
        fill_store(data, work)
        report(f"rkt image list ({IMAGES} images)",
               median_seconds([*RKT, f"--dir={data}", "image", "list"]), target=0.150)
        fill_pods(data)
        report(f"rkt list ({PODS} pods)", median_seconds([*RKT, f"--dir={data}", "list"]), target=0.100)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()

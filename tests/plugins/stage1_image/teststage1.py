"""Stage1 images for tests, built from ``stage1_entrypoints.py`` (a small stage1 written against
rkt's stage1 contract; its entrypoints run with the host's ``/usr/bin/python3``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from rkt_core.testing.aci import build_aci, image_manifest

NAME = "example.com/rkt/stage1-test"
PROGRAM = (Path(__file__).parent / "stage1_entrypoints.py").read_text()
ANNOTATION = "coreos.com/rkt/stage1/"


def stage1_aci(out: Path, *, interface_version: int | None = 5, gc_log: Path | None = None,
               name: str = NAME, version: str = "1.0", stop: bool = True,
               entrypoints: dict[str, str] | None = None, ppid: bool = False,
               symlinks: dict[str, str] | None = None) -> Path:
    """A stage1 ACI: entrypoints ``/init`` (run: an absolute symlink to ``/stage1/run``, as
    inside the image only), ``/stage1/enter``, ``/stage1/gc`` and, with ``stop``,
    ``/stage1/stop``; ``interface_version`` None leaves the annotation out (version 1).
    ``entrypoints`` overrides annotations (kind -> path). ``gc_log``: where gc logs its calls.
    ``ppid``: the stage1 records ``ppid`` instead of ``pid``. ``symlinks``: more symlinks in
    its root (path -> target)."""
    out = Path(out)
    rootfs = out.parent / (out.name + ".d") / "rootfs"
    (rootfs / "stage1").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    for kind in ("run", "enter", "gc", "stop"):
        script = rootfs / "stage1" / kind
        script.write_text("#!/usr/bin/python3 -I\n" + PROGRAM)
        script.chmod(0o755)
    for link, target in {"/init": "/stage1/run", **(symlinks or {})}.items():
        (rootfs / link.lstrip("/")).symlink_to(target)
    (rootfs / "etc" / "gc-log").write_text(f"{gc_log or '/dev/null'}\n")
    if ppid:
        (rootfs / "etc" / "ppid-mode").write_text("")
    paths = {"run": "/init", "enter": "/stage1/enter", "gc": "/stage1/gc"}
    if stop:
        paths["stop"] = "/stage1/stop"
    paths.update(entrypoints or {})
    annotations = [{"name": ANNOTATION + kind, "value": path} for kind, path in paths.items()]
    if interface_version is not None:
        annotations.append({"name": ANNOTATION + "interface-version",
                            "value": str(interface_version)})
    build_aci(out, image_manifest(name, version, annotations=annotations), rootfs)
    shutil.rmtree(rootfs.parent)
    return out

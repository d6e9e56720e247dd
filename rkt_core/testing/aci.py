"""Build App Container Images for tests and demos from what the machine has (``busybox-static``).

Public helpers for rkt's own tests and for plugin authors::

    from rkt_core.testing.aci import build_aci, busybox_rootfs, image_manifest

    rootfs = busybox_rootfs(tmp_path / "rootfs")
    build_aci(tmp_path / "busybox.aci", image_manifest("example.com/busybox"), rootfs)
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = "/bin/busybox"
MARKER = "only-in-the-app-root"  # the content of /etc/marker in an app_image


def image_manifest(name: str, version: str = "1.0", exec: list[str] | None = None,
                   user: str = "0", group: str = "0", labels: dict[str, str] | None = None,
                   **extra) -> dict:
    """An ImageManifest as a dict, with linux/amd64 labels and an ``app`` when ``exec`` is given.

    ``extra`` keys are merged in at the top level (``dependencies``, ``annotations``, ...); an
    ``app`` key there replaces the generated one.
    """
    all_labels = {"version": version, "os": "linux", "arch": "amd64", **(labels or {})}
    manifest: dict = {
        "acKind": "ImageManifest",
        "acVersion": "0.7.4",
        "name": name,
        "labels": [{"name": k, "value": v} for k, v in all_labels.items() if v is not None],
    }
    if exec is not None:
        manifest["app"] = {"exec": exec, "user": user, "group": group}
    manifest.update(extra)
    return manifest


def busybox_rootfs(root: Path, applets: list[str] | None = None) -> Path:
    """A minimal rootfs with a static busybox in ``/bin`` and its applets as symlinks."""
    root = Path(root)
    (root / "bin").mkdir(parents=True, exist_ok=True)
    for d in ("etc", "tmp", "proc", "sys", "dev"):
        (root / d).mkdir(exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    if applets is None:
        out = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout
        applets = [a for a in out.split() if a != "busybox"]
    for applet in applets:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    return root


def _tar_bytes(manifest: dict | bytes, rootfs: Path | None, files: dict[str, bytes] | None) -> bytes:
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if rootfs is not None:
            tar.add(str(rootfs), arcname="rootfs", recursive=True)
        else:
            info = tarfile.TarInfo("rootfs")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for name, data in (files or {}).items():
            info = tarfile.TarInfo(f"rootfs/{name.lstrip('/')}")
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
        data = manifest if isinstance(manifest, bytes) else json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo("manifest")
        info.size, info.mode, info.mtime = len(data), 0o644, now
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(data: bytes, compression: str | None) -> bytes:
    """Compress with ``gzip``, ``bzip2``, ``xz`` or not at all (None)."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "bzip2":
        return bz2.compress(data)
    if compression == "xz":
        return lzma.compress(data)
    if compression is None:
        return data
    raise ValueError(f"unknown compression {compression}")


def build_aci(out: Path, manifest: dict | bytes, rootfs: Path | None = None,
              files: dict[str, bytes] | None = None, compression: str | None = "gzip") -> Path:
    """Write an ACI: a tar of ``manifest`` and ``rootfs/`` (from a directory and/or ``files``)."""
    out = Path(out)
    out.write_bytes(compress(_tar_bytes(manifest, rootfs, files), compression))
    return out


def busybox_aci(out: Path, name: str = "example.com/busybox", version: str = "1.0",
                exec: list[str] | None = None, compression: str | None = "gzip",
                workdir: Path | None = None, **extra) -> Path:
    """A runnable busybox ACI (``exec`` defaults to ``/bin/sh -c 'echo hi'``)."""
    out = Path(out)
    work = Path(workdir) if workdir else out.parent / (out.name + ".d")
    rootfs = busybox_rootfs(work / "rootfs")
    manifest = image_manifest(name, version, exec or ["/bin/sh", "-c", "echo hi"], **extra)
    build_aci(out, manifest, rootfs, compression=compression)
    shutil.rmtree(work)
    return out


def app_image(path: Path, name: str = "example.com/busybox",
              files: dict[str, str] | None = None, **app) -> Path:
    """A busybox ACI whose root holds ``/etc/marker`` (:data:`MARKER`, a file only the app's
    root has), users ``root`` and ``user`` (1000, group ``users``), and ``files`` (path in the
    root: text), and whose app section is ``/bin/sh -c 'echo hi'`` as root updated with
    ``app`` (``exec``, ``user``, ``ports``, ``mountPoints``, ``eventHandlers``,
    ``isolators``...)."""
    path = Path(path)
    work = path.parent / (path.name + ".d")
    rootfs = busybox_rootfs(work / "rootfs")
    (rootfs / "etc" / "marker").write_text(MARKER + "\n")
    for file_path, text in (files or {}).items():
        (rootfs / file_path.lstrip("/")).write_text(text)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                           "user:x:1000:1000:user:/home/user:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nusers:x:1000:\n")
    manifest = image_manifest(name, app={"exec": ["/bin/sh", "-c", "echo hi"], "user": "0",
                                         "group": "0", **app})
    build_aci(path, manifest, rootfs)
    shutil.rmtree(work)
    return path


def tar_uncompressed_sha512(path: Path) -> str:
    """The image ID rkt gives an ACI file: ``sha512-`` + the hex sha512 of its uncompressed tar."""
    return image_id(Path(path).read_bytes())


def image_id(data: bytes) -> str:
    """The image ID of an ACI given as (compressed or plain) bytes."""
    import hashlib

    for opener in (gzip.decompress, bz2.decompress, lzma.decompress):
        try:
            data = opener(data)
            break
        except (OSError, ValueError, lzma.LZMAError):
            continue
    return "sha512-" + hashlib.sha512(data).hexdigest()

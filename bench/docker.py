"""``rkt fetch docker://`` against ``skopeo copy`` of the same image to a local directory.

Usage: python bench/docker.py [ROOTFS_DIR]
Two images are pushed to a local docker-registry (127.0.0.1, no auth, plain http): the busybox
test image (3 layers, whiteouts) and a realistic one, a Debian minbase rootfs (ROOTFS_DIR, else
the debootstrap cache of fetch_render.py) plus a second layer. Printed: the cold fetch (empty
store and blob cache), the refetch of an unchanged tag (one manifest request), a tag whose
layers are in the blob cache, each against ``skopeo copy`` to ``dir:`` and to ``oci:`` followed
by ``umoci unpack`` (what a fetch that ends in a usable rootfs costs with the reference tools).
Needs root (umoci keeps ownership).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RKT, median_seconds, report, require_root

from rkt_core.testing.registry import Registry, build_test_image, local_env

ENV = local_env()  # no proxies: every request goes to the registry on 127.0.0.1


def debian_image(rootfs: Path, layout: Path) -> None:
    """An OCI layout tag ``debian``: the rootfs, then a layer that changes a few files."""
    image = f"{layout}:debian"
    bundle = layout.parent / "debian.bundle"
    for argv in (["umoci", "init", "--layout", layout], ["umoci", "new", "--image", image],
                 ["umoci", "unpack", "--image", image, bundle]):
        subprocess.run([str(a) for a in argv], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cp", "-a", f"{rootfs}/.", str(bundle / "rootfs")], check=True)
    subprocess.run(["umoci", "repack", "--refresh-bundle", "--image", image, str(bundle)],
                   check=True)
    shutil.rmtree(bundle / "rootfs/usr/share/doc")
    (bundle / "rootfs/etc/motd").write_text("bench\n")
    subprocess.run(["umoci", "repack", "--image", image, str(bundle)], check=True)
    subprocess.run(["umoci", "config", "--image", image, "--config.cmd=/bin/true"], check=True)
    shutil.rmtree(bundle)


def bench(registry: Registry, name: str, tag: str, other_tag: str, tmp: Path, runs: int) -> None:
    ref = f"{registry.address}/{name}"
    data, out = tmp / "data", tmp / "out"
    fetch = [*RKT, f"--dir={data}", "--insecure-options=image,http", "fetch",
             "--pull-policy=update"]

    def clean(*paths):
        def setup():
            for path in paths:
                shutil.rmtree(path, ignore_errors=True)
        return setup

    skopeo = median_seconds(["skopeo", f"--policy={tmp / 'policy.json'}", "copy", "--quiet",
                             "--src-tls-verify=false",
                             f"docker://{ref}:{tag}", f"dir:{out}"], runs, clean(out), env=ENV)
    unpack_ref = median_seconds(["sh", "-c", f"mkdir {out} && skopeo "
                                 f"--policy={tmp / 'policy.json'} copy --quiet "
                                 "--src-tls-verify=false "
                                 f"docker://{ref}:{tag} oci:{out}/oci:x && umoci unpack "
                                 f"--image {out}/oci:x {out}/bundle >/dev/null"],
                                runs, clean(out), env=ENV)
    cold = median_seconds([*fetch, f"docker://{ref}:{tag}"], runs, clean(data), env=ENV)
    report(f"{name}: rkt fetch (cold)", cold, ("skopeo copy to dir:", skopeo))
    report(f"{name}: rkt fetch (cold)", cold, ("skopeo copy + umoci unpack", unpack_ref))
    report(f"{name}: rkt fetch, unchanged tag", median_seconds([*fetch, f"docker://{ref}:{tag}"],
                                                               runs, env=ENV),
           ("skopeo copy", skopeo))

    def drop_image():  # keep the store and the blob cache, remove the converted images
        listed = subprocess.run([*RKT, f"--dir={data}", "image", "list", "--no-legend", "--full",
                                 "--fields=id"], check=True, capture_output=True, text=True)
        if listed.stdout.split():
            subprocess.run([*RKT, f"--dir={data}", "image", "rm", *listed.stdout.split()],
                           check=True, capture_output=True)

    cached = median_seconds([*fetch, f"docker://{ref}:{other_tag}"], runs, drop_image, env=ENV)
    report(f"{name}: rkt fetch, layers in the blob cache", cached, ("skopeo copy", skopeo))
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    require_root()
    rootfs = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if rootfs is None:
        sys.path.insert(0, os.path.dirname(__file__))
        from fetch_render import debian_rootfs

        rootfs = debian_rootfs()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp, Registry() as registry:
        tmp = Path(tmp)
        layout = build_test_image(tmp / "busybox")
        registry.push_test_images(layout)
        debian = tmp / "debian"
        debian_image(rootfs, debian)
        policy = tmp / "policy.json"
        policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        for tag in ("latest", "v2s2"):
            form = ["--format=v2s2"] if tag == "v2s2" else []
            subprocess.run(["skopeo", f"--policy={policy}", "copy", "--quiet",
                            "--dest-tls-verify=false", *form, f"oci:{debian}:debian",
                            f"docker://{registry.address}/bench/debian:{tag}"],
                           check=True, env=ENV)
        size = sum(f.stat().st_size for f in (debian / "blobs/sha256").iterdir())
        print(f"debian image: {size / 1e6:.0f} MB compressed", flush=True)
        bench(registry, "test/busybox", "latest", "v2s2", tmp, runs=10)
        bench(registry, "bench/debian", "latest", "v2s2", tmp, runs=5)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()

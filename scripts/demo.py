"""The README's demo: build a signed busybox image, trust its key, fetch it, list it, run it
(nspawn flavor).

Everything lives under ./demo (data dir, config dir, keys), so the host's /var/lib/rkt and
/etc/rkt are left alone. Each rkt command is printed before it runs.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from rkt_core.testing.aci import busybox_aci
from rkt_core.testing.gpg import GpgSigner

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
RKT = str(Path(sys.executable).parent / "rkt")
GLOBAL = [f"--dir={DEMO / 'data'}", f"--local-config={DEMO / 'etc'}"]


def rkt(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run and echo one rkt command; stop the demo if it fails."""
    argv = [RKT, *GLOBAL, *args]
    print("$", shlex.join(["rkt", *GLOBAL, *args]).replace(str(ROOT) + "/", ""), flush=True)
    result = subprocess.run(argv, **kwargs)
    if result.returncode != 0:
        sys.exit(f"demo: command failed with exit code {result.returncode}")
    return result


def main() -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    image = busybox_aci(DEMO / "busybox.aci", name="example.com/busybox", version="1.0",
                        exec=["/bin/sh", "-c", "echo Hello from a busybox pod"])
    with GpgSigner(DEMO / "gnupg", uid="rkt demo <demo@example.com>") as signer:
        (DEMO / "demo-key.asc").write_bytes(signer.export_public())
        signer.sign(image)
    print(f"built {image.relative_to(ROOT)} and its signature {image.name}.asc", flush=True)
    rkt("trust", "--prefix=example.com/busybox", "--skip-fingerprint-review",
        str(DEMO / "demo-key.asc"))
    rkt("fetch", str(image))
    rkt("image", "list")
    rkt("image", "cat-manifest", "example.com/busybox:1.0")
    # The example pod, with the default (nspawn) flavor: limits seen from inside, exit status.
    run = [RKT, *GLOBAL, "run", "--net=host", "example.com/busybox:1.0", "--memory=64M",
           "--cpu=500m", "--exec", "/bin/sh", "--", "-c",
           "echo Hello from a busybox pod; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; exit 3"]
    print("$", shlex.join(["rkt", *run[1:]]).replace(str(ROOT) + "/", ""), flush=True)
    result = subprocess.run(run)
    print(f"exit status {result.returncode} (the app's)", flush=True)
    if result.returncode != 3:
        sys.exit("demo: the pod did not exit with its app's status")


if __name__ == "__main__":
    main()

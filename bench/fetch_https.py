"""``rkt fetch https://...`` of a signed image against ``curl`` downloading the same bytes plus
``rkt fetch`` of the downloaded file, from a loopback HTTPS server.

Usage: python bench/fetch_https.py [SIZE_MIB]   (default 64; random, incompressible content)
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RKT, median_seconds, report

from rkt_core.testing.aci import build_aci, image_manifest
from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.httpserver import TestCA, TestServer

NAME = "example.com/bench"


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    tmp = Path(tempfile.mkdtemp(prefix="rkt-bench-https-"))
    try:
        aci = build_aci(tmp / "bench.aci", image_manifest(NAME, "1.0"),
                        files={"blob": os.urandom(size << 20)})
        ca = TestCA(tmp / "ca")
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["REQUESTS_CA_BUNDLE"] = str(ca.ca_path)
        with GpgSigner(tmp / "gpg") as signer, TestServer(ca=ca) as server:
            (tmp / "key.asc").write_bytes(signer.export_public())
            sig = signer.sign(aci)
            server.add("/bench.aci", aci.read_bytes())
            server.add("/bench.aci.asc", sig.read_bytes())
            flags = [f"--local-config={tmp / 'etc'}", f"--system-config={tmp / 'sys'}"]
            subprocess.run([*RKT, *flags, "trust", f"--prefix={NAME}", "--skip-fingerprint-review",
                            str(tmp / "key.asc")], check=True, capture_output=True)
            data = tmp / "data"

            def fresh():
                shutil.rmtree(data, ignore_errors=True)

            url = server.url("/bench.aci")
            rkt = median_seconds([*RKT, *flags, f"--dir={data}", "fetch", url], runs=5,
                                 setup=fresh, env=env)
            local = tmp / "dl.aci"
            curl = median_seconds(["curl", "-sf", "--cacert", str(ca.ca_path), "-o", str(local),
                                   url], runs=5)
            shutil.copy(sig, tmp / "dl.aci.asc")
            file_fetch = median_seconds([*RKT, *flags, f"--dir={data}", "fetch", str(local)],
                                        runs=5, setup=fresh)
        report(f"rkt fetch https ({size} MiB, signed)", rkt,
               ("curl + rkt fetch file", curl + file_fetch))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

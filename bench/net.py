"""Pod start to exit with and without contained networking, against the bare cost of the same
CNI work done by hand.

Usage: python bench/net.py   (as root; DESIGN.md: nspawn pod <= 300 ms, with --net=default
<= 350 ms, podman with its bridge ~350 ms)

Every pod runs ``/bin/true``. The flavors: ``nettest`` (the networking tests' flavor: apps on
the host's filesystem, joined to the pod's namespace, so the figures are stage0's and the CNI
plugins' cost, not a container's) and, when installed, ``nspawn``. Each runs with
``--net=host``, ``--net=none`` (a namespace with ``lo``), ``--net=default`` (ptp + host-local +
masquerading, Debian's plugins) and ``--net=default`` plus a forwarded port. ``rkt run``
returns once the networks are released again, so the figures include the teardown.

The reference does the same work without rkt: ``ip netns add``, the ptp plugin's ADD, the app
in the namespace, DEL, ``ip netns delete`` (what podman's CNI backend does around a
container).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, median_seconds, report, require_root

from rkt_core.testing.aci import busybox_aci

RUNS = 15
WITH_NETTEST = ROOT / "tests" / "plugins" / "net_cni" / "rkt_with_nettest.py"
REFERENCE_NS = f"rktbench-{os.getpid()}"
TARGETS = {"nspawn": {"--net=host": 0.300, "--net=default": 0.350}}  # DESIGN.md


def reference_script(tmp: Path) -> list[str]:
    """A shell command doing a pod network's setup and teardown by hand."""
    conf = tmp / "ref.conf"
    conf.write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "rktbench", "type": "ptp", "ipMasq": True,
        "ipam": {"type": "host-local", "subnet": "10.213.0.0/24", "dataDir": str(tmp / "leases"),
                 "routes": [{"dst": "0.0.0.0/0"}]}}))
    env = (f"CNI_CONTAINERID=rktbench CNI_NETNS=/run/netns/{REFERENCE_NS} CNI_IFNAME=eth0 "
           "CNI_PATH=/usr/lib/cni")
    script = (f"set -e; ip netns add {REFERENCE_NS}; "
              f"{env} CNI_COMMAND=ADD /usr/lib/cni/ptp < {conf} > /dev/null; "
              f"ip netns exec {REFERENCE_NS} /bin/true; "
              f"{env} CNI_COMMAND=DEL /usr/lib/cni/ptp < {conf}; ip netns delete {REFERENCE_NS}")
    return ["sh", "-c", script]


def interleaved(commands: list[list[str]], runs: int) -> list[float]:
    """The median time of each command, run in turns (a load change hits all alike)."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for argv, samples in zip(commands, times):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            samples.append(time.perf_counter() - start)
    return [statistics.median(samples) for samples in times]


def flavors() -> list[str]:
    done = subprocess.run(
        [sys.executable, str(WITH_NETTEST), "plugins"], capture_output=True, text=True)
    return ["nettest"] + (["nspawn"] if "stage1-nspawn" in done.stdout else [])


def main() -> None:
    require_root()
    leases = Path("/var/lib/cni/networks")
    had_default = (leases / "default").exists()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        data, local = tmp / "data", tmp / "etc"
        (local / "net.d").mkdir(parents=True)
        image = busybox_aci(tmp / "busybox.aci", exec=["/bin/true"], app={
            "exec": ["/bin/true"], "user": "0", "group": "0",
            "ports": [{"name": "http", "protocol": "tcp", "port": 80}]})
        rkt = [sys.executable, str(WITH_NETTEST), f"--dir={data}", f"--local-config={local}",
               "--insecure-options=image"]
        subprocess.run([*rkt, "fetch", str(image)], check=True, capture_output=True)
        reference = median_seconds(reference_script(tmp), RUNS)
        print(f"median of {RUNS} runs, each pod runs /bin/true")
        report("by hand: netns + ptp ADD + app + DEL", reference)
        for flavor in flavors():
            run = [*rkt, "run", f"--stage1-name={flavor}", "example.com/busybox:1.0"]
            subprocess.run(run, check=True, capture_output=True)  # renders the tree once
            variants = [["--net=host"], ["--net=none"], ["--net=default"],
                        ["--net=default", "--port=http:18999"]]
            medians = interleaved([[*run[:-1], *extra, run[-1]] for extra in variants], RUNS)
            host = medians[0]
            targets = TARGETS.get(flavor, {})
            report(f"rkt run --stage1-name={flavor} --net=host", host,
                   target=targets.get("--net=host"))
            for extra, seconds in zip(variants[1:], medians[1:]):
                report(f"rkt run --stage1-name={flavor} {' '.join(extra)}", seconds,
                       ("--net=host", host), target=targets.get(" ".join(extra)))
                print(f"{'':<48} networking adds {(seconds - host) * 1000:6.1f} ms "
                      f"({(seconds - host) / reference:4.2f}x by hand)")
            subprocess.run([*rkt, "gc", "--grace-period=0s"], capture_output=True)
    if not had_default and (leases / "default").is_dir() and \
            set(os.listdir(leases / "default")) <= {"lock", "last_reserved_ip.0"}:
        shutil.rmtree(leases / "default")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()

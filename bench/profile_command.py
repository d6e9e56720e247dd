"""Where the time of one rkt command goes: its imports and its functions.

Usage (as root for pods; with the rkt of this Python's environment, e.g. make bench's)::

    .bench-venv/bin/python bench/profile_command.py [--fresh=PATH] RKT_ARGS...
    .bench-venv/bin/python bench/profile_command.py --dir=/tmp/d run --stage1-name=fly IMAGE
    .bench-venv/bin/python bench/profile_command.py --fresh=/tmp/d --dir=/tmp/d fetch x.aci

Runs ``rkt RKT_ARGS`` twice: under ``python -X importtime`` (printed: the modules imported by
rkt, grouped by package, with their cumulative import time) and under cProfile (printed: the
functions with the largest cumulative time, imports included). ``--fresh`` removes PATH before
each run, for commands whose first run changes what the second would do (a fetch).
"""

from __future__ import annotations

import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

RKT = os.path.join(os.path.dirname(sys.executable), "rkt")
# sys.path as the console script has it: the plugin index is kept per sys.path.
PROFILED = """
import sys
sys.path[0] = BIN_DIR
from rkt_core.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
"""
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)")


def group(module: str) -> str:
    """The group a module's import time is counted in: its subpackage for rkt's own
    (``rkt_core.appc``), its top-level package for the others (``click``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0].startswith("rkt_") else parts[0]


def import_times(stderr: str) -> tuple[int, dict[str, int]]:
    """From ``-X importtime`` output: the total import time, and the cumulative time of the
    modules imported first-hand (not by another module) summed per :func:`group`, in µs."""
    total, groups = 0, defaultdict(int)
    for match in _IMPORT_LINE.finditer(stderr):
        total += int(match.group(1))
        if len(match.group(3)) == 1:
            groups[group(match.group(4))] += int(match.group(2))
    return total, dict(groups)


def main(args: list[str]) -> int:
    fresh = args.pop(0).removeprefix("--fresh=") if args and args[0].startswith("--fresh=") else ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if fresh:
        shutil.rmtree(fresh, ignore_errors=True)
    done = subprocess.run([sys.executable, "-X", "importtime", RKT, *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    total, groups = import_times(done.stderr)
    print(f"imports: {total / 1000:.1f} ms in all (rkt exited with {done.returncode})")
    for name, micros in sorted(groups.items(), key=lambda item: -item[1])[:20]:
        print(f"  {micros / 1000:7.1f} ms  {name}")
    if fresh:
        shutil.rmtree(fresh, ignore_errors=True)
    with tempfile.NamedTemporaryFile(suffix=".prof") as out, \
            tempfile.NamedTemporaryFile("w", suffix=".py") as runner:
        # The console script leaves with os._exit, before cProfile could write its figures:
        # profile the function it calls instead.
        runner.write(PROFILED.replace("BIN_DIR", repr(os.path.dirname(RKT))))
        runner.flush()
        subprocess.run([sys.executable, "-P", "-m", "cProfile", "-o", out.name, runner.name,
                        *args], env=env, stdout=subprocess.DEVNULL)
        print("\ncProfile, by cumulative time:")
        pstats.Stats(out.name).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Start-up stays lean: each command imports only what it uses (DESIGN.md, issue 18)."""

import json
import subprocess
import sys

import pytest

HEAVY = ("requests", "urllib3", "sqlalchemy", "pyroute2", "pluggy", "stevedore", "gnupg",
         "cryptography", "ctypes")

PROGRAM = """
import json, sys
sys.argv = ["rkt", *sys.argv[1:]]
from rkt_core.cli.main import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def imported_packages(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``rkt ARGS`` in a fresh interpreter: its result and the top-level packages it
    imported."""
    result = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True,
                            text=True, check=True)
    modules = json.loads(result.stdout.splitlines()[-1])
    return result, {m.split(".")[0] for m in modules}


def test_rkt_version_imports_no_heavy_library():
    result, packages = imported_packages("version")
    assert "rkt Version:" in result.stdout
    assert packages.isdisjoint(HEAVY)
    assert "typing" not in packages  # with re and enum, 8% of the command


@pytest.mark.parametrize("args", [
    ["version"], ["list"], ["list", "--format=json"], ["status", "0123"], ["image", "list"],
])
def test_common_commands_run_without_click(tmp_path, args):
    result, packages = imported_packages(f"--dir={tmp_path}", *args)
    assert "click" not in packages, result.stderr


@pytest.mark.parametrize("args", [["list"], ["list", "--full", "--format=json"], ["status", "0123"]])
def test_list_and_status_load_no_plugin_and_no_heavy_library(tmp_path, args):
    result, packages = imported_packages(f"--dir={tmp_path}", *args)
    assert packages.isdisjoint(HEAVY), result.stderr
    assert not any(p.startswith("rkt_") and p != "rkt_core" for p in packages)


def test_help_still_goes_through_click(tmp_path):
    result, packages = imported_packages("list", "--help")
    assert "click" in packages
    assert "--no-legend" in result.stdout


def test_nspawn_flavor_and_cni_backend_declare_records_without_dataclasses():
    """Their record classes are ``rkt_core.records`` ones: ``dataclasses`` compiles methods for
    each class, 2-3.5M instructions apiece (the nspawn flavor's import was 19M, now 8M)."""
    program = ("import sys, rkt_core.cli.run, rkt_core.stage0.run; before = set(sys.modules); "
               "import rkt_stage1_nspawn.stage1, rkt_net_cni.plugin, rkt_net_cni.hookspecs, "
               "rkt_net_cni.backend; print(sorted(set(sys.modules) - before))")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True)
    added = set(json.loads(result.stdout.replace("'", '"')))
    assert "rkt_stage1_nspawn.units" in added and "rkt_net_cni.result" in added
    assert "dataclasses" not in added

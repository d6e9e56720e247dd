"""The public plugin API: the plugins of this repository (and its examples) use it and nothing
else of rkt_core; it holds what its docstring promises."""

import importlib
import tomllib
from pathlib import Path

import pytest

from rkt_core.testing.imports import internal_imports, internal_imports_in

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in [*ROOT.glob("rkt_plugins/*/rkt_*"), *ROOT.glob("examples/*/rkt_*")]
                  if (p / "__init__.py").exists())
ENTRY_MODULES = sorted(
    module for project in [*ROOT.glob("rkt_plugins/*/pyproject.toml"),
                           *ROOT.glob("examples/*/pyproject.toml")]
    for module in tomllib.loads(project.read_text())["project"]["entry-points"]["rkt.plugins"]
    .values())


def test_there_are_plugins_to_check():
    assert len(PACKAGES) >= 5


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_plugins_import_only_the_public_api(package):
    assert internal_imports(str(package)) == []


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_entry_modules_say_which_plugin_api_they_were_written_for(module):
    assert importlib.import_module(module).RKT_PLUGIN_API == 1


@pytest.mark.parametrize("source,found", [
    ("import rkt_core.network\n", ["x.py:1: rkt_core.network"]),
    ("from rkt_core.sys.mount import _unescape\n", ["x.py:1: rkt_core.sys.mount"]),
    ("from rkt_core import hookspecs, plugin_api\n", ["x.py:1: rkt_core.hookspecs"]),
    ("def f():\n    from rkt_core.cli.main import get_context\n", ["x.py:2: rkt_core.cli.main"]),
    ("from rkt_core.plugin_api import hookimpl\nfrom rkt_core.plugin_api.stage1 import chroot\n"
     "import rkt_core.plugin_api.linux\nfrom .sibling import x\n", []),
])
def test_the_check_catches_private_imports(source, found):
    assert internal_imports_in(source, "x.py") == found


def test_the_api_modules_export_what_they_list():
    for name in ("", ".stage1", ".network", ".fetch", ".appc", ".cli", ".linux", ".fs"):
        module = importlib.import_module("rkt_core.plugin_api" + name)
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == [], name

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
    (module, project.parent) for project in [*ROOT.glob("rkt_plugins/*/pyproject.toml"),
                                             *ROOT.glob("examples/*/pyproject.toml")]
    for module in tomllib.loads(project.read_text())["project"]["entry-points"]["rkt.plugins"]
    .values())


def test_there_are_plugins_to_check():
    assert len(PACKAGES) >= 5


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_plugins_import_only_the_public_api(package):
    assert internal_imports(str(package)) == []


@pytest.mark.parametrize("module,project", ENTRY_MODULES, ids=[m for m, _ in ENTRY_MODULES])
def test_entry_modules_say_which_plugin_api_they_were_written_for(module, project, monkeypatch):
    monkeypatch.syspath_prepend(str(project))  # examples are not installed
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
    for name in ("", ".stage1", ".pods", ".images", ".network", ".fetch", ".appc", ".cli",
                 ".linux", ".fs"):
        module = importlib.import_module("rkt_core.plugin_api" + name)
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == [], name


def test_pods_seen_cheaply_and_by_exact_uuid(tmp_path):
    from types import SimpleNamespace

    from rkt_core.plugin_api.pods import pod_dirs, pod_state
    from rkt_core.pod.pod import Pod

    ctx = SimpleNamespace(data_dir=str(tmp_path))
    pod = Pod.create(str(tmp_path))
    assert pod_dirs(ctx) == [("prepare", pod.uuid)]
    assert pod_state(ctx, pod.uuid) == "preparing"
    pod.close()
    assert pod_state(ctx, pod.uuid) == "aborted prepare"
    assert pod_state(ctx, pod.uuid[:8]) is None


def test_global_flags_as_given():
    from rkt_core.context import Context
    from rkt_core.insecure import Insecure
    from rkt_core.plugin_api.cli import global_flags

    ctx = Context(dir="/tmp", local_config="/l", insecure=Insecure.IMAGE | Insecure.TLS,
                  trust_keys_from_https=True)
    flags = global_flags(ctx)
    assert (flags.dir, flags.local_config, flags.insecure_options, flags.trust_keys_from_https) \
        == ("/tmp", "/l", "image,tls", True)
    assert global_flags(Context(dir="/tmp")).insecure_options == "none"

"""A plugin shipped as its own distribution is found once installed; a broken one is reported
while every command keeps working."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def make_dist(root: Path, dist: str, package: str, entry: str, module_source: str) -> Path:
    src = root / dist
    (src / package).mkdir(parents=True)
    (src / package / "__init__.py").write_text(textwrap.dedent(module_source))
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{dist}"
        version = "1.2.3"
        [project.entry-points."rkt.plugins"]
        {entry} = "{package}"
    """))
    return src


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    good = make_dist(root, "rkt-stage1-example", "rkt_stage1_example", "stage1-example", """
        from rkt_core.plugin_api import Stage1Flavor, hookimpl

        RKT_PLUGIN_API = 1

        @hookimpl
        def rkt_stage1_flavors():
            return [Stage1Flavor(name="example", factory=lambda: None)]
    """)
    broken = make_dist(root, "rkt-broken", "rkt_broken", "broken",
                       "raise ImportError('this plugin is deliberately broken')\n")
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(good), str(broken)],
                   check=True)
    return target


@pytest.fixture
def rkt(rkt, plugin_path):
    """The kit's runner, with the plugins of ``plugin_path`` installed."""
    rkt.add_plugin_path(plugin_path)
    return rkt


def test_installed_plugin_is_found_with_its_version_and_hooks(rkt):
    out = rkt("plugins", "--no-legend")
    assert out.returncode == 0, out.stderr
    rows = {line.split("\t")[0]: line for line in out.stdout.splitlines()}
    assert "rkt-stage1-example 1.2.3" in rows["stage1-example"]
    assert "flavor example" in rows["stage1-example"]
    assert "loaded" in rows["stage1-example"]


def test_broken_plugin_is_reported_and_commands_still_work(rkt):
    out = rkt("plugins", "--no-legend")
    broken = [line for line in out.stdout.splitlines() if line.startswith("broken")]
    assert broken and "failed: import failed: ImportError: this plugin is deliberately broken" in broken[0]
    listing = rkt("image", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("ID")


def test_disabled_plugin_is_not_imported(rkt):
    out = rkt("--disable-plugin=stage1-example,broken", "plugins", "--no-legend")
    rows = {line.split("\t")[0]: line for line in out.stdout.splitlines()}
    assert rows["stage1-example"].endswith("disabled")
    assert rows["broken"].endswith("disabled")

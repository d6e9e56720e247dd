"""Each distribution stands alone: wheels of rkt-core and of every plugin, installed in
combinations into fresh virtual environments from a local wheelhouse (``--no-index``), each
running rkt for real; uninstalling a plugin leaves the rest working, and a plugin written for
another plugin API is refused with a clear message while the others work.

The wheels are built once per session (``pip wheel --no-deps``); their dependencies are resolved
into the wheelhouse once too, through pip's cache.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from rkt_core.testing.runner import Rkt

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p.parent for p in (ROOT / "rkt_plugins").glob("*/pyproject.toml"))
PIP_TIMEOUT = 600


def _project(directory: Path) -> dict:
    with open(directory / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _plugin_names(directory: Path) -> set[str]:
    return set(_project(directory)["entry-points"]["rkt.plugins"])


BUILTINS = _plugin_names(ROOT)
# distribution -> its plugin (entry point) name
ENTRY_POINTS = {_project(d)["name"]: name for d in PLUGINS for name in _plugin_names(d)}


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=PIP_TIMEOUT)
    assert done.returncode == 0, f"pip {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Wheels of rkt-core, of every plugin and of what they depend on."""
    house = tmp_path_factory.mktemp("wheelhouse")
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(house),
         str(ROOT), *map(str, PLUGINS))
    ours = sorted(map(str, house.glob("*.whl")))
    _pip("wheel", "--quiet", "--wheel-dir", str(house), "--find-links", str(house), *ours)
    return house


def _venv(path: Path, wheelhouse: Path, *distributions: str) -> Path:
    """A fresh virtual environment at ``path`` with rkt-core and ``distributions`` installed
    from the wheelhouse only; its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    _pip("--python", str(python), "install", "--quiet", "--no-index", "--find-links",
         str(wheelhouse), "rkt-core", *distributions)
    return python


def _rkt(tmp_path: Path, python: Path) -> Rkt:
    return Rkt(tmp_path / "rkt", python=str(python))


def _plugins(rkt: Rkt) -> dict[str, str]:
    """``rkt plugins``: name -> the rest of its row."""
    out = rkt("plugins", "--no-legend", check=0).stdout
    return {line.split("\t")[0]: line for line in out.splitlines() if line.strip()}


def _smoke(rkt: Rkt, installed: set[str]) -> None:
    """``rkt version`` works and ``rkt plugins`` lists exactly what is installed, loaded."""
    assert rkt("version", check=0).stdout.startswith("rkt Version: ")
    rows = _plugins(rkt)
    assert set(rows) == BUILTINS | {ENTRY_POINTS[d] for d in installed}
    assert all(row.rstrip().endswith("loaded") for row in rows.values()), rows


def test_every_plugin_states_the_core_versions_it_supports(wheelhouse):
    for wheel in wheelhouse.glob("rkt_*.whl"):
        if wheel.name.startswith("rkt_core-"):
            continue
        with zipfile.ZipFile(wheel) as archive:
            (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            requires = [line for line in archive.read(metadata).decode().splitlines()
                        if line.startswith("Requires-Dist: rkt-core")]
        assert requires == ["Requires-Dist: rkt-core<0.2,>=0.1"], wheel.name


def test_core_alone(wheelhouse, tmp_path, busybox_image):
    rkt = _rkt(tmp_path, _venv(tmp_path / "venv", wheelhouse))
    _smoke(rkt, set())
    result = rkt("run", busybox_image)
    assert result.returncode == 254
    assert 'stage1 flavor "nspawn" is not installed' in result.stderr
    assert "pip install rkt-stage1-nspawn" in result.stderr
    assert rkt.pods() == []


def test_core_and_fly(wheelhouse, tmp_path, busybox_image):
    rkt = _rkt(tmp_path, _venv(tmp_path / "venv", wheelhouse, "rkt-stage1-fly"))
    _smoke(rkt, {"rkt-stage1-fly"})
    result = rkt("run", "--stage1-name=fly", busybox_image, check=0)
    assert result.stdout == "hi\n"
    result = rkt("run", "--net=default", "--stage1-name=fly", busybox_image)
    assert result.returncode == 254 and "--net" in result.stderr


def test_core_nspawn_and_cni(wheelhouse, tmp_path, busybox_image):
    installed = {"rkt-stage1-nspawn", "rkt-net-cni"}
    rkt = _rkt(tmp_path, _venv(tmp_path / "venv", wheelhouse, *installed))
    _smoke(rkt, installed)
    result = rkt("run", "--net=default", busybox_image, "--exec", "/bin/sh", "--", "-c",
                 "ip -o -4 addr show eth0 | grep -c 172.16.28.", check=0)
    assert result.stdout == "1\n"
    rkt("gc", "--grace-period=0s", check=0)


def test_everything_then_a_plugin_for_another_api_then_one_uninstalled(wheelhouse, tmp_path,
                                                                        busybox_image):
    python = _venv(tmp_path / "venv", wheelhouse, *ENTRY_POINTS)
    rkt = _rkt(tmp_path, python)
    _smoke(rkt, set(ENTRY_POINTS))
    assert rkt("run", "--stage1-name=fly", busybox_image, check=0).stdout == "hi\n"

    future = _future_plugin(tmp_path / "future")
    _pip("--python", str(python), "install", "--quiet", "--no-index", "--no-deps", str(future))
    rows = _plugins(rkt)
    assert ("was written for rkt plugin API 2; rkt-core 0.1.0 supports plugin API 1"
            in rows["stage1-future"]), rows["stage1-future"]
    assert all(row.rstrip().endswith("loaded") for name, row in rows.items()
               if name != "stage1-future")
    assert rkt("run", "--stage1-name=fly", busybox_image, check=0).stdout == "hi\n"

    _pip("--python", str(python), "uninstall", "--quiet", "--yes", "rkt-stage1-fly",
         "rkt-test-future")
    _smoke(rkt, set(ENTRY_POINTS) - {"rkt-stage1-fly"})
    result = rkt("run", "--stage1-name=fly", busybox_image)
    assert result.returncode == 254 and "pip install rkt-stage1-fly" in result.stderr
    result = rkt("run", "--net=default", busybox_image, check=0)
    assert result.stdout == "hi\n"
    rkt("gc", "--grace-period=0s", check=0)


def _future_plugin(directory: Path) -> Path:
    """A wheel of a flavor written for plugin API 2."""
    package = directory / "src" / "rkt_test_future"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent("""
        from rkt_core.plugin_api import Stage1Flavor, hookimpl

        RKT_PLUGIN_API = 2

        @hookimpl
        def rkt_stage1_flavors():
            return [Stage1Flavor("future", lambda: None)]
    """))
    (directory / "src" / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=77"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "rkt-test-future"
        version = "2.0.0"
        dependencies = ["rkt-core"]
        [project.entry-points."rkt.plugins"]
        stage1-future = "rkt_test_future"
    """))
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
         str(directory), str(directory / "src"))
    (wheel,) = directory.glob("*.whl")
    return wheel

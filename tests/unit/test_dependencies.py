"""Each distribution declares what its code imports, and nothing it does not: rkt-core's runtime
dependencies are those of its runtime code; its pytest kit (``rkt_core.testing``) needs the
``testing`` extra on top."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KIT = "rkt_core/testing"
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in ROOT.glob("rkt_plugins/*/pyproject.toml"))]


def requirement_name(requirement: str) -> str:
    """``SQLAlchemy>=2.0`` -> ``sqlalchemy`` (normalised as PEP 503 does)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level_imports(source: str) -> set[str]:
    """The top-level names of the absolute imports in ``source`` (lazy ones included)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def third_party(files: list[Path], own: set[str]) -> dict[str, str]:
    """{distribution: a file importing it} for the imports of ``files`` that are neither the
    standard library nor ``own`` packages."""
    owners = importlib.metadata.packages_distributions()
    found = {}
    for path in files:
        for name in top_level_imports(path.read_text(encoding="utf-8")):
            if name in sys.stdlib_module_names or name in own or name == "__future__":
                continue
            for dist in owners.get(name, [name]):
                found.setdefault(requirement_name(dist), str(path.relative_to(ROOT)))
    return found


def project(directory: Path) -> dict:
    return tomllib.loads((directory / "pyproject.toml").read_text())["project"]


def packages(directory: Path) -> list[Path]:
    return sorted(p.parent for p in directory.glob("rkt_*/__init__.py"))


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda d: d.name)
def test_runtime_imports_are_the_declared_dependencies(directory):
    meta = project(directory)
    files = [f for package in packages(directory) for f in package.rglob("*.py")
             if not f.relative_to(ROOT).as_posix().startswith(KIT + "/")]
    own = {p.name for p in packages(directory)} | {"rkt_core"}
    imported = third_party(files, own)
    declared = {requirement_name(r) for r in meta.get("dependencies", [])}
    declared.discard("rkt-core")  # the plugins' host, imported as rkt_core
    assert {d: f for d, f in imported.items() if d not in declared} == {}, "undeclared"
    assert declared - set(imported) == set(), "declared but not imported by runtime code"


def test_the_pytest_kit_needs_only_the_testing_extra():
    meta = project(ROOT)
    imported = third_party(sorted((ROOT / KIT).rglob("*.py")), {"rkt_core"})
    runtime = {requirement_name(r) for r in meta["dependencies"]}
    testing = {requirement_name(r) for r in meta["optional-dependencies"]["testing"]}
    assert set(imported) - runtime - testing == set()
    assert testing - set(imported) == set(), "in the testing extra but not used by the kit"
    assert "rkt-core[testing]" in meta["optional-dependencies"]["test"]


@pytest.mark.parametrize("source,names", [
    ("import a.b\nfrom c.d import e\nfrom . import f\nfrom .g import h\n", {"a", "c"}),
    ("def f():\n    import cryptography.x509\n", {"cryptography"}),
])
def test_imports_are_found_wherever_they_are(source, names):
    assert top_level_imports(source) == names

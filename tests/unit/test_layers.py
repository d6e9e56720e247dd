"""Core's layers: nothing below ``rkt_core/cli/`` imports the commands (the plugin API's ``cli``
module, the public door to adding commands, is the one exception), and only
``rkt_core/sys/libc.py`` loads the C library."""

import ast
from pathlib import Path

import pytest

import rkt_core

CORE = Path(rkt_core.__file__).resolve().parent
REPOSITORY = CORE.parent
CLI = "rkt_core.cli"
ALLOWED = {"rkt_core/plugin_api/cli.py"}
LIBC_SEAM = "rkt_core/sys/libc.py"
# Programs that run where rkt_core is not installed reach libc themselves: the kvm guest's
# PID 1 runs on the guest's minimal Python, inside the VM.
OUTSIDE_RKT = {"rkt_plugins/stage1_kvm/rkt_stage1_kvm/guest.py"}
_LOADERS = {"CDLL", "cdll", "PyDLL", "pydll", "LibraryLoader"}


def module_name(relative: str) -> str:
    """``rkt_core/a/b.py`` -> ``rkt_core.a.b``; a package's ``__init__.py`` is the package."""
    return relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def imported_modules(source: str, relative: str) -> list[tuple[int, list[str]]]:
    """(line, absolute modules) of every import statement in ``source`` (the file ``relative``
    to the repository), wherever it is (module level or inside a function); ``from P import n``
    may import ``P`` or ``P.n``, so it gives both."""
    package = module_name(relative)
    if not relative.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, relative)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, [alias.name]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, [base] + [f"{base}.{alias.name}" for alias in node.names]))
    return found


def cli_imports(source: str, relative: str) -> list[str]:
    """``file:line: module`` for each import of ``rkt_core.cli`` in ``source``."""
    found = []
    for line, modules in imported_modules(source, relative):
        hits = [m for m in modules if m == CLI or m.startswith(CLI + ".")]
        if hits:
            found.append(f"{relative}:{line}: {hits[0]}")
    return found


def test_nothing_below_the_commands_imports_them():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        relative = path.relative_to(CORE.parent).as_posix()
        if relative.startswith("rkt_core/cli/") or relative in ALLOWED:
            continue
        found += cli_imports(path.read_text(encoding="utf-8"), relative)
    assert found == []


@pytest.mark.parametrize("source,relative,found", [
    ("def f():\n    from ..cli.params import x\n", "rkt_core/stage0/gc.py",
     ["rkt_core/stage0/gc.py:2: rkt_core.cli.params"]),
    ("from .. import cli\n", "rkt_core/stage0/gc.py", ["rkt_core/stage0/gc.py:1: rkt_core.cli"]),
    ("from . import cli\n", "rkt_core/__init__.py", ["rkt_core/__init__.py:1: rkt_core.cli"]),
    ("import rkt_core.cli.main as m\n", "rkt_core/pod/pod.py",
     ["rkt_core/pod/pod.py:1: rkt_core.cli.main"]),
    ("from .cli import x\nfrom ..client import y\nimport rkt_core.climate\n",
     "rkt_core/remote/x.py", []),
    ("from ..errors import RktError\nfrom . import clinic\n", "rkt_core/pod/pod.py", []),
])
def test_the_check_finds_imports_of_the_commands(source, relative, found):
    assert cli_imports(source, relative) == found


def loads_a_library(source: str) -> list[int]:
    """Lines of ``source`` that load a shared library through ctypes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in _LOADERS:
            found.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "ctypes" and \
                any(alias.name in _LOADERS for alias in node.names):
            found.append(node.lineno)
    return found


def test_only_the_libc_seam_loads_the_c_library():
    files = [*CORE.rglob("*.py"), *REPOSITORY.glob("rkt_plugins/*/rkt_*/**/*.py"),
             *REPOSITORY.glob("examples/*/rkt_*/**/*.py")]
    found = [f"{path.relative_to(REPOSITORY)}:{line}" for path in sorted(files)
             for line in loads_a_library(path.read_text(encoding="utf-8"))
             if path.relative_to(REPOSITORY).as_posix() not in {LIBC_SEAM, *OUTSIDE_RKT}]
    assert found == []
    assert loads_a_library((REPOSITORY / LIBC_SEAM).read_text()) != []


@pytest.mark.parametrize("source,lines", [
    ("import ctypes\nlib = ctypes.CDLL(None, use_errno=True)\n", [2]),
    ("from ctypes import CDLL\n", [1]),
    ("import ctypes\nctypes.cdll.LoadLibrary('libc.so.6')\n", [2]),
    ("import ctypes\nclass H(ctypes.Structure):\n    pass\nctypes.byref(H())\n", []),
])
def test_the_check_finds_library_loads(source, lines):
    assert loads_a_library(source) == lines

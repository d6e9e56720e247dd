"""Checking that a plugin uses only rkt's public plugin API (``rkt_core.plugin_api``).

    from rkt_core.testing.imports import internal_imports

    def test_my_plugin_uses_only_the_public_api():
        assert internal_imports("src/rkt_myplugin") == []
"""

from __future__ import annotations

import ast
import os

PUBLIC = "rkt_core.plugin_api"


def _is_public(module: str) -> bool:
    return module == PUBLIC or module.startswith(PUBLIC + ".")


def internal_imports_in(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: module`` for each import of a part of ``rkt_core`` other than the public
    API in Python ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "rkt_core":
                modules = [f"rkt_core.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if (module == "rkt_core" or module.startswith("rkt_core.")) and not _is_public(module):
                found.append(f"{filename}:{node.lineno}: {module}")
    return found


def internal_imports(path: str) -> list[str]:
    """Every import of rkt-core internals in the Python files under ``path`` (a package
    directory or one file)."""
    files = [path] if path.endswith(".py") else sorted(
        os.path.join(d, f) for d, _, names in os.walk(path) for f in names if f.endswith(".py"))
    found = []
    for name in files:
        with open(name, encoding="utf-8") as f:
            found.extend(internal_imports_in(f.read(), name))
    return found

"""docs/hooks.md documents exactly the hook specs, with their arguments and kinds."""

import inspect
import re
from pathlib import Path

from rkt_core import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def _specs():
    specs = {}
    for name, func in inspect.getmembers(hookspecs, inspect.isfunction):
        opts = getattr(func, "rkt_spec", None)
        if name.startswith("rkt_") and opts is not None:
            kind = ("setup" if opts.get("historic") else "decide" if opts.get("firstresult")
                    else "declare" if inspect.signature(func).return_annotation.startswith("Iterable")
                    else "observe")
            specs[name] = (list(inspect.signature(func).parameters), kind)
    return specs


def _documented():
    text = DOC.read_text()
    found = {}
    for match in re.finditer(r"^### (rkt_\w+)\(([^)]*)\)\nKind: (\w+)", text, re.M):
        args = [a.strip() for a in match.group(2).split(",") if a.strip()]
        found[match.group(1)] = (args, match.group(3))
    return found


def test_every_hook_spec_is_documented_with_its_arguments_and_kind():
    assert _specs(), "no hook specs found"
    assert _documented() == _specs()


def test_every_spec_has_a_docstring():
    for name in _specs():
        assert getattr(hookspecs, name).__doc__.strip(), name

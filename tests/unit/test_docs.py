"""docs/hooks.md documents exactly the hook specs, with their arguments and kinds."""

import inspect
import re
from pathlib import Path

from rkt_core import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def _specs():
    specs = {}
    for name, func in inspect.getmembers(hookspecs, inspect.isfunction):
        kind = getattr(func, hookspecs.KIND_ATTR, None)
        if name.startswith("rkt_") and getattr(func, "rkt_spec", None) is not None:
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


# --- docs/writing-plugins.md: every code block is the example's code or runs ----------------------

GUIDE = DOC.parent / "writing-plugins.md"
EXAMPLE = DOC.parents[1] / "examples" / "stage1_chroot"


def _blocks(language):
    return re.findall(rf"^```{language}\n(.*?)^```$", GUIDE.read_text(), re.M | re.S)


def _is_excerpt(block: str, source: str) -> bool:
    return block.strip("\n") in source


def test_the_guides_pyproject_is_the_examples():
    (toml,) = _blocks("toml")
    assert toml == (EXAMPLE / "pyproject.toml").read_text()


def _run(block: str, monkeypatch) -> dict:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    namespace = {"__name__": "guide_example"}
    exec(compile(block, str(GUIDE), "exec"), namespace)
    return namespace


def test_every_python_block_is_the_examples_code_or_runs(monkeypatch, capsys):
    import types

    from rkt_core.testing.plugins import load_plugin

    flavor = (EXAMPLE / "rkt_stage1_chroot" / "plugin.py").read_text()
    blocks = _blocks("python")
    excerpts = [b for b in blocks if _is_excerpt(b, flavor)]
    assert len(excerpts) >= 5  # the walk through the flavor
    for block in blocks:
        if block in excerpts:
            continue
        namespace = _run(block, monkeypatch)
        if "RKT_PLUGIN_API" in namespace:  # a plugin: it must load cleanly
            module = types.SimpleNamespace(**namespace)
            _plugins, info = load_plugin(module, "guide")
            assert (info.status, info.errors) == ("loaded", []), block


def test_the_guides_observer_writes_to_stderr_only(monkeypatch, capsys):
    from types import SimpleNamespace

    from rkt_core.testing.plugins import load_plugin

    (block,) = [b for b in _blocks("python") if "def rkt_pod_exited" in b]
    plugins, _ = load_plugin(SimpleNamespace(**_run(block, monkeypatch)), "observer")
    plugins.notify("rkt_pod_exited", pod=SimpleNamespace(uuid="u-1"), exit_code=3)
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "pod u-1 exited with 3\n")


def test_the_guides_fetcher_and_published_hook_work(monkeypatch):
    from types import SimpleNamespace

    import pytest

    from rkt_core.errors import NotFoundError
    from rkt_core.testing.plugins import load_plugin
    from rkt_core.types import FetchRequest

    (fetcher,) = [b for b in _blocks("python") if "def rkt_fetchers" in b]
    namespace = _run(fetcher, monkeypatch)
    plugins, _ = load_plugin(SimpleNamespace(**namespace), "memory")
    fetch = plugins.fetcher_for("memory").fetch
    with pytest.raises(NotFoundError):
        fetch(FetchRequest("memory://app", context=None))
    namespace["IMAGES"]["app"] = b"aci bytes"
    assert fetch(FetchRequest("memory://app", context=None)).aci.read() == b"aci bytes"

    (publisher,) = [b for b in _blocks("python") if "rkt_add_hookspecs" in b]
    namespace = _run(publisher, monkeypatch)
    greeting = namespace["Greeting"]

    class Greeter:
        RKT_PLUGIN_API = 1

        from rkt_core.plugin_api import hookimpl

        @hookimpl
        def rkt_greetings(self):
            return [greeting("hello", "Hello!")]

    plugins, info = load_plugin(Greeter(), "greeter", ("publisher", SimpleNamespace(**namespace)))
    assert info.errors == []
    assert plugins.declarations("rkt_greetings")["hello"][1] == "greeter"

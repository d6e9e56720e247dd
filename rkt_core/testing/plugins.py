"""Helpers for testing plugins without installing them.

    from rkt_core.testing.plugins import load_plugin

    def test_my_plugin_validates():
        plugins, info = load_plugin(my_plugin_module, "stage1-example")
        assert info.errors == []
        assert plugins.stage1_flavor("example")
"""

from __future__ import annotations

from typing import Any

from ..plugins import PluginInfo, Plugins


def load_plugin(plugin: Any, name: str, *others: tuple[str, Any]) -> tuple[Plugins, PluginInfo]:
    """A plugin facade holding only ``plugin`` (plus ``others`` as ``(name, object)`` pairs).

    Declarations are checked too, so a record error shows up in the returned info's ``errors``.
    """
    plugins = Plugins(discover=False)
    plugins.register_all([(name, plugin), *others])
    info = {i.name: i for i in plugins.infos()}[name]
    return plugins, info


def plugin_site(directory: str, distribution: str, entry_points: dict[str, str],
                modules: dict[str, str], version: str = "0.0.1") -> str:
    """Make ``directory`` a place from which a test plugin is discovered like an installed
    one: ``modules`` (module name -> source) and a ``<distribution>.dist-info`` with
    ``entry_points`` (entry point name -> module) in the group ``rkt.plugins``. Put
    ``directory`` on ``PYTHONPATH`` of an ``rkt`` command (``Rkt.add_plugin_path``, or the
    kit's ``rkt_plugin`` fixture); returns it."""
    import os
    import textwrap

    os.makedirs(directory, exist_ok=True)
    for module, source in modules.items():
        with open(os.path.join(directory, f"{module}.py"), "w") as f:
            f.write(textwrap.dedent(source))
    info = os.path.join(directory, f"{distribution.replace('-', '_')}-{version}.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[rkt.plugins]\n" + "".join(f"{n} = {m}\n" for n, m in entry_points.items()))
    with open(os.path.join(info, "top_level.txt"), "w") as f:  # which distribution ships them
        f.write("".join(f"{module}\n" for module in modules))
    return directory

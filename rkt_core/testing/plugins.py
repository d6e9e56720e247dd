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
    plugins.register(plugin, name)
    for other_name, other in others:
        plugins.register(other, other_name)
    info = {i.name: i for i in plugins.infos()}[name]
    return plugins, info

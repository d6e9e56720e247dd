"""The plugin manager facade: stevedore finds plugins, pluggy holds the contract and calls them.

Every plugin, built-in or external, is an entry point in the group ``rkt.plugins``. Each is
imported in isolation: one that fails to import or to validate against the hook specs is
reported (``rkt plugins``) and left out, and the rest work. Core code asks this facade for what
it needs (``stage1_flavor("fly")``, ``fetcher_for("https")``, ``notify(...)``) and never calls
``pm.hook`` itself.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs, types
from .errors import PluginMissingError, RktError

ENTRY_POINT_GROUP = "rkt.plugins"
OK, FAILED, DISABLED = "loaded", "failed", "disabled"


@dataclass
class PluginInfo:
    """What ``rkt plugins`` shows about one plugin."""

    name: str
    distribution: str = ""
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    status: str = OK
    errors: list[str] = field(default_factory=list)
    entry_point: Any = field(default=None, repr=False, compare=False)

    def as_json(self) -> dict:
        """The plugin as a JSON object (``rkt plugins --format json``)."""
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "status": self.status, "hooks": self.hooks, "errors": self.errors}


# Which record type each declare hook returns, and how a missing one is named in hints.
_DECLARE = {
    "rkt_stage1_flavors": types.Stage1Flavor,
    "rkt_fetchers": types.Fetcher,
    "rkt_verifiers": types.Verifier,
    "rkt_network_backends": types.NetworkBackend,
    "rkt_isolators": types.Isolator,
}


def _parse_disabled(values: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for value in values:
        names.update(n.strip() for n in value.split(",") if n.strip())
    return names


class Plugins:
    """All plugins of this process. Build it with :func:`load_plugins`; tests may build an empty
    one (``Plugins(discover=False)``) and :meth:`register` objects directly."""

    def __init__(self, disabled: Iterable[str] = (), *, discover: bool = True,
                 warn: Callable[[str], None] | None = None):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._warn = warn or (lambda msg: print(f"rkt: {msg}", file=sys.stderr))
        self._infos: dict[str, PluginInfo] = {}
        self._declared: dict[str, dict[str, tuple[Any, str]]] = {}
        self._trace = os.environ.get("RKT_TRACE_PLUGINS") == "1"
        if self._trace:
            self._pm.trace.root.setwriter(lambda text: sys.stderr.write("rkt: trace: " + text))
            self._pm.enable_tracing()
        self.disabled = _parse_disabled([*disabled, os.environ.get("RKT_DISABLE_PLUGINS", "")])
        for name in self.disabled:
            self._pm.set_blocked(name)
        if discover:
            self._discover()

    # --- loading ------------------------------------------------------------------------------

    def _discover(self) -> None:
        from stevedore import ExtensionManager, NamedExtensionManager

        entry_points = ExtensionManager.make_test_instance([], namespace=ENTRY_POINT_GROUP)
        seen: dict[str, str] = {}
        wanted: list[str] = []
        # Distributions and versions are looked up only for `rkt plugins` (it costs ~30 ms).
        for ep in sorted(entry_points.list_entry_points(), key=lambda e: e.name):
            if ep.name in seen:
                info = PluginInfo(ep.name, status=FAILED, entry_point=ep)
                info.errors.append(f'entry point name "{ep.name}" is also used by {seen[ep.name]}; '
                                   "this one is ignored")
                self._infos.setdefault(f"{ep.name} ({ep.value})", info)
                continue
            seen[ep.name] = ep.value
            if ep.name in self.disabled:
                self._infos[ep.name] = PluginInfo(ep.name, status=DISABLED, entry_point=ep)
            else:
                wanted.append(ep.name)

        def on_failure(_manager, ep, exc):
            self._infos[ep.name] = PluginInfo(ep.name, status=FAILED, entry_point=ep,
                                              errors=[f"import failed: {type(exc).__name__}: {exc}"])

        if not wanted:
            return
        manager = NamedExtensionManager(ENTRY_POINT_GROUP, names=wanted, name_order=True,
                                        on_load_failure_callback=on_failure)
        for ext in manager.extensions:
            self.register(ext.plugin, ext.name, entry_point=ext.entry_point)

    def register(self, plugin: Any, name: str, *, entry_point: Any = None) -> PluginInfo:
        """Register one plugin object under ``name``; a plugin that does not validate is left out.

        Returns its :class:`PluginInfo`, whose ``status`` says whether it was taken.
        """
        info = PluginInfo(name, entry_point=entry_point)
        self._infos[name] = info
        if self._pm.is_blocked(name):
            info.status = DISABLED
            return info
        try:
            self._pm.register(plugin, name)
        except pluggy.PluginValidationError as e:
            info.status, info.errors = FAILED, [f"invalid hook implementation: {e}"]
            return info
        except ValueError as e:
            info.status, info.errors = FAILED, [str(e)]
            return info
        callers = self._pm.get_hookcallers(plugin) or []
        unknown = sorted(hc.name for hc in callers if not hc.has_spec())
        if unknown:
            self._pm.unregister(plugin)
            info.status = FAILED
            info.errors = [f"implements unknown hooks: {', '.join(unknown)}"]
            return info
        info.hooks = sorted(hc.name for hc in callers)
        self._declared.clear()
        return info

    # --- reporting ----------------------------------------------------------------------------

    def infos(self) -> list[PluginInfo]:
        """Every plugin found, loaded or not, sorted by name. Declarations are checked first, so
        record errors (wrong types, duplicate names) show up here too."""
        for hook in _DECLARE:
            self._records(hook)
        for info in self._infos.values():
            if info.entry_point is not None and not info.distribution:
                info.distribution, info.version = _dist_of(info.entry_point)
        return sorted(self._infos.values(), key=lambda i: i.name)

    # --- calling ------------------------------------------------------------------------------

    def _impls(self, hook: str):
        return getattr(self._pm.hook, hook).get_hookimpls()

    def _call_one(self, impl, hook: str, kwargs: dict) -> Any:
        args = {k: kwargs[k] for k in impl.argnames}
        result = impl.function(**args)
        if self._trace:
            sys.stderr.write(f"rkt: trace: {impl.plugin_name}.{hook} -> {result!r}\n")
        return result

    def _fail(self, plugin_name: str, message: str) -> None:
        info = self._infos.setdefault(plugin_name, PluginInfo(plugin_name))
        if message not in info.errors:
            info.errors.append(message)

    def _records(self, hook: str) -> dict[str, tuple[Any, str]]:
        """The validated records of a declare hook: name -> (record, plugin name)."""
        if hook in self._declared:
            return self._declared[hook]
        expected = _DECLARE[hook]
        records: dict[str, tuple[Any, str]] = {}
        for impl in self._impls(hook):
            try:
                result = list(self._call_one(impl, hook, {}) or ())
            except Exception as e:  # a broken plugin must not break the others
                self._fail(impl.plugin_name, f"{hook} failed: {type(e).__name__}: {e}")
                continue
            for record in result:
                if not isinstance(record, expected) or not getattr(record, "name", ""):
                    self._fail(impl.plugin_name,
                               f"{hook} returned {record!r}, expected a named {expected.__name__}")
                elif record.name in records:
                    self._fail(impl.plugin_name,
                               f'{expected.__name__} "{record.name}" is already declared by plugin '
                               f'"{records[record.name][1]}"; this one is ignored')
                else:
                    records[record.name] = (record, impl.plugin_name)
        self._declared[hook] = records
        return records

    def _names(self, hook: str) -> list[str]:
        return sorted(self._records(hook))

    def stage1_flavors(self) -> dict[str, types.Stage1Flavor]:
        """The installed stage1 flavors by name."""
        return {n: r for n, (r, _) in self._records("rkt_stage1_flavors").items()}

    def stage1_flavor(self, name: str) -> types.Stage1Flavor:
        """The flavor called ``name``, or an error naming what is installed and what to install."""
        flavors = self.stage1_flavors()
        if name not in flavors:
            installed = ", ".join(sorted(flavors)) or "none"
            raise PluginMissingError(
                f'stage1 flavor "{name}" is not installed; installed: {installed}',
                hint=f"pip install rkt-stage1-{name}")
        return flavors[name]

    def fetchers(self) -> dict[str, types.Fetcher]:
        """The installed fetchers by name."""
        return {n: r for n, (r, _) in self._records("rkt_fetchers").items()}

    def fetcher_for(self, scheme: str) -> types.Fetcher:
        """The fetcher for images with this scheme (``file``, ``https``, ``docker``, ``appc``...)."""
        for fetcher in self.fetchers().values():
            if scheme in fetcher.schemes:
                return fetcher
        known = sorted({s for f in self.fetchers().values() for s in f.schemes})
        raise PluginMissingError(
            f'no fetcher is installed for "{scheme}" images; installed schemes: {", ".join(known) or "none"}',
            hint=f"pip install rkt-fetch-{scheme}")

    def verifiers(self) -> list[types.Verifier]:
        """The installed signature verifiers, in registration order."""
        return [r for r, _ in self._records("rkt_verifiers").values()]

    def network_backends(self) -> dict[str, types.NetworkBackend]:
        """The installed network backends by name."""
        return {n: r for n, (r, _) in self._records("rkt_network_backends").items()}

    def network_backend_for(self, network: str) -> types.NetworkBackend:
        """The backend that handles the network called ``network`` in ``--net``."""
        for backend in self.network_backends().values():
            if backend.handles(network):
                return backend
        raise PluginMissingError(
            f'no network backend is installed for network "{network}"; installed: '
            f'{", ".join(self._names("rkt_network_backends")) or "none"}',
            hint="pip install rkt-net-cni")

    def isolators(self) -> dict[str, types.Isolator]:
        """The isolator names plugins declared, with their validators."""
        return {n: r for n, (r, _) in self._records("rkt_isolators").items()}

    def default_stage1_flavor(self, config: Any) -> str | None:
        """The flavor plugins choose as default, or None (first answer wins)."""
        for impl in self._impls("rkt_default_stage1_flavor"):
            try:
                answer = self._call_one(impl, "rkt_default_stage1_flavor", {"config": config})
            except Exception as e:
                self._fail(impl.plugin_name, f"rkt_default_stage1_flavor failed: {e}")
                continue
            if answer is not None:
                return answer
        return None

    def add_commands(self, cli: Any) -> None:
        """Let plugins add their commands to the ``rkt`` click group."""
        for impl in self._impls("rkt_add_commands"):
            try:
                self._call_one(impl, "rkt_add_commands", {"cli": cli})
            except Exception as e:
                self._fail(impl.plugin_name, f"rkt_add_commands failed: {type(e).__name__}: {e}")

    def notify(self, event: str, **kwargs: Any) -> None:
        """Tell every observer of ``event`` (e.g. ``rkt_pod_exited``); failures are only logged."""
        spec = getattr(self._pm.hook, event, None)
        if spec is None or not spec.has_spec():
            raise RktError(f"unknown plugin event {event}")
        for impl in spec.get_hookimpls():
            try:
                self._call_one(impl, event, kwargs)
            except Exception as e:
                self._warn(f'plugin "{impl.plugin_name}": {event} failed: {type(e).__name__}: {e}')


def _dist_of(ep) -> tuple[str, str]:
    """The distribution (name, version) that ships an entry point.

    stevedore's cached entry points carry no ``dist``, so the distribution is found from the
    entry point's top-level package.
    """
    dist = getattr(ep, "dist", None)
    if dist is not None:
        return dist.metadata["Name"] or "", dist.version or ""
    import importlib.metadata as md

    package = ep.value.split(":")[0].split(".")[0]
    names = _packages_distributions().get(package, [])
    if not names:
        return "", ""
    return names[0], md.version(names[0])


_PACKAGES_DISTRIBUTIONS: dict[str, list[str]] = {}


def _packages_distributions() -> dict[str, list[str]]:
    if not _PACKAGES_DISTRIBUTIONS:
        import importlib.metadata as md

        _PACKAGES_DISTRIBUTIONS.update(md.packages_distributions())
    return _PACKAGES_DISTRIBUTIONS

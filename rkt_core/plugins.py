"""The plugin manager facade: entry points find plugins, pluggy holds the contract and calls them.

Every plugin, built-in or external, is an entry point in the group ``rkt.plugins``, read from
an index kept valid across installs and removals (:mod:`rkt_core.plugin_index`). Each is
imported in isolation: one that fails to import or to validate is reported (``rkt plugins``) and
left out, and the rest work. Core code asks this facade for what it needs
(``stage1_flavor("fly")``, ``fetcher_for("https")``, ``notify(...)``) and never calls ``pm.hook``.

Calls go through pluggy itself, so its semantics hold: call order (last registered first,
``tryfirst``/``trylast``), ``wrapper=True`` implementations (on *decide* hooks) and tracing
(``RKT_TRACE_PLUGINS=1``). The one thing the facade adds is isolation: each implementation is
registered wrapped in a guard that turns its exception into an error reported against its plugin
(``rkt plugins`` for *setup* and *declare* hooks, a warning for *decide* and *observe* hooks), so
one broken plugin never stops the others. *Declare* guards also check the records.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types as pytypes
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs, types
from .errors import PluginMissingError, RktError
from .hookspecs import DECIDE, DECLARE, KIND_ATTR, OBSERVE, RECORD_ATTR, SETUP
from .records import dataclass, field

ENTRY_POINT_GROUP = "rkt.plugins"
OK, FAILED, DISABLED = "loaded", "failed", "disabled"
API_ATTR = "RKT_PLUGIN_API"

# What `rkt plugins` calls the records of each core declare hook.
_PROVIDES = {"rkt_stage1_flavors": "flavor", "rkt_fetchers": "fetcher",
             "rkt_verifiers": "verifier", "rkt_network_backends": "network",
             "rkt_isolators": "isolator"}


@dataclass
class PluginInfo:
    """What ``rkt plugins`` shows about one plugin."""

    name: str
    distribution: str = ""
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    status: str = OK
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """The plugin as a JSON object (``rkt plugins --format json``)."""
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "status": self.status, "hooks": self.hooks, "provides": self.provides,
                "errors": self.errors}


@dataclass(frozen=True)
class Declaration:
    """The checked records one plugin returned from a declare hook."""

    plugin: str
    records: tuple


# What pluggy can take as a hook implementation (the attributes it would look at).
_HOOKABLE = (pytypes.FunctionType, pytypes.MethodType, staticmethod, classmethod)


def _parse_disabled(values: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for value in values:
        names.update(n.strip() for n in value.split(",") if n.strip())
    return names


def _spec_kind(namespace: Any, name: str) -> tuple[str, type | None]:
    function = getattr(namespace, name)
    return getattr(function, KIND_ATTR, ""), getattr(function, RECORD_ATTR, None)


class Plugins:
    """All plugins of this process. Build it with discovery (the default); tests may build an
    empty one (``Plugins(discover=False)``) and :meth:`register` objects directly."""

    def __init__(self, disabled: Iterable[str] = (), *, discover: bool = True,
                 warn: Callable[[str], None] | None = None):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._kinds: dict[str, tuple[str, type | None]] = {
            name: _spec_kind(hookspecs, name) for name in dir(hookspecs)
            if self._pm.parse_hookspec_opts(hookspecs, name)}
        self._warn = warn or (lambda msg: print(f"rkt: {msg}", file=sys.stderr))
        self._infos: dict[str, PluginInfo] = {}
        self._declared: dict[str, dict[str, tuple[Any, str]]] = {}
        self._published: dict[str, list[str]] = {}  # plugin -> hooks it published
        self._calling = ""  # the plugin whose implementation runs (for _publish)
        if os.environ.get("RKT_TRACE_PLUGINS") == "1":
            self._pm.trace.root.setwriter(lambda text: sys.stderr.write("rkt: trace: " + text))
            self._pm.enable_tracing()
        self.disabled = _parse_disabled([*disabled, os.environ.get("RKT_DISABLE_PLUGINS", "")])
        for name in self.disabled:
            self._pm.set_blocked(name)
        self._pm.hook.rkt_add_hookspecs.call_historic(kwargs={"add": self._publish})
        if discover:
            self._discover()

    # --- loading ------------------------------------------------------------------------------

    def _discover(self) -> None:
        from .plugin_index import entry_points

        seen: dict[str, str] = {}
        wanted = {}
        for ep in sorted(entry_points(), key=lambda e: e.name):
            if ep.name in seen:
                info = PluginInfo(ep.name, ep.distribution, ep.version, status=FAILED)
                info.errors.append(f'entry point name "{ep.name}" is also used by {seen[ep.name]}; '
                                   "this one is ignored")
                self._infos.setdefault(f"{ep.name} ({ep.value})", info)
                continue
            seen[ep.name] = ep.value
            if ep.name in self.disabled:
                self._infos[ep.name] = PluginInfo(ep.name, ep.distribution, ep.version,
                                                  status=DISABLED)
            else:
                wanted[ep.name] = ep
        loaded = []
        for ep in wanted.values():
            try:
                loaded.append((ep.name, ep.load()))
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the others
                self._infos[ep.name] = PluginInfo(
                    ep.name, ep.distribution, ep.version, status=FAILED,
                    errors=[f"import failed: {type(exc).__name__}: {exc}"])
        for info in self.register_all(loaded):
            info.distribution, info.version = wanted[info.name].distribution, wanted[info.name].version

    def register(self, plugin: Any, name: str) -> PluginInfo:
        """Register one plugin object under ``name``; a plugin that does not validate is left out.

        Returns its :class:`PluginInfo`, whose ``status`` says whether it was taken.
        """
        return self.register_all([(name, plugin)])[0]

    def register_all(self, plugins: Iterable[tuple[str, Any]]) -> list[PluginInfo]:
        """Register ``(name, plugin)`` pairs in order (as discovery does), then check each against
        every hook spec, including those the others published."""
        infos = [self._register(plugin, name) for name, plugin in plugins]
        for info in infos:
            if info.status == OK:
                self._refuse_unknown_hooks(info)
        return infos

    def _register(self, plugin: Any, name: str) -> PluginInfo:
        info = PluginInfo(name)
        self._infos[name] = info
        self._declared.clear()
        if self._pm.is_blocked(name):
            info.status = DISABLED
            return info
        api = getattr(plugin, API_ATTR, None)
        if api not in hookspecs.SUPPORTED_PLUGIN_APIS:
            from . import __version__

            supported = ", ".join(map(str, sorted(hookspecs.SUPPORTED_PLUGIN_APIS)))
            written = (f"was written for rkt plugin API {api!r}" if api is not None
                       else f"does not say which rkt plugin API it was written for ({API_ATTR})")
            info.status = FAILED
            info.errors = [f"{written}; rkt-core {__version__} supports plugin API {supported}"]
            return info
        try:
            guarded = self._guarded(plugin, name)
            self._pm.register(guarded, name)
        except (pluggy.PluginValidationError, ValueError) as e:
            info.status, info.errors = FAILED, [f"invalid hook implementation: {e}"]
            return info
        info.hooks = sorted(hc.name for hc in self._pm.get_hookcallers(guarded) or ())
        return info

    def _guarded(self, plugin: Any, name: str) -> Any:
        """A stand-in for ``plugin`` whose hook implementations run inside :meth:`_call`.

        It is a module: pluggy looks up every name of a plugin with ``inspect.getattr_static``,
        and a bare module has the fewest names (a third of the registration's cost)."""
        proxy = pytypes.ModuleType(f"rkt plugin {name}")
        names = dir(plugin)
        if isinstance(plugin, pytypes.ModuleType):  # skip what pluggy would not take anyway
            names = [n for n in names if isinstance(vars(plugin).get(n), _HOOKABLE)]
        for attr in names:
            opts = self._pm.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            function = getattr(plugin, attr)
            hook = opts.get("specname") or attr
            if opts.get("wrapper") or opts.get("hookwrapper"):
                self._check_wrapper(name, hook)
                setattr(proxy, attr, function)
                continue
            setattr(proxy, attr, self._guard(name, hook, function))
        return proxy

    def _guard(self, plugin: str, hook: str, function: Callable) -> Callable:
        """A plain function that runs ``function`` inside :meth:`_call`; it carries the
        original's signature and hookimpl marker, which pluggy reads."""
        def guard(*args: Any) -> Any:
            return self._call(plugin, hook, function, *args)

        return functools.update_wrapper(guard, function)

    def _check_wrapper(self, plugin: str, hook: str) -> None:
        kind = self._kinds.get(hook, ("", None))[0]
        if kind and kind != DECIDE:
            raise ValueError(f"{hook} is a {kind} hook; wrapper=True is supported on decide "
                             "hooks only")

    def _refuse_unknown_hooks(self, info: PluginInfo) -> None:
        plugin = self._pm.get_plugin(info.name)
        unknown = sorted(hc.name for hc in self._pm.get_hookcallers(plugin) or ()
                         if not hc.has_spec()
                         and not all(i.optionalhook for i in hc.get_hookimpls()
                                     if i.plugin_name == info.name))
        if unknown:
            self._reject(info.name, f"implements unknown hooks: {', '.join(unknown)}")

    def _reject(self, name: str, message: str) -> None:
        self._pm.unregister(name=name)
        info = self._infos.setdefault(name, PluginInfo(name))
        info.status, info.errors, info.hooks = FAILED, [message], []
        self._declared.clear()

    def _publish(self, namespace: Any) -> None:
        """``add`` of ``rkt_add_hookspecs``: add a plugin's own hook specs. Implementations
        registered before, whose arguments do not fit, make their plugins fail."""
        names = [n for n in dir(namespace) if self._pm.parse_hookspec_opts(namespace, n)]
        kinds = {n: _spec_kind(namespace, n) for n in names}
        for hook, (kind, record) in kinds.items():
            if hook in self._kinds:
                raise ValueError(f"hook {hook} is already specified")
            if kind not in (SETUP, DECLARE, DECIDE, OBSERVE) or (kind == DECLARE and record is None):
                raise ValueError(f"hook spec {hook} has no kind: mark it with hookspec.declare("
                                 "Record), hookspec.decide, hookspec.observe or hookspec.setup")
            caller = getattr(self._pm.hook, hook, None)
            params = set(inspect.signature(getattr(namespace, hook)).parameters)
            for impl in caller.get_hookimpls() if caller is not None else ():
                extra = set(impl.argnames) - params
                if extra:
                    self._reject(impl.plugin_name, f"{hook}: argument(s) {', '.join(sorted(extra))} "
                                                   "are not in the hook specification")
                elif (impl.wrapper or impl.hookwrapper) and kind != DECIDE:
                    self._reject(impl.plugin_name, f"{hook} is a {kind} hook; wrapper=True is "
                                                   "supported on decide hooks only")
        self._pm.add_hookspecs(namespace)
        self._kinds.update(kinds)
        self._published.setdefault(self._calling, []).extend(sorted(kinds))

    # --- calling ------------------------------------------------------------------------------

    def _call(self, plugin: str, hook: str, function: Callable, *args: Any) -> Any:
        """Run one implementation; what it raises is reported, never passed on."""
        kind, record = self._kinds.get(hook, ("", None))
        self._calling = plugin
        try:
            result = function(*args)
        except Exception as e:  # noqa: BLE001 - one plugin must not break the others
            message = f"{hook} failed: {type(e).__name__}: {e}"
            if kind in (SETUP, DECLARE):
                self._fail(plugin, message)
            else:
                self._warn(f'plugin "{plugin}": {message}')
            return None
        if kind != DECLARE:
            return result
        try:
            candidates = list(result or ())
        except TypeError:
            candidates = [result]
        records = []
        for candidate in candidates:
            if isinstance(candidate, record) and getattr(candidate, "name", ""):
                records.append(candidate)
            else:
                self._fail(plugin, f"{hook} returned {candidate!r}, expected a named "
                                   f"{record.__name__}")
        return Declaration(plugin, tuple(records))

    def _fail(self, plugin_name: str, message: str) -> None:
        info = self._infos.setdefault(plugin_name, PluginInfo(plugin_name))
        if message not in info.errors:
            info.errors.append(message)

    def _hook(self, name: str, kind: str):
        if self._kinds.get(name, ("",))[0] != kind:
            raise RktError(f"{name} is not a hook of kind {kind}")
        return getattr(self._pm.hook, name)

    def declarations(self, hook: str) -> dict[str, tuple[Any, str]]:
        """The records of a declare hook by name, each with the plugin that declared it. When two
        plugins declare one name, the one pluggy calls first keeps it; the other is reported."""
        if hook in self._declared:
            return self._declared[hook]
        records: dict[str, tuple[Any, str]] = {}
        for declaration in self._hook(hook, DECLARE)():
            for record in declaration.records:
                if record.name in records:
                    self._fail(declaration.plugin,
                               f'{type(record).__name__} "{record.name}" is already declared by '
                               f'plugin "{records[record.name][1]}"; this one is ignored')
                else:
                    records[record.name] = (record, declaration.plugin)
        self._declared[hook] = records
        return records

    def decide(self, hook: str, **kwargs: Any) -> Any:
        """The first answer of a decide hook (None: no plugin has an opinion)."""
        return self._hook(hook, DECIDE)(**kwargs)

    def notify(self, event: str, **kwargs: Any) -> None:
        """Tell every observer of ``event`` (e.g. ``rkt_pod_exited``); failures are only logged."""
        self._hook(event, OBSERVE)(**kwargs)

    def add_commands(self, cli: Any) -> None:
        """Let plugins add their commands to the ``rkt`` click group."""
        self._pm.hook.rkt_add_commands.call_historic(kwargs={"cli": cli})

    # --- what core asks for -------------------------------------------------------------------

    def _records(self, hook: str) -> dict[str, Any]:
        return {n: r for n, (r, _) in self.declarations(hook).items()}

    def stage1_flavors(self) -> dict[str, types.Stage1Flavor]:
        """The installed stage1 flavors by name."""
        return self._records("rkt_stage1_flavors")

    def stage1_flavor(self, name: str) -> types.Stage1Flavor:
        """The flavor called ``name``, or an error naming what is installed and what to install."""
        flavors = self.stage1_flavors()
        if name not in flavors:
            installed = ", ".join(sorted(flavors)) or "none"
            raise PluginMissingError(
                f'stage1 flavor "{name}" is not installed; installed: {installed}',
                hint=f"pip install rkt-stage1-{name}")
        return flavors[name]

    def stage1_image_flavor(self, manifest: Any) -> types.Stage1Flavor:
        """The flavor that runs the stage1 image of ``manifest``: the first, by name, whose
        ``check_image`` accepts it. Raises the first refusal, or an error naming what to install
        if no flavor runs stage1 images."""
        runners = [f for _, f in sorted(self.stage1_flavors().items()) if f.check_image is not None]
        if not runners:
            raise PluginMissingError(
                f'no installed stage1 flavor runs stage1 images such as "{manifest.name}"',
                hint="pip install rkt-stage1-image")
        refusal = None
        for flavor in runners:
            try:
                flavor.check_image(manifest)
                return flavor
            except RktError as e:
                refusal = refusal or e
        raise refusal

    def fetchers(self) -> dict[str, types.Fetcher]:
        """The installed fetchers by name."""
        return self._records("rkt_fetchers")

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
        """The installed signature verifiers, in call order."""
        return list(self._records("rkt_verifiers").values())

    def network_backends(self) -> dict[str, types.NetworkBackend]:
        """The installed network backends by name."""
        return self._records("rkt_network_backends")

    def network_backend_for(self, network: str) -> types.NetworkBackend:
        """The backend that handles the network called ``network`` in ``--net``."""
        for backend in self.network_backends().values():
            if backend.handles(network):
                return backend
        raise PluginMissingError(
            f'no network backend is installed for network "{network}"; installed: '
            f'{", ".join(sorted(self.network_backends())) or "none"}',
            hint="pip install rkt-net-cni")

    def isolators(self) -> dict[str, types.Isolator]:
        """The isolators plugins declared, with their validators."""
        return self._records("rkt_isolators")

    def default_stage1_flavor(self, config: Any) -> str | None:
        """The flavor plugins choose as default, or None."""
        return self.decide("rkt_default_stage1_flavor", config=config)

    # --- reporting ----------------------------------------------------------------------------

    def infos(self) -> list[PluginInfo]:
        """Every plugin found, loaded or not, sorted by name, with what it provides. Declarations
        are checked first, so record errors (wrong types, duplicate names) show up here too."""
        provides: dict[str, list[str]] = {}
        for hook, (kind, _record) in self._kinds.items():
            if kind == DECLARE:
                label = _PROVIDES.get(hook, hook.removeprefix("rkt_"))
                for name, (_r, plugin) in self.declarations(hook).items():
                    provides.setdefault(plugin, []).append(f"{label} {name}")
        commands = self._commands_by_plugin()
        for info in self._infos.values():
            info.provides = (sorted(provides.get(info.name, []))
                             + [f"command {c}" for c in commands.get(info.name, [])]
                             + [f"hook {h}" for h in self._published.get(info.name, [])])
        return sorted(self._infos.values(), key=lambda i: i.name)

    def _commands_by_plugin(self) -> dict[str, list[str]]:
        """The commands each plugin adds (each asked alone, with a throwaway group)."""
        import click

        found = {}
        for impl in self._pm.hook.rkt_add_commands.get_hookimpls():
            group = click.Group()
            impl.function(*[group for _ in impl.argnames])
            found[impl.plugin_name] = sorted(group.commands)
        return found


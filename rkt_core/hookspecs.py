"""Every extension point of rkt, in one place.

A plugin is a module (or object) with functions named like the specs below, marked with
``@hookimpl`` (from :mod:`rkt_core.plugin_api`), a ``RKT_PLUGIN_API`` constant naming the plugin
API it was written for, and an entry point in the group ``rkt.plugins``::

    [project.entry-points."rkt.plugins"]
    stage1-fly = "rkt_stage1_fly.plugin"

An implementation may take any subset of a spec's arguments. Hooks come in four kinds, marked
on each spec below:

* **setup** (pluggy *historic*): extend rkt; called once, also for plugins registered late.
* **declare**: return records (:mod:`rkt_core.types`); the facade checks their type and refuses
  duplicate names.
* **decide** (pluggy *firstresult*): answer a question; ``None`` means "no opinion".
* **observe**: be told that something happened; every implementation is called.

Implementations are called in pluggy's order: the last registered first, ``tryfirst`` before and
``trylast`` after the others. An exception in one implementation is reported against its plugin
and never stops the others (a failed *decide* answer counts as no opinion). ``wrapper=True``
implementations are allowed on *decide* hooks only. Plugins may publish hooks of their own with
:func:`rkt_add_hookspecs`, marked with the same four kinds.

Core code never calls ``pm.hook`` directly: it goes through :class:`rkt_core.plugins.Plugins`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import pluggy

from . import types

PROJECT = "rkt"
# The plugin API this rkt-core implements, and those whose plugins it still runs. A plugin says
# which one it was written for in its module constant ``RKT_PLUGIN_API``.
PLUGIN_API = 1
SUPPORTED_PLUGIN_APIS = frozenset({1})

_spec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

SETUP, DECLARE, DECIDE, OBSERVE = "setup", "declare", "decide", "observe"
KIND_ATTR = "rkt_kind"  # the kind of a spec function
RECORD_ATTR = "rkt_record"  # the record type a declare spec returns


def _kind(kind: str, record: type | None = None, **spec_options) -> Callable:
    def mark(function: Callable) -> Callable:
        setattr(function, KIND_ATTR, kind)
        if record is not None:
            setattr(function, RECORD_ATTR, record)
        return _spec(**spec_options)(function)
    return mark


def setup_hook(function: Callable) -> Callable:
    """Mark a hook spec of kind *setup* (called once per plugin, also for late ones)."""
    return _kind(SETUP, historic=True)(function)


def declare_hook(record: type) -> Callable[[Callable], Callable]:
    """Mark a hook spec of kind *declare*; its implementations return ``record`` instances, each
    with a unique, non-empty ``name``."""
    return _kind(DECLARE, record)


def decide_hook(function: Callable) -> Callable:
    """Mark a hook spec of kind *decide* (the first non-None answer wins)."""
    return _kind(DECIDE, firstresult=True)(function)


def observe_hook(function: Callable) -> Callable:
    """Mark a hook spec of kind *observe* (every implementation is told; results are ignored)."""
    return _kind(OBSERVE)(function)


# --- setup ------------------------------------------------------------------------------------


@setup_hook
def rkt_add_commands(cli: Any) -> None:
    """Add click commands or groups to the ``rkt`` command line.

    :param cli: the top-level ``click.Group``; call ``cli.add_command(...)``.
    """


@setup_hook
def rkt_add_hookspecs(add: Callable[[Any], None]) -> None:
    """Publish hooks of this plugin that other plugins may implement (as pytest's
    ``pytest_addhooks``).

    :param add: call ``add(module_or_class)`` with the namespace holding the specs, each marked
        with ``rkt_core.plugin_api.hookspec.declare(Record)``, ``.decide``, ``.observe`` or
        ``.setup``.
    """


# --- declare ----------------------------------------------------------------------------------


@declare_hook(types.Stage1Flavor)
def rkt_stage1_flavors() -> Iterable[Any]:
    """Declare stage1 flavors (``Stage1Flavor``) this plugin provides."""


@declare_hook(types.Fetcher)
def rkt_fetchers() -> Iterable[Any]:
    """Declare image fetchers (``Fetcher``), one per set of URL schemes."""


@declare_hook(types.Verifier)
def rkt_verifiers() -> Iterable[Any]:
    """Declare image signature verifiers (``Verifier``)."""


@declare_hook(types.NetworkBackend)
def rkt_network_backends() -> Iterable[Any]:
    """Declare network backends (``NetworkBackend``) for ``--net`` names."""


@declare_hook(types.Isolator)
def rkt_isolators() -> Iterable[Any]:
    """Declare isolators (``Isolator``) that manifests may use beyond appc's, with a validator
    of their values."""


# --- decide -----------------------------------------------------------------------------------


@decide_hook
def rkt_default_stage1_flavor(config: Any) -> Optional[str]:
    """Name the stage1 flavor to use when neither ``--stage1-name`` nor ``stage1.d`` chooses one.

    Stops at the first non-None result; with none, rkt uses ``nspawn``.

    :param config: the merged configuration (``Config``).
    """


@decide_hook
def rkt_register_pod(pod: Any, options: Any) -> Optional[str]:
    """Register a pod with a metadata service (``--mds-register``) and return the URL its apps
    get as ``AC_METADATA_URL``.

    Called by stage0 once the pod's networks are set up, right before its flavor runs. Stops at
    the first non-None result; with none, the run fails. Unregistering is the plugin's business
    (e.g. at ``rkt_pod_gc``).

    :param pod: the pod (``PodView``), locked and in ``run/``.
    :param options: the ``RunOptions`` the flavor will get (``netns``: the pod's network
        namespace, "" for the host's).
    """


# --- observe ----------------------------------------------------------------------------------


@observe_hook
def rkt_image_fetched(image: Any) -> None:
    """An image entered the store.

    :param image: the store's ``ImageInfo`` (key, name, labels, size, import time).
    """


@observe_hook
def rkt_image_removed(image_id: str) -> None:
    """An image left the store.

    :param image_id: its full ``sha512-...`` key.
    """


@observe_hook
def rkt_pod_prepared(pod: Any) -> None:
    """A pod finished preparing (manifest written, apps' filesystems ready).

    :param pod: the pod (``PodView``).
    """


@observe_hook
def rkt_before_stage1(pod: Any, flavor: str, options: Any) -> None:
    """A prepared pod is about to be handed to its stage1 flavor.

    :param pod: the pod (``PodView``).
    :param flavor: the flavor's name.
    :param options: the ``RunOptions`` the flavor gets (``metadata_url`` holds a secret token).
    """


@observe_hook
def rkt_pod_exited(pod: Any, exit_code: int) -> None:
    """A pod that rkt ran in the foreground exited.

    :param pod: the pod (``PodView``).
    :param exit_code: the status ``rkt run`` returns.
    """


@observe_hook
def rkt_pod_gc(pod: Any) -> None:
    """A pod is being garbage collected, before its directory is removed.

    :param pod: the pod (``PodView``).
    """

"""Every extension point of rkt, in one place.

A plugin is a module (or object) with functions named like the specs below, marked with
``@rkt_core.hookimpl``, and an entry point in the group ``rkt.plugins``::

    [project.entry-points."rkt.plugins"]
    stage1-fly = "rkt_stage1_fly.plugin"

An implementation may take any subset of a spec's arguments. Hooks come in four kinds:

* **setup** (historic): extend the command line; called once, also for plugins registered late.
* **declare**: return records from :mod:`rkt_core.types`; the facade checks them and refuses
  duplicate names.
* **decide** (first result wins): answer a question; ``None`` means "no opinion".
* **observe**: be told that something happened; every implementation is called, errors are logged
  and never stop the operation.

Core code never calls ``pm.hook`` directly: it goes through :class:`rkt_core.plugins.Plugins`.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pluggy

PROJECT = "rkt"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- setup ------------------------------------------------------------------------------------


@hookspec(historic=True)
def rkt_add_commands(cli: Any) -> None:
    """Add click commands or groups to the ``rkt`` command line.

    :param cli: the top-level ``click.Group``; call ``cli.add_command(...)``.
    """


# --- declare ----------------------------------------------------------------------------------


@hookspec
def rkt_stage1_flavors() -> Iterable[Any]:
    """Declare stage1 flavors (``rkt_core.types.Stage1Flavor``) this plugin provides."""


@hookspec
def rkt_fetchers() -> Iterable[Any]:
    """Declare image fetchers (``rkt_core.types.Fetcher``), one per set of URL schemes."""


@hookspec
def rkt_verifiers() -> Iterable[Any]:
    """Declare image signature verifiers (``rkt_core.types.Verifier``)."""


@hookspec
def rkt_network_backends() -> Iterable[Any]:
    """Declare network backends (``rkt_core.types.NetworkBackend``) for ``--net`` names."""


@hookspec
def rkt_isolators() -> Iterable[Any]:
    """Declare isolator names (``rkt_core.types.Isolator``) that manifests may use."""


# --- decide -----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def rkt_default_stage1_flavor(config: Any) -> Optional[str]:
    """Name the stage1 flavor to use when neither ``--stage1-name`` nor ``stage1.d`` chooses one.

    Stops at the first non-None result; with none, rkt uses ``nspawn``.

    :param config: the merged ``rkt_core.config.Config``.
    """


# --- observe ----------------------------------------------------------------------------------


@hookspec
def rkt_image_fetched(image: Any) -> None:
    """An image entered the store.

    :param image: the store's ``ImageInfo`` (key, name, labels, size, import time).
    """


@hookspec
def rkt_image_removed(image_id: str) -> None:
    """An image left the store.

    :param image_id: its full ``sha512-...`` key.
    """


@hookspec
def rkt_pod_prepared(pod: Any) -> None:
    """A pod finished preparing (manifest written, apps' filesystems ready).

    :param pod: the ``rkt_core.pod`` handle of the pod.
    """


@hookspec
def rkt_before_stage1(pod: Any, flavor: str) -> None:
    """A prepared pod is about to be handed to its stage1 flavor.

    :param pod: the pod handle.
    :param flavor: the flavor's name.
    """


@hookspec
def rkt_pod_exited(pod: Any, exit_code: int) -> None:
    """A pod that rkt ran in the foreground exited.

    :param pod: the pod handle.
    :param exit_code: the status ``rkt run`` returns.
    """


@hookspec
def rkt_pod_gc(pod: Any) -> None:
    """A pod is being garbage collected, before its directory is removed.

    :param pod: the pod handle.
    """

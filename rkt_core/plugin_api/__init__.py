"""The public API for rkt plugins: everything a plugin may use of rkt-core.

A plugin imports from this package and nothing else of ``rkt_core`` (a test of this repository
fails when one of its plugins does). It is a small package, one module per kind of plugin, so
that a plugin imports only what it needs and ``rkt``'s start-up stays cheap:

============================  ============================================================
``rkt_core.plugin_api``       hook marker, hook spec kinds, records (and ``dataclass``,
                              ``field`` to declare a plugin's own), errors, versions
``.stage1``                   for stage1 flavors: the pod's apps, app roots, chroot runner
``.pods``                     pods, read-only: found by uuid, listed
``.images``                   the image store, read-only: images, manifests, remotes
``.network``                  for network backends: ``--net`` requests, namespaces, ports
``.fetch``                    for fetchers: HTTP client, resumable download, archive limits
``.appc``                     the appc image and pod manifest model
``.cli``                      adding a command: the command class, context, pod arguments
``.linux``                    thin wrappers of Linux calls (mount, namespaces, processes)
``.fs``                       crash-safe file writes
============================  ============================================================

Every plugin module named by an entry point says, as a literal, which plugin API it was written
for (``PLUGIN_API`` is the one this rkt-core implements)::

    RKT_PLUGIN_API = 1

rkt refuses (and ``rkt plugins`` reports) a plugin written for an API it does not support.
"""

from __future__ import annotations

from .. import APPC_VERSION, __version__
from ..errors import (EXIT_RKT_ERROR, ImageError, NotFoundError, PluginMissingError, RktError,
                      SignatureError, UsageError, describe)
from ..hookspecs import PLUGIN_API
from ..hookspecs import decide_hook, declare_hook, hookimpl, observe_hook, setup_hook
from ..records import dataclass, field
from ..types import (LOG_KEEPALIVE_SECONDS, FetchedImage, Fetcher, FetchRequest, Isolator,
                     LogLine, NetworkBackend,
                     NetworkRequest, PodNetworks, RemoteInfo, RunOptions, Signer, Stage1,
                     Stage1Features, Stage1Flavor, Stage1Logs, Verifier, VerifyRequest)


class hookspec:  # noqa: N801 - used as a namespace of decorators: @hookspec.declare(Record)
    """Markers for the hook specs a plugin publishes (``rkt_add_hookspecs``), one per kind."""

    setup = staticmethod(setup_hook)
    declare = staticmethod(declare_hook)
    decide = staticmethod(decide_hook)
    observe = staticmethod(observe_hook)


__all__ = [
    "APPC_VERSION", "EXIT_RKT_ERROR", "LOG_KEEPALIVE_SECONDS", "FetchRequest", "FetchedImage", "Fetcher", "ImageError",
    "Isolator", "LogLine", "NetworkBackend", "NetworkRequest", "NotFoundError",
    "PluginMissingError", "PLUGIN_API", "PodNetworks", "RemoteInfo", "RktError", "RunOptions",
    "SignatureError", "Signer", "Stage1", "Stage1Features", "Stage1Flavor", "Stage1Logs",
    "UsageError", "Verifier", "VerifyRequest", "__version__", "dataclass", "describe", "field",
    "hookimpl", "hookspec",
]

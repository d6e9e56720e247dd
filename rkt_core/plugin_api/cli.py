"""Adding a command to ``rkt`` (``rkt_add_commands``), and the context plugins are handed.

Plugin commands are click commands of class :class:`RktCommand` (or groups of
:class:`RktGroup`): they accept rkt's global flags after the command name and Go-style
``--flag=true``. Inside a command, :func:`context` is the invocation's
:class:`PluginContext`; ``rkt_core.plugin_api.pods.open_pod`` finds a pod by (a prefix of) its
uuid, as rkt's pod commands do, :func:`uuid_argument` reads the uuid from an argument or
``--uuid-file`` and :func:`global_flags` are rkt's global flags as given. Raise
:class:`~rkt_core.errors.RktError` for errors: rkt prints ``rkt: <message>`` and exits 254.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..cli.main import get_context
from ..cli.pods import uuid_argument, uuid_arguments
from ..records import dataclass


def __getattr__(name: str):
    # The click classes, imported only by the plugins that add commands (an observer calling
    # context() does not pay for click).
    if name in ("RktCommand", "RktGroup"):
        from ..cli import main

        return getattr(main, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PluginContext(Protocol):
    """What plugins may use of a command's context: ``FetchRequest.context``, the ``ctx`` of
    network backends, :func:`context` in a command."""

    data_dir: str  #: rkt's data directory (``--dir``)
    local_config: str  #: the local configuration directory (``--local-config``, /etc/rkt)
    debug: bool  #: ``--debug``
    config: Any  #: the merged configuration (``auth``, ``docker_auth``, ``paths``, ``stage1``)
    plugins: Any  #: the plugin facade: ``declarations(hook)``, ``decide(hook, ...)``, ``disabled``

    def log(self, message: str) -> None:
        """A debug message, shown only with ``--debug``."""

    def warn(self, message: str) -> None:
        """A warning, always shown (``rkt: <message>`` on stderr)."""

    def insecure_for(self, flag: Any) -> bool:
        """Whether the user switched off the check ``flag`` (an ``Insecure`` member)."""


def context() -> PluginContext:
    """The context of the running ``rkt`` command."""
    return get_context()


@dataclass(frozen=True)
class GlobalFlags:
    """rkt's global flags as the command got them (rkt's API service reports them)."""

    dir: str  #: the data directory, resolved (``--dir``, ``paths.d``, /var/lib/rkt)
    system_config: str
    local_config: str
    user_config: str
    insecure_options: str  #: the checks switched off, comma-separated (``none`` if none)
    trust_keys_from_https: bool


def global_flags(ctx: PluginContext) -> GlobalFlags:
    """The global flags of the command whose context ``ctx`` is."""
    from ..insecure import format_insecure_options

    return GlobalFlags(ctx.data_dir, ctx.system_config, ctx.local_config, ctx.user_config,
                       format_insecure_options(ctx.insecure), ctx.trust_keys_from_https)


__all__ = ["GlobalFlags", "PluginContext", "RktCommand", "RktGroup", "context", "global_flags",
           "uuid_argument", "uuid_arguments"]

"""Adding a command to ``rkt`` (``rkt_add_commands``), and the context plugins are handed.

Plugin commands are click commands of class :class:`RktCommand` (or groups of
:class:`RktGroup`): they accept rkt's global flags after the command name and Go-style
``--flag=true``. Inside a command, :func:`context` is the invocation's
:class:`PluginContext`; :func:`open_pod` finds a pod by (a prefix of) its uuid, as rkt's pod
commands do. Raise :class:`~rkt_core.errors.RktError` for errors: rkt prints ``rkt: <message>``
and exits 254.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Protocol

from ..cli.main import RktCommand, RktGroup, get_context
from ..cli.pods import uuid_argument, uuid_arguments
from ..pod.view import PodView


class PluginContext(Protocol):
    """What plugins may use of a command's context: ``FetchRequest.context``, the ``ctx`` of
    network backends, :func:`context` in a command."""

    data_dir: str  #: rkt's data directory (``--dir``)
    local_config: str  #: the local configuration directory (``--local-config``, /etc/rkt)
    debug: bool  #: ``--debug``
    config: Any  #: the merged configuration (``auth``, ``docker_auth``, ``paths``, ``stage1``)
    plugins: Any  #: the plugin facade: ``declarations(hook)``, ``decide(hook, ...)``, ``disabled``
    store: Any  #: the image store: ``tmp_dir``, ``get_remote(url)`` (fetchers only)

    def log(self, message: str) -> None:
        """A debug message, shown only with ``--debug``."""

    def warn(self, message: str) -> None:
        """A warning, always shown (``rkt: <message>`` on stderr)."""

    def insecure_for(self, flag: Any) -> bool:
        """Whether the user switched off the check ``flag`` (an ``Insecure`` member)."""


def context() -> PluginContext:
    """The context of the running ``rkt`` command."""
    return get_context()


@contextmanager
def open_pod(ctx: PluginContext, uuid: str) -> Iterator[PodView]:
    """The pod whose uuid starts with ``uuid`` (an error if none or several do)."""
    from ..pod.pod import Pod

    with Pod.find(ctx.data_dir, uuid) as pod:
        yield PodView(pod)


__all__ = ["PluginContext", "PodView", "RktCommand", "RktGroup", "context", "open_pod",
           "uuid_argument", "uuid_arguments"]

"""The pods as plugins see them, read-only (:class:`PodView`): found by uuid or listed.

Only stage0 moves pods between states and takes their locks; flavors, network backends and
observers get a view of the pod they deal with, and commands find pods here, and read what
their apps logged (:func:`pod_logs`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..pod.view import PodView
from ..types import LogLine


@contextmanager
def open_pod(ctx, uuid: str) -> Iterator[PodView]:
    """The pod whose uuid starts with ``uuid`` (an error if none or several do)."""
    from ..pod.pod import Pod

    with Pod.find(ctx.data_dir, uuid) as pod:
        yield PodView(pod)


def list_pods(ctx) -> Iterator[PodView]:
    """Every pod that is not garbage yet (prepared, running, exited...), each open only while
    the caller looks at it: the next one is opened after the caller is done with this one."""
    from ..pod.pod import Pod

    for pod in Pod.walk(ctx.data_dir):
        with pod:
            yield PodView(pod)


def pod_dirs(ctx) -> list[tuple[str, str]]:
    """``(state directory, uuid)`` of every pod, from ``embryo`` to ``garbage``, without opening
    any: a cheap way to notice pods that appear, move between states or go."""
    from ..pod.pod import entries

    return list(entries(ctx.data_dir))


def pod_state(ctx, uuid: str) -> str | None:
    """The state of the pod with exactly this uuid, as rkt names it (``running``,
    ``exited``...), or None if it is gone."""
    from ..errors import NotFoundError
    from ..pod.pod import Pod

    try:
        with Pod.open(ctx.data_dir, uuid) as pod:
            return pod.state
    except NotFoundError:
        return None


def pod_logs(ctx, pod: PodView, app: str = "", lines: int = 0, follow: bool = False,
             since: float | None = None, until: float | None = None) -> Iterator[LogLine]:
    """What the pod's apps (``app``: that one) logged, from the flavor that ran it (see
    ``Stage1Logs``: ``lines``, ``follow``, ``since``, ``until``); an error if the flavor keeps
    no logs. Close the iterator when done with it (it may hold a process)."""
    from ..stage0.logs import pod_logs as logs

    return logs(ctx, pod, app, lines, follow, since, until)


__all__ = ["LogLine", "PodView", "list_pods", "open_pod", "pod_dirs", "pod_logs", "pod_state"]

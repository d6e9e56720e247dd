"""The logs of a pod's apps, from its flavor (``Stage1Logs``): ``rkt logs`` and plugins
(the API service's GetLogs) read them here, whichever flavor ran the pod."""

from __future__ import annotations

from typing import Iterator

from ..errors import NotFoundError, RktError
from ..types import LogLine
from .run import load_stage1, pod_flavor


def pod_logs(ctx, pod, app: str = "", lines: int = 0, follow: bool = False,
             since: float | None = None, until: float | None = None) -> Iterator[LogLine]:
    """The lines a pod's apps (``app``: that one) logged, through its flavor's ``logs`` (see
    ``Stage1Logs``); an error if the flavor keeps none or the pod has no such app."""
    names = [a.name for a in pod.manifest().apps]
    if app and app not in names:
        raise NotFoundError(f'the pod has no app "{app}" (apps: {", ".join(names)})')
    if lines < 0:
        raise RktError(f"the number of lines must not be negative (got {lines})")
    stage1 = load_stage1(ctx, pod)
    if not callable(getattr(stage1, "logs", None)):
        raise RktError(f'the {pod_flavor(pod)} flavor keeps no logs of its apps')
    return stage1.logs(pod, app, lines, follow, since, until)

"""``rkt run-prepared``: run a pod made by ``rkt prepare``."""

import os

from ..pod.pod import Pod
from ..stage0.run import run_pod
from .declare import argument, command
from .main import get_context
from .run import build_run_options, run_flags


@command("run-prepared")
@argument("uuid")
@run_flags
def run_prepared(uuid: str, **params) -> int:
    """Run a prepared pod: rkt run-prepared UUID"""
    ctx = get_context()
    ctx.require_write_access("running pods")
    with Pod.find(ctx.data_dir, uuid) as pod:
        if pod.state != "prepared":
            from ..errors import RktError

            raise RktError(f'pod "{pod.uuid}" is not prepared (it is {pod.state})')
        private = os.path.exists(pod.file("private-users-requested"))
        options, net_given = build_run_options(params, private)
        return run_pod(ctx, pod, options, net_given)

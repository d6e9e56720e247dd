"""``rkt stop``: ask running pods to stop (``--force`` kills them)."""

import sys

from ..errors import RktError
from ..pod.pod import Pod
from ..stage0.run import stop_pod
from .declare import argument, command, option
from .main import get_context
from .pods import uuid_arguments


@command()
@argument("uuids", nargs=-1)
@option("--uuid-file", default="", help="read pod UUID from file instead of argument")
@option("--force/--no-force", default=False, help="forced stopping (kill the pod)")
def stop(uuids, uuid_file, force) -> None:
    """Stop one or more running pods."""
    ctx = get_context()
    ctx.require_write_access("stopping pods")
    failed = 0
    for uuid in uuid_arguments(uuids, uuid_file):
        try:
            with Pod.find(ctx.data_dir, uuid) as pod:
                if pod.state in ("exited", "exited garbage", "exited deleting"):
                    print(f'pod "{pod.uuid}" is already stopped', flush=True)
                    continue
            pod = stop_pod(ctx, uuid, force)
            print(f'"{pod.uuid}"', flush=True)
        except RktError as e:
            print(f"rkt: {e}", file=sys.stderr)
            failed += 1
    if failed:
        raise RktError(f"failed to stop {failed} pod(s)")

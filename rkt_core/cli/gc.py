"""``rkt gc``: mark exited pods as garbage and delete those past their grace period."""

from ..errors import RktError
from ..pod.pod import init_pods_dirs
from ..stage0.gc import mark, sweep
from .declare import command, option
from .main import get_context
from .params import DURATION


@command()
@option("--grace-period", type=DURATION, default="30m0s", show_default=True,
        help="duration to wait before discarding inactive pods from garbage")
@option("--expire-prepared", type=DURATION, default="24h0m0s", show_default=True,
        help="duration to wait before expiring prepared pods")
@option("--mark-only/--no-mark-only", default=False,
        help="move to the garbage directories without actually deleting")
def gc(grace_period, expire_prepared, mark_only) -> None:
    """Garbage collect pods that have exited, been marked, or failed to prepare."""
    ctx = get_context()
    ctx.require_write_access("garbage-collecting pods")
    init_pods_dirs(ctx.data_dir)
    mark(ctx, expire_prepared)
    if not mark_only and not sweep(ctx, grace_period):
        raise RktError("some pods could not be removed")

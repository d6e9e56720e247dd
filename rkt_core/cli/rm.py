"""``rkt rm``: remove exited or prepared pods now (never a running one)."""

import sys

from ..errors import RktError
from ..stage0.gc import remove_pod
from .declare import argument, command, option
from .main import get_context
from .pods import uuid_arguments


@command()
@argument("uuids", nargs=-1)
@option("--uuid-file", default="", help="read pod UUID from file instead of argument")
def rm(uuids, uuid_file) -> None:
    """Remove all files and resources associated with exited or prepared pods."""
    ctx = get_context()
    ctx.require_write_access("removing pods")
    failed = 0
    for uuid in uuid_arguments(uuids, uuid_file):
        try:
            remove_pod(ctx, uuid)
        except RktError as e:
            print(f"rkt: {e}", file=sys.stderr)
            failed += 1
    if failed:
        raise RktError("failed to remove one or more pods")

"""``rkt enter``: run a command inside an app of a running pod."""

import click

from ..stage0.run import enter_pod
from .main import RktCommand, get_context


@click.command(cls=RktCommand, context_settings={"allow_interspersed_args": False,
                                                 "ignore_unknown_options": True})
@click.option("--app", default="", help="name of the app to enter within the specified pod")
@click.argument("uuid")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def enter(app, uuid, command) -> int:
    """Enter the namespaces of an app within a rkt pod: rkt enter [--app=APP] UUID [CMD [ARGS...]]"""
    ctx = get_context()
    ctx.require_write_access("entering pods")
    return enter_pod(ctx, uuid, app, list(command))

"""``rkt prepare``: prepare a pod to run later with ``rkt run-prepared``; prints its UUID."""

import click

from ..stage0.prepare import prepare_pod
from ..sys.fs import write_atomic
from .apps import AppsCommand
from .main import get_context
from .run import build_prepare_options, prepare_options


@click.command(cls=AppsCommand)
@prepare_options
@click.option("--quiet/--no-quiet", default=False, help="suppress superfluous output on stderr")
@click.pass_context
def prepare(click_ctx: click.Context, quiet: bool, **params) -> None:  # noqa: ARG001 (rkt's flag)
    """Prepare a pod from image(s) for a later run-prepared."""
    ctx = get_context()
    ctx.require_write_access("preparing pods")
    options = build_prepare_options(click_ctx, params)
    with prepare_pod(ctx, options) as pod:
        if params["private_users"]:  # the user namespace itself is set up at run time
            write_atomic(pod.file("private-users-requested"), b"")
        pod.to_prepared()
        click.echo(pod.uuid)

"""``rkt logs``: the output of a pod's apps, read by the pod's stage1 flavor."""

import click

from ..stage0.run import pod_logs
from .main import RktCommand, get_context
from .pods import uuid_argument


@click.command(cls=RktCommand, context_settings={"allow_interspersed_args": False,
                                                 "ignore_unknown_options": True})
@click.option("--app", default="", help="show only the logs of this app")
@click.option("--uuid-file", default="", help="read pod UUID from file instead of argument")
@click.argument("uuid", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def logs(app, uuid_file, uuid, args) -> int:
    """Show the logs of a pod's apps: rkt logs [--app=APP] UUID [ARGS...] (ARGS go to the
    flavor's log reader: journalctl's options for nspawn, -f for kvm)"""
    return pod_logs(get_context(), uuid_argument(uuid, uuid_file), app, list(args))

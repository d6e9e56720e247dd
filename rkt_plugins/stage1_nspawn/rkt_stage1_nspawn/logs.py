"""``rkt logs``: the journal of a pod of the nspawn flavor, running or exited.

journald inside the pod keeps the journal in the pod's stage1 root
(``var/log/journal/<machine id>``); this runs the host's ``journalctl -D`` on it, with
``-t <app>`` for ``--app``. Further arguments go to journalctl (``-f``, ``-o json``...).
"""

from __future__ import annotations

import os
import shutil

import click

from rkt_core.plugin_api import NotFoundError, RktError
from rkt_core.plugin_api.cli import RktCommand, context, uuid_argument
from rkt_core.plugin_api.pods import open_pod

from . import rootfs


@click.command(cls=RktCommand, context_settings={"allow_interspersed_args": False,
                                                 "ignore_unknown_options": True})
@click.option("--app", default="", help="show only the logs of this app")
@click.option("--uuid-file", default="", help="read pod UUID from file instead of argument")
@click.argument("uuid", required=False)
@click.argument("journalctl_args", nargs=-1, type=click.UNPROCESSED)
def logs(app, uuid_file, uuid, journalctl_args) -> None:
    """Show the logs of a pod's apps (nspawn flavor): rkt logs [--app=APP] UUID [JOURNALCTL ARGS...]"""
    with open_pod(context(), uuid_argument(uuid, uuid_file)) as pod:
        if pod.flavor != "nspawn":
            raise RktError(f'pod "{pod.uuid}" was not run by the nspawn flavor; it has no journal')
        names = [a.name for a in pod.manifest().apps]
        if app and app not in names:
            raise NotFoundError(f'the pod has no app "{app}" (apps: {", ".join(names)})')
        journal = rootfs.journal_dir(pod)
        if not os.path.isdir(journal):
            raise NotFoundError(f'pod "{pod.uuid}" has no journal (it never ran)')
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        raise RktError("journalctl is not installed")
    argv = [journalctl, "-D", journal, "--no-pager"]
    if app:
        argv += ["-t", app]
    os.execv(journalctl, argv + list(journalctl_args))

"""``rkt logs`` for pods of the nspawn flavor, running or exited: their journal.

journald inside the pod keeps the journal in the pod's stage1 root
(``var/log/journal/<machine id>``); this runs the host's ``journalctl -D`` on it, with
``-t <app>`` for ``--app``. Further arguments go to journalctl (``-f``, ``-o json``...).
"""

from __future__ import annotations

import os
import shutil

from rkt_core.plugin_api import NotFoundError, RktError

from . import rootfs


def show(pod, app: str, journalctl_args: list[str]) -> int:
    """Run journalctl on the pod's journal (``app``: only its lines); its exit status."""
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

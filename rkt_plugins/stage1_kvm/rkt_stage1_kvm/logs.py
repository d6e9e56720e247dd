"""``rkt logs`` for pods of the kvm flavor: what each app wrote to stdout and stderr, which
``rkt run`` keeps in ``kvm/logs/<app>`` as it relays it. With several apps and no ``--app``,
each line is prefixed with its app's name. ``-f`` (``--follow``) goes on while the pod runs."""

from __future__ import annotations

import os
import time

from rkt_core.plugin_api import NotFoundError, UsageError

FOLLOW = ("-f", "--follow")
POLL_SECONDS = 0.2


def show(pod, app: str, args: list[str], log_dir: str) -> int:
    """Write the apps' logs to stdout; 0."""
    unknown = [a for a in args if a not in FOLLOW]
    if unknown:
        raise UsageError(f"rkt logs: the kvm flavor knows only -f/--follow (got {unknown[0]})")
    names = [app] if app else [a.name for a in pod.manifest().apps]
    files = {}
    for name in names:
        try:
            files[name] = open(os.path.join(log_dir, name), "rb")
        except FileNotFoundError:
            if app:
                raise NotFoundError(f'app "{app}" of pod "{pod.uuid}" has no log (it never '
                                    "ran)") from None
    prefix = len(names) > 1
    pending = {name: b"" for name in files}
    try:
        while True:
            got = False
            for name, f in files.items():
                chunk = f.read()
                if chunk:
                    got = True
                    _write(name, pending[name] + chunk, prefix, pending)
            if not got:
                if not any(a in FOLLOW for a in args) or not pod.is_locked():
                    break
                time.sleep(POLL_SECONDS)
        for name, rest in pending.items():
            if rest:
                _write(name, rest + b"\n", prefix, pending)
    finally:
        for f in files.values():
            f.close()
    return 0


def _write(name: str, data: bytes, prefix: bool, pending: dict) -> None:
    """Write ``data`` (complete lines, prefixed by the app's name if ``prefix``), keeping an
    unfinished last line for later."""
    if not prefix:
        os.write(1, data)
        pending[name] = b""
        return
    lines = data.split(b"\n")
    pending[name] = lines.pop()
    if lines:
        os.write(1, b"".join(name.encode() + b": " + line + b"\n" for line in lines))

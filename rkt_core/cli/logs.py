"""``rkt logs``: what a pod's apps logged, from the flavor that ran it (``Stage1Logs``)."""

from __future__ import annotations

import sys
import time
from datetime import datetime

import click

from ..errors import UsageError
from ..pod.pod import Pod
from ..pod.view import PodView
from ..stage0.logs import pod_logs
from .main import RktCommand, get_context
from .params import parse_duration
from .pods import uuid_argument


def parse_time(text: str, now: float | None = None) -> float:
    """``@<seconds since the epoch>``, ``-<duration>`` (that long ago, e.g. ``-10m``) or a
    local date and time (``2016-02-01 15:04[:05]``), as seconds since the epoch."""
    text = text.strip()
    try:
        if text.startswith("@"):
            return float(text[1:])
        if text.startswith("-"):
            return (time.time() if now is None else now) + parse_duration(text)
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f'invalid time "{text}": expected @SECONDS, -DURATION (e.g. -10m) or '
                         '"YYYY-MM-DD HH:MM[:SS]"') from None


@click.command(cls=RktCommand)
@click.option("--app", default="", help="show only the logs of this app")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=0,
              help="show only the last N lines (0: all)")
@click.option("-f", "--follow/--no-follow", default=False,
              help="keep showing new lines until the pod exits")
@click.option("--since", default="", help="only lines logged since then (@SECONDS, -DURATION, "
                                          "YYYY-MM-DD HH:MM[:SS])")
@click.option("--until", default="", help="only lines logged until then (same forms)")
@click.option("-o", "--output", type=click.Choice(["short", "cat"]), default="short",
              help="short: time, app and message; cat: the message alone")
@click.option("--uuid-file", default="", help="read pod UUID from file instead of argument")
@click.argument("uuid", required=False)
def logs(app, lines, follow, since, until, output, uuid_file, uuid) -> None:
    """Show what a pod's apps logged (flavors that keep logs: nspawn)."""
    ctx = get_context()
    since_time = parse_time(since) if since else None
    until_time = parse_time(until) if until else None
    with Pod.find(ctx.data_dir, uuid_argument(uuid, uuid_file)) as pod:
        found = pod_logs(ctx, PodView(pod), app, lines, follow, since_time, until_time)
        try:
            for line in found:
                if line is None:  # following, nothing new yet
                    continue
                sys.stdout.write((line.message if output == "cat" else line.formatted()) + "\n")
                if follow:
                    sys.stdout.flush()
        finally:
            close = getattr(found, "close", None)
            if close is not None:
                close()

"""``rkt status``: the state of one pod as key=value lines (or JSON)."""

from __future__ import annotations

import time

from ..duration import parse_duration
from ..pod.pod import Pod
from .declare import Choice, argument, command, option
from .list import pod_json
from .main import get_context
from .output import full_time, print_json
from .pods import format_networks, uuid_argument

FINISHED = {"exited", "exited garbage", "exited deleting", "aborted prepare", "garbage", "deleting"}
POLL_SECONDS = 0.1


def _wait_seconds(value: str | None) -> float | None:
    """``--wait``: none (None), forever (-1), or a duration."""
    if value is None or value.lower() in ("false", "0", "f"):
        return None
    if value.lower() in ("true", "1", "t", ""):
        return -1.0
    return parse_duration(value)


@command()
@argument("uuid", required=False)
@option("--uuid-file", default="", help="read pod UUID from file instead of argument")
@option("--wait", "wait", optional_value="true", default=None, metavar="[BOOL|DURATION]",
        help="wait for the pod to finish (optionally with a timeout)")
@option("--format", "fmt", type=Choice(["", "json", "json-pretty"]), default="",
        help="choose the output format: json or json-pretty")
def status(uuid, uuid_file, wait, fmt) -> None:
    """Check the status of a pod."""
    ctx = get_context()
    with Pod.find(ctx.data_dir, uuid_argument(uuid, uuid_file)) as pod:
        timeout = _wait_seconds(wait)
        if timeout is not None:
            deadline = None if timeout < 0 else time.monotonic() + timeout
            while pod.state not in FINISHED:
                if deadline is not None and time.monotonic() > deadline:
                    from ..errors import RktError

                    raise RktError(f'timed out waiting for pod "{pod.uuid}" to finish')
                time.sleep(POLL_SECONDS)
                pod.refresh()
        if fmt:
            print_json(pod_json(pod), pretty=fmt == "json-pretty")
            return
        state = pod.state
        lines = [f"state={state}"]
        if pod.created_at:
            lines.append(f"created={full_time(pod.created_at)}")
        if pod.started_at:
            lines.append(f"started={full_time(pod.started_at)}")
        if state in ("running", "exited"):
            lines.append(f"networks={format_networks(pod.networks())}")
        if state in ("running", "deleting", "exited deleting", "exited", "exited garbage"):
            if pod.pid is not None:
                lines.append(f"pid={pod.pid}")
            lines.append(f"exited={'true' if state in ('exited', 'exited garbage') else 'false'}")
            if state != "running":
                lines.extend(f"app-{app}={code}" for app, code in pod.app_exit_codes().items())
        print("\n".join(lines), flush=True)

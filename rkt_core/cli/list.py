"""``rkt list``: every pod with its apps, state, times and networks."""

from __future__ import annotations

import sys
import time

from ..errors import NotFoundError, RktError, describe
from ..pod.listing import ListedApp, read_apps
from ..pod.pod import Pod
from .declare import Choice, command, option
from .main import get_context
from .output import full_time, humanize_time, print_json, print_table
from .pods import format_networks


def image_name(pod: Pod, app: ListedApp) -> str:
    """``name:version`` of an app's image: from the pod manifest, else from the image manifest
    kept in the pod (``appsinfo/<app>/manifest``)."""
    name, labels = app.image_name, app.labels
    if not name:
        from ..appc import ImageManifest

        data = pod.read_bytes("appsinfo", app.name, "manifest")
        if data is None:
            raise NotFoundError(f'app "{app.name}" has no image name and no image manifest')
        image = ImageManifest.from_json(data)
        name, labels = image.name, image.labels
    version = labels.get("version")
    return f"{name}:{version}" if version else name


def pod_apps(pod: Pod) -> list[ListedApp]:
    """The apps of the pod manifest, none while the pod has no manifest (embryo, early
    preparing); read once, so that a pod deleted meanwhile gives an error rather than half an
    answer."""
    data = pod.manifest_json()
    return [] if data is None else read_apps(data)


def pod_json(pod: Pod) -> dict:
    """A pod as rkt's JSON list/status formats show it."""
    state = pod.state
    codes = pod.app_exit_codes()
    apps = []
    for ra in pod_apps(pod):
        app = {"name": ra.name, "image_id": ra.image_id or "",
               "state": "running" if state == "running" else "exited" if ra.name in codes else "unknown"}
        if ra.name in codes:
            app["exit_code"] = codes[ra.name]
        apps.append(app)
    result = {"name": pod.uuid, "state": state}
    networks = pod.networks()
    if state in ("running", "exited") and networks:
        result["networks"] = networks
    if apps:
        result["app_names"] = [a["name"] for a in apps]
        result["apps"] = apps
    for key, when in (("created_at", pod.created_at), ("started_at", pod.started_at)):
        if when:
            result[key] = int(when * 1e9)
    return result


@command("list")
@option("--no-legend/--legend", default=False, help="suppress a legend with the list")
@option("--full/--no-full", default=False, help="use long output format")
@option("--format", "fmt", type=Choice(["", "json", "json-pretty"]), default="",
        help="choose the output format: json or json-pretty")
def list_pods(no_legend: bool, full: bool, fmt: str) -> None:
    """List pods."""
    ctx = get_context()
    errors: list[str] = []
    pods_json, rows = [], []
    now = time.time()
    for pod in Pod.walk(ctx.data_dir):
        with pod:
            try:
                if fmt:
                    pods_json.append(pod_json(pod))
                    continue
                rows.extend(_rows(pod, full, now))
            except (RktError, OSError, ValueError) as e:
                if not _vanished(pod):  # a pod deleted meanwhile is simply not listed
                    errors.append(f"unable to read pod {pod.uuid}: {describe(e)}")
    if fmt:
        print_json(pods_json, pretty=fmt == "json-pretty")
    else:
        header = ["UUID", "APP", "IMAGE NAME"] + (["IMAGE ID"] if full else []) + [
            "STATE", "CREATED", "STARTED", "NETWORKS"]
        print_table(header, rows, legend=not no_legend)
    for error in errors:
        print(f"rkt: {error}", file=sys.stderr)


def _rows(pod: Pod, full: bool, now: float) -> list[list[str]]:
    def when(t):
        return "" if not t else full_time(t) if full else humanize_time(t, now)

    apps = pod_apps(pod)
    first = [pod.uuid if full else pod.uuid[:8], pod.state, when(pod.created_at),
             when(pod.started_at), format_networks(pod.networks())]
    if not apps:
        return [[first[0], "-", "-"] + (["-"] if full else []) + first[1:]]
    rows = []
    for ra in apps:
        image = [image_name(pod, ra)] + ([(ra.image_id or "")[:19]] if full else [])
        uuid, rest = (first[0], first[1:]) if not rows else ("", ["", "", "", ""])
        rows.append([uuid, ra.name] + image + rest)
    return rows


def _vanished(pod: Pod) -> bool:
    """Whether a pod was deleted, or is being deleted, while it was read."""
    return pod.is_gone() or pod.state in ("deleting", "exited deleting")

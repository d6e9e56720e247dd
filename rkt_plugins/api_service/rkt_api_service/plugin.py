"""Entry point of rkt-api-service: the ``rkt api-service`` command, and observers that record
the pod, app and image events of every ``rkt`` process in the event journal the service reads.

Cheap to import: gRPC is imported only when the command runs, and the observers only write a
line per event.
"""

from rkt_core.plugin_api import hookimpl

RKT_PLUGIN_API = 1


@hookimpl
def rkt_add_commands(cli):
    from .command import api_service

    cli.add_command(api_service)


@hookimpl
def rkt_pod_prepared(pod):
    _record(pod.data_dir, "POD_PREPARED", pod.uuid, pod.uuid)


@hookimpl
def rkt_before_stage1(pod, flavor):
    _record(pod.data_dir, "POD_STARTED", pod.uuid, pod.uuid, {"flavor": flavor})
    apps = pod.manifest().apps
    if len(apps) == 1:  # its app starts with it; when each app of several starts is not known
        _record(pod.data_dir, "APP_STARTED", pod.uuid, apps[0].name)


@hookimpl
def rkt_pod_exited(pod, exit_code):
    codes = pod.app_exit_codes()
    for app, code in codes.items():
        _record(pod.data_dir, "APP_EXITED", pod.uuid, app, {"exit-code": str(code)})
    data = {"exit-code": str(exit_code)}
    data.update((f"app-{app}", str(code)) for app, code in codes.items())
    _record(pod.data_dir, "POD_EXITED", pod.uuid, pod.uuid, data)


@hookimpl
def rkt_pod_gc(pod):
    _record(pod.data_dir, "POD_GARBAGE_COLLECTED", pod.uuid, pod.uuid)


@hookimpl
def rkt_image_fetched(image):
    data = {"version": image.version} if image.version else {}
    _record(_data_dir(), "IMAGE_IMPORTED", image.key, image.name, data)


@hookimpl
def rkt_image_removed(image_id):
    _record(_data_dir(), "IMAGE_REMOVED", image_id, "")


def _data_dir() -> str | None:
    """The data directory of the running ``rkt`` command (None outside one)."""
    from rkt_core.plugin_api.cli import context

    try:
        return context().data_dir
    except RuntimeError:  # no command runs: rkt's code used as a library
        return None


def _record(data_dir: str | None, kind: str, subject: str, name: str,
            data: dict | None = None) -> None:
    import time

    from .journal import Event, append

    if data_dir is not None:
        append(data_dir, Event(kind, subject, name, time.time(), tuple((data or {}).items())))

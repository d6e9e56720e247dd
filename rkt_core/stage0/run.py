"""Handing a prepared pod to its stage1 flavor: ``run``, ``run-prepared``, ``enter``, ``stop``.

Stage0 refuses flavors of a stage1 interface version it does not drive, and options the flavor
does not support (from its ``Stage1Features`` and its interface version) instead of dropping
them; it moves the pod to ``run/`` under its exclusive lock, and passes the lock's descriptor to
the flavor (also as ``RKT_LOCK_FD``), which keeps it open for the pod's life, and the sockets
``rkt run`` got by socket activation, each with the app it is for (:mod:`.activation`). Flavors
get a read-only :class:`~rkt_core.pod.view.PodView` of the pod. A pod whose stage1 is an image
has it mounted, with the apps' roots, while its flavor runs it (see :mod:`.stage1`).
"""

from __future__ import annotations

import os

from .. import network
from ..crashpoints import crash_point
from ..errors import NotFoundError, PluginMissingError, RktError, UsageError
from ..pod.pod import Pod
from ..pod.view import METADATA_URL_FILE, PodView
from ..sys.fs import write_atomic
from ..types import STAGE1_INTERFACE_VERSIONS, RunOptions, Stage1, Stage1Flavor
from . import stage1 as stage1_image
from ..records import fields, replace
from .activation import claim_sockets, passed_sockets


def pod_flavor(pod: Pod) -> str:
    """The flavor a pod was prepared for (``stage1/flavor``)."""
    name = pod.read_text("stage1", "flavor")
    if not name:
        raise RktError(f'pod "{pod.uuid}" records no stage1 flavor')
    return name


def flavor_record(ctx, name: str) -> Stage1Flavor:
    """The installed flavor ``name``, refused if it implements a stage1 interface version this
    rkt does not drive."""
    record = ctx.plugins.stage1_flavor(name)
    version = record.interface_version
    if version not in STAGE1_INTERFACE_VERSIONS:
        first, last = STAGE1_INTERFACE_VERSIONS[0], STAGE1_INTERFACE_VERSIONS[-1]
        newer = isinstance(version, int) and version > last
        raise PluginMissingError(
            f'the {name} flavor implements stage1 interface version {version!r}; this rkt '
            f"drives versions {first} to {last}",
            hint="upgrade rkt-core" if newer else f"install a newer rkt-stage1-{name}")
    return record


def load_stage1(ctx, pod: Pod) -> Stage1:
    """The stage1 implementation of a pod's flavor (an error names the missing distribution)."""
    return flavor_record(ctx, pod_flavor(pod)).factory()


def check_interface(record: Stage1Flavor, options: RunOptions) -> None:
    """Refuse run options the flavor's stage1 interface version does not know."""
    for option in fields(RunOptions):
        since = option.metadata.get("since", 1)
        if since > record.interface_version and getattr(options, option.name) != option.default:
            raise UsageError(f"the {record.name} flavor (stage1 interface version "
                             f"{record.interface_version}) does not support "
                             f"{option.metadata['flag']} (version {since} and later)")


def check_options(stage1: Stage1, flavor: str, manifest, options: RunOptions,
                  net_given: bool) -> RunOptions:
    """Refuse what the flavor cannot do; default ``--net`` for it."""
    features = stage1.features
    if not net_given:
        options = replace(options, net=("default",) if features.contained_network else ("host",))
    elif not features.contained_network and options.net != ("host",):
        raise UsageError(f'the {flavor} flavor only supports --net=host (got --net={",".join(options.net)})')
    if not features.host_network and network.HOST in options.net:
        raise UsageError(f"the {flavor} flavor needs a contained network; --net=host is not "
                         "supported", hint="use --net=default, a named network or --net=none")
    if manifest.ports and options.net in ((network.HOST,), (network.NONE,)):
        raise UsageError(f"--port does not work with --net={options.net[0]}",
                         hint="forwarded ports need a contained network, e.g. --net=default")
    if options.interactive and not features.interactive:
        raise UsageError(f"the {flavor} flavor does not support --interactive")
    if options.interactive and len(manifest.apps) != 1:
        raise UsageError("--interactive is only supported for pods with exactly one app")
    if options.hostname and not features.own_hostname:
        raise UsageError(f"the {flavor} flavor shares the host's hostname; --hostname is not "
                         "supported")
    if options.private_users and not features.private_users:
        raise UsageError(f"the {flavor} flavor does not support --private-users")
    if len(manifest.apps) > 1 and not features.multi_app:
        raise UsageError(f"the {flavor} flavor runs exactly one app; this pod has {len(manifest.apps)}")
    for app in manifest.apps:
        for isolator in app.app.isolators if app.app else ():
            if isolator.name not in features.isolators:
                raise UsageError(f'the {flavor} flavor cannot apply isolator "{isolator.name}" '
                                 f'(app "{app.name}")',
                                 hint="use a flavor that supports it, e.g. --stage1-name=nspawn")
    return options


def options_checker(ctx, options: RunOptions, net_given: bool):
    """A ``validate`` for :func:`prepare_pod`: refuse, before the pod exists, what its flavor
    cannot run (sockets passed by socket activation that no app claims included)."""
    def validate(flavor: str, manifest) -> None:
        record = flavor_record(ctx, flavor)
        check_interface(record, replace(options, sockets=claim_sockets(manifest,
                                                                       passed_sockets())))
        stage1 = record.factory()
        network.backend_for(ctx, check_options(stage1, flavor, manifest, options, net_given).net)
    return validate


def run_pod(ctx, pod: Pod, options: RunOptions, net_given: bool = False) -> int:
    """Run a preparing or prepared pod in the foreground and return its exit status."""
    flavor = pod_flavor(pod)
    record = flavor_record(ctx, flavor)
    options = replace(options, sockets=claim_sockets(pod.manifest(), passed_sockets()))
    check_interface(record, options)
    stage1 = record.factory()
    options = check_options(stage1, flavor, pod.manifest(), options, net_given)
    pod.to_run()
    crash_point("run.moved")
    os.set_inheritable(pod.lock.fd, True)
    os.environ["RKT_LOCK_FD"] = str(pod.lock.fd)
    options = replace(options, lock_fd=pod.lock.fd)
    # Networks are set up here and released by a guardian process once the pod's last process
    # is gone, even if rkt itself is killed or exec'ed (see rkt_core.network.guardian).
    backend = network.backend_for(ctx, options.net)
    guardian = None
    if options.net != (network.HOST,):
        from ..network.guardian import Guardian  # a host-network pod needs no teardown

        backend.factory()  # imported before the guardian forks: its teardown starts sooner
        guardian = Guardian(ctx, pod)
    try:  # a failed setup is undone by the guardian (at once): one teardown, one report
        options = network.setup(ctx, pod, options, backend, undo=guardian is None,
                                own_hostname=stage1.features.own_hostname)
        view = PodView(pod)
        if options.mds_register:
            options = replace(options, metadata_url=register_pod(ctx, view, options))
            write_atomic(pod.file(METADATA_URL_FILE), options.metadata_url.encode(), mode=0o600,
                         durable=False)
        ctx.plugins.notify("rkt_before_stage1", pod=view, flavor=flavor, options=options)
        with stage1_image.mounted(ctx, pod, apps=True):
            code = stage1.run(view, options)
    finally:
        if guardian is not None:
            guardian.finish(ctx, pod)
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
        raise RktError(f"the {flavor} flavor returned no exit status for the pod (got {code!r})")
    ctx.plugins.notify("rkt_pod_exited", pod=view, exit_code=code)
    return code


def register_pod(ctx, pod: PodView, options: RunOptions) -> str:
    """The metadata service URL a plugin registered the pod under (``--mds-register``); an
    error if none did."""
    url = ctx.plugins.decide("rkt_register_pod", pod=pod, options=options)
    if url is None:
        raise PluginMissingError(
            "--mds-register: no metadata service registered the pod",
            hint='start the metadata service ("rkt metadata-service", pip install '
                 "rkt-metadata-service) or run without --mds-register")
    if (not isinstance(url, str) or not url.startswith(("http://", "https://"))
            or not network.is_word(url)):
        raise RktError(f"--mds-register: the pod was registered under an invalid metadata "
                       f"service URL {url!r}")
    return url


def running_pod(ctx, uuid: str) -> Pod:
    """A pod that must be running (for ``enter`` and ``stop``)."""
    pod = Pod.find(ctx.data_dir, uuid)
    if pod.state != "running":
        state = pod.state
        pod.close()
        raise RktError(f'pod "{pod.uuid}" is not running (it is {state})')
    return pod


def enter_pod(ctx, uuid: str, app: str, argv: list[str]) -> int:
    """Run a command inside an app of a running pod; return its exit status."""
    with running_pod(ctx, uuid) as pod:
        names = [a.name for a in pod.manifest().apps]
        if not app:
            if len(names) != 1:
                raise UsageError(f"the pod has several apps ({', '.join(names)}): choose one with --app")
            app = names[0]
        elif app not in names:
            raise NotFoundError(f'the pod has no app "{app}" (apps: {", ".join(names)})')
        return load_stage1(ctx, pod).enter(PodView(pod), app, argv)


def stop_pod(ctx, uuid: str, force: bool) -> Pod:
    """Ask a running pod to stop (``force``: kill it)."""
    with running_pod(ctx, uuid) as pod:
        load_stage1(ctx, pod).stop(PodView(pod), force)
        return pod

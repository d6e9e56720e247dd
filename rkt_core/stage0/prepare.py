"""``rkt prepare`` and the first half of ``rkt run``: from image arguments to a prepared pod.

Images are fetched first (so a failed fetch leaves no pod), the stage1 image too if one is asked
for (:mod:`.stage1`), then a pod directory is created and locked, the pod manifest is generated
from the images and the command line, each image is rendered in the tree store (and its on-disk
hash checked), and each app gets its root: an empty mount point for an overlay of its tree, or a
private copy of the tree. The layout is described in :mod:`rkt_core.pod.runtime`.
"""

from __future__ import annotations

import copy
import os

from ..appc import (AppcError, Annotations, App, EnvironmentVariable, Isolator, Mount, PodManifest,
                    RuntimeApp, RuntimeImage, Volume, app_name_from_image_name, cpu_isolator,
                    memory_isolator, validate_ac_name)
from ..appc.identifiers import quote
from ..crashpoints import crash_point
from ..errors import NotFoundError, RktError, UsageError
from ..insecure import Insecure
from ..pod.pod import Pod
from ..pod.references import STAGE1_ID, prepare_lock
from ..pod.view import PodView
from ..pod.runtime import STAGE2, shared_volume
from ..store.imagestore import ImageRemovedError
from ..sys.fs import overlay_unsupported_reason, write_atomic
from .fetch import FetchOptions, fetch_image
from ..records import dataclass, field
from .stage1 import WORK_DIR, Stage1Request, choose

CAPS_RETAIN = "os/linux/capabilities-retain-set"
CAPS_REMOVE = "os/linux/capabilities-remove-set"


@dataclass
class AppArgs:
    """One image argument of ``run``/``prepare`` with the flags that followed it."""

    image: str
    args: list[str] | None = None
    exec: str = ""
    name: str = ""
    signature: str = ""
    user: str = ""
    group: str = ""
    supplementary_gids: list[int] | None = None
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    memory: str = ""
    cpu: str = ""
    caps_retain: list[str] | None = None
    caps_remove: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class PrepareOptions:
    """Everything ``prepare`` needs besides the global context."""

    apps: list[AppArgs] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)  # --mount before any image: every app
    set_env: dict[str, str] = field(default_factory=dict)
    inherit_env: bool = False
    pull_policy: str = "new"
    stage1: Stage1Request = Stage1Request()
    no_overlay: bool = False
    pod_manifest: str = ""
    uuid_file_save: str = ""
    ports: list = field(default_factory=list)  # ExposedPort of --port, into the pod manifest


def prepare_pod(ctx, options: PrepareOptions, validate=None) -> Pod:
    """Build a pod from the options; return it still locked, in state *preparing*.

    ``validate(flavor, manifest)``, if given, may refuse the pod before anything is written.
    On any error the pod directory is left unlocked in ``prepare/`` (an aborted prepare, which
    ``rkt gc`` removes) and the error is raised.
    """
    for volume in options.volumes:
        _check_volume_owner(volume, f'--volume "{volume.to_cli()}"')
    stage1 = choose(ctx, options.stage1)
    flavor = stage1.flavor
    if options.pod_manifest:
        manifest, keys = _read_pod_manifest(ctx, options)
    else:
        if not options.apps:
            raise UsageError("at least one image is required")
        keys = _fetch_apps(ctx, options)
        features = ctx.plugins.stage1_flavor(flavor).factory().features
        try:
            manifest = generate_manifest(ctx, options, keys, flavor, features.isolators)
        except ImageRemovedError as e:  # by image rm or gc, between the fetch and now
            ctx.log(f"{e.message}; fetching it again")
            keys = _fetch_apps(ctx, options)
            manifest = generate_manifest(ctx, options, keys, flavor, features.isolators)
    check_plugin_isolators(ctx, manifest)
    if validate is not None:
        validate(flavor, manifest)
    for volume in manifest.volumes:  # what the user gave is checked before the pod exists
        if volume.kind == "host":
            _check_host_source(ctx, volume)
    if options.uuid_file_save:
        _check_uuid_file(options.uuid_file_save)
    use_overlay = _use_overlay(ctx, options.no_overlay)
    pod = Pod.create(ctx.data_dir)
    try:
        if options.uuid_file_save:
            write_atomic(os.path.abspath(options.uuid_file_save), pod.uuid.encode(), mode=0o644)
        with prepare_lock(ctx.data_dir).shared():
            _fetch_removed_images_again(ctx, options, keys)
            _prepare_apps(ctx, pod, manifest, keys, use_overlay)
            if stage1.image:
                _prepare_stage1_image(ctx, pod, stage1.image, use_overlay)
        crash_point("prepare.apps")
        _prepare_volumes(ctx, pod, manifest)
        os.makedirs(pod.file("stage1"), exist_ok=True)
        write_atomic(pod.file("stage1", "flavor"), flavor.encode(), durable=False)
        if use_overlay:
            write_atomic(pod.file("overlay-prepared"), b"", durable=False)
        write_atomic(pod.file("pod"), manifest.to_json().encode(), mode=0o640, durable=False)
        write_atomic(pod.file("pod-created"), b"", durable=False)
    except BaseException:
        pod.unlock()
        pod.close()
        raise
    ctx.plugins.notify("rkt_pod_prepared", pod=PodView(pod))
    return pod


def check_plugin_isolators(ctx, manifest: PodManifest) -> None:
    """Refuse a wrong value of an isolator a plugin declared (``rkt_isolators``)."""
    declared = ctx.plugins.isolators()
    for ra in manifest.apps:
        for isolator in ra.app.isolators if ra.app else ():
            record = declared.get(isolator.name)
            if record is None:
                continue
            try:
                record.validate(isolator.value)
            except ValueError as e:
                raise UsageError(f'app "{ra.name}": isolator "{isolator.name}": {e}') from None


def _use_overlay(ctx, no_overlay: bool) -> bool:
    if no_overlay:
        return False
    reason = overlay_unsupported_reason(ctx.data_dir)
    if reason:
        ctx.warn(f"warning: {reason}; copying image trees instead of using overlayfs")
        return False
    return True


def _read_pod_manifest(ctx, options: PrepareOptions) -> tuple[PodManifest, list[str]]:
    if options.apps or options.volumes or options.mounts or options.set_env or options.ports:
        raise UsageError("--pod-manifest cannot be combined with images, volumes, mounts, "
                         "ports or environment flags")
    try:
        with open(options.pod_manifest, "rb") as f:
            manifest = PodManifest.from_json(f.read())
    except OSError as e:
        raise RktError(f"reading pod manifest {options.pod_manifest}: {e.strerror}") from None
    except AppcError as e:
        raise AppcError(f"pod manifest {options.pod_manifest}: {e.message}") from None
    for volume in manifest.volumes:
        _check_volume_owner(volume, f"pod manifest {options.pod_manifest}")
    if not manifest.apps:
        raise RktError("the pod manifest has no apps")
    keys = []
    for ra in manifest.apps:
        if not ra.image.id:
            raise RktError(f'no image ID for app "{ra.name}" in the pod manifest')
        key = ctx.store.resolve_key(ra.image.id)
        if ra.app is None and ctx.store.manifest(key).app is None:
            raise RktError(f'app "{ra.name}": no app section in the pod manifest or the image manifest')
        if ra.app is None:
            ra.app = ctx.store.manifest(key).app
        keys.append(key)
    manifest.ac_version = manifest.ac_version or "0.7.4"
    return manifest, keys


def generate_manifest(ctx, options: PrepareOptions, keys: list[str], flavor: str,
                      applicable: frozenset[str]) -> PodManifest:
    """The pod manifest for images given on the command line (rkt's rules for names, exec,
    environment and isolators; image annotations copied into each app).

    An image's isolators that the flavor cannot apply (not in ``applicable``) are left out with
    a warning, as rkt's fly flavor ignored them; those asked for on the command line stay, for
    the flavor check to refuse.
    """
    apps: list[RuntimeApp] = []
    volumes = list(options.volumes)
    volume_names = {v.name for v in volumes}
    if len(volume_names) != len(volumes):
        raise UsageError("a volume name was given twice with --volume")
    for args, key in zip(options.apps, keys):
        image = ctx.store.manifest(key)
        name = args.name or app_name_from_image_name(image.name)
        validate_ac_name(name, "app name")
        if any(a.name == name for a in apps):
            raise RktError(f'more than one app is named "{name}": name them apart with --name')
        isolators = _image_isolators(ctx, image, name, flavor, applicable)
        app = _app_section(ctx, options, args, image, isolators)
        mounts = list(options.mounts) + list(args.mounts)
        for mp in app.mount_points:
            if any(m.volume == mp.name or m.path == mp.path for m in mounts):
                continue
            if mp.name not in volume_names:
                ctx.warn(f'warning: no volume specified for mount point "{mp.name}" of app '
                         f'"{name}", implicitly creating an "empty" volume; it is removed when '
                         "the pod is garbage-collected")
                volumes.append(Volume(mp.name, "empty", read_only=mp.read_only))
                volume_names.add(mp.name)
            mounts.append(Mount(mp.name, mp.path))
        for mount in mounts:
            if mount.volume not in volume_names:
                raise UsageError(f'app "{name}" mounts volume "{mount.volume}", which no --volume defines')
        apps.append(RuntimeApp(name, RuntimeImage(image.name, key, image.labels), app, mounts,
                               Annotations(list(image.annotations))))
    manifest = PodManifest(apps=apps, volumes=volumes, ports=list(options.ports))
    if manifest.ports:
        from ..network import forwarded_ports

        forwarded_ports(manifest)  # every --port names a port an app declares
    return manifest


def _image_isolators(ctx, image, app_name: str, flavor: str,
                     applicable: frozenset[str]) -> list[Isolator]:
    """The image's isolators that the flavor can apply; a warning for each of the others."""
    isolators = list(image.app.isolators) if image.app else []
    for isolator in isolators:
        if isolator.name not in applicable:
            ctx.warn(f'warning: the {flavor} flavor ignores isolator "{isolator.name}" of app '
                     f'"{app_name}" (declared by its image)')
    return [i for i in isolators if i.name in applicable]


def _app_section(ctx, options: PrepareOptions, args: AppArgs, image,
                 isolators: list[Isolator]) -> App:
    if image.app is None and not args.exec:
        raise RktError(f'image "{image.name}" has no app section and --exec was not given')
    app = copy.deepcopy(image.app) if image.app else App(user=str(os.getuid()), group=str(os.getgid()))
    if args.exec:
        app.exec = [args.exec]
    if args.args is not None:
        app.exec = list(app.exec) + list(args.args)
    if not app.exec:
        raise RktError(f'image "{image.name}" has nothing to execute: give --exec')
    if args.working_dir:
        app.working_directory = args.working_dir
    if args.user:
        app.user = args.user
    if args.group:
        app.group = args.group
    if args.supplementary_gids is not None:
        app.supplementary_gids = list(args.supplementary_gids)
    app.isolators = _isolators(isolators, args)
    env = {e.name: e.value for e in app.environment}
    if options.inherit_env:  # the host's environment never overrides the image's
        env = {**{k: v for k, v in os.environ.items() if _env_name_ok(k)}, **env}
    env.update(options.set_env)
    env.update(args.environment)
    app.environment = [EnvironmentVariable(k, v) for k, v in env.items()]
    try:
        app.validate()
    except AppcError as e:
        raise UsageError(f'app of image "{image.name}": {e}') from None
    return app


def _env_name_ok(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and all(
        c.isalnum() or c == "_" for c in name) and name.isascii()


def _isolators(isolators: list[Isolator], args: AppArgs) -> list[Isolator]:
    result = list(isolators)
    if args.memory:
        result = [i for i in result if i.name != "resource/memory"] + [memory_isolator(args.memory)]
    if args.cpu:
        result = [i for i in result if i.name != "resource/cpu"] + [cpu_isolator(args.cpu)]
    if args.caps_retain is not None and args.caps_remove is not None:
        raise UsageError("cannot use both --caps-retain and --caps-remove on the same image")
    for caps, name in ((args.caps_retain, CAPS_RETAIN), (args.caps_remove, CAPS_REMOVE)):
        if caps is not None:
            result = [i for i in result if i.name not in (CAPS_RETAIN, CAPS_REMOVE)]
            result.append(Isolator(name, {"set": [_cap_name(c) for c in caps]}))
    return result


def _cap_name(cap: str) -> str:
    cap = cap.strip().upper()
    return cap if cap.startswith("CAP_") else "CAP_" + cap


def _fetch_apps(ctx, options: PrepareOptions) -> list[str]:
    """Fetch the image of every app (as the pull policy says); their store keys."""
    return [fetch_image(ctx, app.image, FetchOptions(options.pull_policy, app.signature or None))
            for app in options.apps]


def _fetch_removed_images_again(ctx, options: PrepareOptions, keys: list[str]) -> None:
    """Fetch again the images an ``image rm`` or ``image gc`` removed since they were fetched
    (call it holding the prepare lock, so that they stay). Only the same image will do: one that
    comes back with another ID, or not at all, is left to :func:`_prepare_apps` to report."""
    if options.pod_manifest:
        return
    for app, key in zip(options.apps, keys):
        if ctx.store.find_info(key) is None:
            try:
                fetch_image(ctx, app.image, FetchOptions(options.pull_policy,
                                                         app.signature or None))
            except RktError as e:
                ctx.log(f"image {app.image} removed meanwhile; fetching it again failed: {e}")


def _rendered_tree(ctx, trees, key: str) -> str:
    """The tree of image ``key``, rendered if need be, and rendered again (with a warning) if
    it was modified on disk."""
    from ..store.treestore import TreeVerificationError

    tree = trees.render(key, warn=ctx.warn)
    if not ctx.insecure_for(Insecure.ONDISK):
        try:
            trees.check(tree)
        except TreeVerificationError as e:
            ctx.warn(f"warning: tree cache is in a bad state: {e}. Rebuilding...")
            tree = trees.rebuild(key, warn=ctx.warn)
    return tree


def _prepare_apps(ctx, pod: Pod, manifest: PodManifest, keys: list[str], use_overlay: bool) -> None:
    from ..store.treestore import TreeStore

    trees = TreeStore(ctx.store)
    for ra, key in zip(manifest.apps, keys):
        if ctx.store.find_info(key) is None:
            raise NotFoundError(f'image "{key}" of app "{ra.name}" was removed from the store '
                                'while the pod was being prepared (by "rkt image rm" or '
                                '"rkt image gc")', hint="run the command again")
        tree = _rendered_tree(ctx, trees, key)
        info_dir = pod.file("appsinfo", ra.name)
        os.makedirs(info_dir, mode=0o750)
        write_atomic(os.path.join(info_dir, "manifest"), ctx.store.manifest_json(key), mode=0o640,
                     durable=False)
        write_atomic(os.path.join(info_dir, "treeStoreID"), tree.encode(), mode=0o640, durable=False)
        rootfs = pod.file(*STAGE2, ra.name, "rootfs")
        if use_overlay:
            os.makedirs(rootfs, mode=0o755)
            for part in ("upper", "work"):
                os.makedirs(pod.file("overlay", ra.name, part), mode=0o755)
        else:
            os.makedirs(os.path.dirname(rootfs), mode=0o755)
            _copy_tree(trees.rootfs(tree), rootfs)
        ctx.store.mark_used(key)


def _prepare_stage1_image(ctx, pod: Pod, key: str, use_overlay: bool) -> None:
    """The stage1 image's tree rendered (and checked), its manifest in ``stage1/manifest``, its
    key in ``stage1ID`` (as rkt: ``image gc`` keeps it while the pod runs), its tree id in
    ``stage1TreeStoreID``; without overlay, the tree copied into ``stage1/rootfs``
    (beside the apps' roots), else the overlay's directories (see :func:`.stage1.mounted`)."""
    from ..store.treestore import TreeStore

    trees = TreeStore(ctx.store)
    tree = _rendered_tree(ctx, trees, key)
    rootfs = pod.file("stage1", "rootfs")
    os.makedirs(rootfs, mode=0o755, exist_ok=True)
    write_atomic(pod.file("stage1", "manifest"), ctx.store.manifest_json(key), mode=0o640, durable=False)
    write_atomic(pod.file(STAGE1_ID), key.encode(), mode=0o640, durable=False)
    if use_overlay:
        os.mkdir(pod.file(*WORK_DIR), 0o700)
        os.chmod(rootfs, os.stat(trees.rootfs(tree)).st_mode & 0o7777)
    else:
        _copy_tree(os.path.join(trees.rootfs(tree), "."), rootfs)
    write_atomic(pod.file("stage1TreeStoreID"), tree.encode(), mode=0o640, durable=False)
    ctx.store.mark_used(key)


def _copy_tree(source: str, target: str) -> None:
    """Copy a rendered tree keeping owners, modes, times, xattrs, hard links and devices."""
    import shutil  # here: only pods without overlay copy trees
    import subprocess

    result = subprocess.run(["cp", "-a", "--reflink=auto", source, target],
                            capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise RktError(f"copying the image tree into the pod failed: {result.stderr.strip()}")


_FORBIDDEN_HOST_PATHS = ("/", "/proc", "/sys", "/dev")


def _check_host_source(ctx, volume: Volume) -> None:
    """A host volume must exist and must not expose the whole host or rkt's own data."""
    source = os.path.realpath(volume.source)
    if not os.path.exists(source):
        raise RktError(f'volume "{volume.name}": host path "{volume.source}" does not exist')
    if ctx.insecure_for(Insecure.PATHS):
        return
    data = os.path.realpath(ctx.data_dir)
    if source in _FORBIDDEN_HOST_PATHS or source == data or source.startswith(data + "/") \
            or data.startswith(source.rstrip("/") + "/"):
        raise RktError(f'volume "{volume.name}": refusing to share "{volume.source}" with a pod',
                       hint="use --insecure-options=paths if you really mean it")


def _check_uuid_file(path: str) -> None:
    """``--uuid-file-save`` must name a file that can be written in an existing directory."""
    directory, name = os.path.split(os.path.abspath(path))
    what = f"--uuid-file-save {quote(path)}"
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise UsageError(f"{what}: the path contains a control character")
    if len(name.encode("utf-8", "surrogateescape")) > 255 or not name:
        raise UsageError(f"{what}: not a valid file name (at most 255 bytes)")
    if not os.path.isdir(directory):
        raise UsageError(f"{what}: directory {quote(directory)} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: directory {quote(directory)} is not writable")


MAX_ID = (1 << 32) - 2  # the highest uid or gid; (uid_t) -1 means "unchanged" to chown(2)


def _check_volume_owner(volume: Volume, given_by: str) -> None:
    """An empty volume's uid and gid must be ids a directory can be given."""
    if volume.kind != "empty":
        return
    for key in ("uid", "gid"):
        value = getattr(volume, key)
        if value is not None and not 0 <= value <= MAX_ID:
            raise UsageError(f'volume "{volume.name}" ({given_by}): {key} {value} is out of range '
                             f"(0 to {MAX_ID})")


def _prepare_volumes(ctx, pod: Pod, manifest: PodManifest) -> None:
    for volume in manifest.volumes:
        if volume.kind == "host":
            continue
        path = shared_volume(pod.path, volume.name)
        os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
        os.mkdir(path)
        os.chmod(path, int(volume.mode or "0755", 8))
        os.chown(path, volume.uid or 0, volume.gid or 0)

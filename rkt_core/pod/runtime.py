"""What a flavor needs to start each app of a prepared pod, read from the pod directory.

Stage0 (``rkt prepare``) leaves in the pod directory:

- ``pod``: the reified pod manifest (every app with its image ID and full ``app`` section, the
  environment already merged from image, ``--set-env`` and ``--environment``);
- ``appsinfo/<app>/manifest`` (the image manifest) and ``appsinfo/<app>/treeStoreID``;
- ``stage1/rootfs/opt/stage2/<app>/rootfs``: the app's root, either an empty mount point for an
  overlay of the rendered tree (``overlay/<app>/{upper,work}``, marker ``overlay-prepared``) or a
  private copy of the tree (``--no-overlay``);
- ``sharedVolumes/<volume>`` for each ``empty`` volume (mode, uid and gid as the volume says);
- ``stage1/flavor``: the name of the flavor that runs the pod.

:func:`app_runtimes` turns that into one :class:`AppRuntime` per app; :func:`resolve_user` and
:func:`process_environment` finish the job once the app's root is visible.
"""

from __future__ import annotations

import os

from ..appc import App, Isolator, PodManifest
from ..appc.pod_manifest import Volume
from ..errors import RktError
from ..records import dataclass, field

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STAGE2 = ("stage1", "rootfs", "opt", "stage2")


@dataclass(frozen=True)
class VolumeMount:
    """A volume bound into an app: ``source`` on the host, ``target`` inside the app's root."""

    volume: str
    source: str
    target: str
    read_only: bool


@dataclass
class AppRuntime:
    """One app of a pod, ready to start."""

    name: str
    image_name: str
    image_id: str
    tree_id: str
    rootfs: str
    overlay: bool
    exec: list[str]
    user: str
    group: str
    supplementary_gids: list[int]
    working_directory: str
    environment: dict[str, str]
    mounts: list[VolumeMount] = field(default_factory=list)
    isolators: list[Isolator] = field(default_factory=list)
    pre_start: list[str] | None = None
    post_stop: list[str] | None = None

    # With ``overlay``: the read-only rendered tree and the pod's writable layer over it.
    tree_rootfs: str = ""
    overlay_upper: str = ""
    overlay_work: str = ""


def app_rootfs(pod_path: str, app: str) -> str:
    """Where an app's root filesystem is (or is mounted) inside the pod directory."""
    return os.path.join(pod_path, *STAGE2, app, "rootfs")


def shared_volume(pod_path: str, volume: str) -> str:
    """The pod's directory backing an ``empty`` volume."""
    return os.path.join(pod_path, "sharedVolumes", volume)


def _volume_source(pod_path: str, volume: Volume) -> str:
    return volume.source if volume.kind == "host" else shared_volume(pod_path, volume.name)


def app_runtimes(data_dir: str, pod_path: str, manifest: PodManifest) -> list[AppRuntime]:
    """The apps of a prepared pod, in manifest order."""
    volumes = {v.name: v for v in manifest.volumes}
    overlay = os.path.exists(os.path.join(pod_path, "overlay-prepared"))
    result = []
    for ra in manifest.apps:
        app: App | None = ra.app
        if app is None:
            raise RktError(f'app "{ra.name}" of the pod has no app section to run')
        mounts = []
        for mount in ra.mounts:
            volume = volumes.get(mount.volume)
            if volume is None:
                raise RktError(f'app "{ra.name}" mounts volume "{mount.volume}", which the pod '
                               "does not define")
            read_only = bool(volume.read_only) or any(
                mp.read_only for mp in app.mount_points if mp.name == mount.volume)
            mounts.append(VolumeMount(volume.name, _volume_source(pod_path, volume), mount.path,
                                      read_only))
        handlers = {h.name: list(h.exec) for h in app.event_handlers}
        tree = _read(os.path.join(pod_path, "appsinfo", ra.name, "treeStoreID"))
        result.append(AppRuntime(
            name=ra.name, image_name=ra.image.name or "", image_id=ra.image.id or "",
            tree_id=tree, rootfs=app_rootfs(pod_path, ra.name), overlay=overlay,
            exec=list(app.exec), user=app.user, group=app.group,
            supplementary_gids=list(app.supplementary_gids),
            working_directory=app.working_directory or "/",
            environment={e.name: e.value for e in app.environment},
            mounts=mounts, isolators=list(app.isolators),
            pre_start=handlers.get("pre-start"), post_stop=handlers.get("post-stop"),
            tree_rootfs=os.path.join(data_dir, "cas", "tree", tree, "rootfs"),
            overlay_upper=os.path.join(pod_path, "overlay", ra.name, "upper"),
            overlay_work=os.path.join(pod_path, "overlay", ra.name, "work")))
    return result


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class Account:
    """A user as the app will run: ids, supplementary groups, and passwd details if known."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    home: str
    shell: str


def _parse_db(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split(":")
            if len(parts) >= fields:
                rows.append(parts)
    return rows


def resolve_user(app: AppRuntime, read_file, owner_of) -> Account:
    """The numeric identity of an app, resolved as appc says.

    ``read_file(path)`` returns the content of a file inside the app's root (or None), and
    ``owner_of(path)`` the (uid, gid) of a path inside it; flavors pass functions that stay
    inside the root. A user or group is looked up in the image's ``/etc/passwd`` and
    ``/etc/group`` first, then taken as a number, then as the owner of an absolute path.
    """
    passwd = _parse_db(read_file("/etc/passwd") or "", 7)
    groups = _parse_db(read_file("/etc/group") or "", 4)
    entry = None
    for row in passwd:
        if row[0] == app.user:
            entry = row
    if entry is not None:
        uid = int(entry[2])
    elif app.user.isdigit():
        uid = int(app.user)
        entry = next((row for row in passwd if row[2] == app.user), None)
    elif app.user.startswith("/"):
        uid = owner_of(app.user)[0]
    else:
        raise RktError(f'app "{app.name}": user "{app.user}" is not in the image\'s /etc/passwd')
    group_row = next((row for row in groups if row[0] == app.group), None)
    if group_row is not None:
        gid = int(group_row[2])
    elif app.group.isdigit():
        gid = int(app.group)
    elif app.group.startswith("/"):
        gid = owner_of(app.group)[1]
    else:
        raise RktError(f'app "{app.name}": group "{app.group}" is not in the image\'s /etc/group')
    name = entry[0] if entry else ("root" if uid == 0 else str(uid))
    home = entry[5] if entry and entry[5] else ("/root" if uid == 0 else "/")
    shell = entry[6] if entry and entry[6] else "/bin/sh"
    return Account(uid, gid, tuple(app.supplementary_gids), name, home, shell)


def process_environment(app: AppRuntime, account: Account, metadata_url: str = "",
                        interactive: bool = False) -> dict[str, str]:
    """The environment of an app's processes: ACE defaults, then the app's own variables, then
    ``AC_APP_NAME``/``AC_METADATA_URL``, which the app cannot override."""
    env = {"PATH": DEFAULT_PATH, "HOME": account.home, "USER": account.name,
           "LOGNAME": account.name, "SHELL": account.shell, "container": "rkt"}
    if interactive:
        env["TERM"] = os.environ.get("TERM", "xterm")
    env.update(app.environment)
    env["AC_APP_NAME"] = app.name
    if metadata_url:
        env["AC_METADATA_URL"] = metadata_url
    return env

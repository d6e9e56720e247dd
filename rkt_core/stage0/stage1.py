"""The pod's stage1: which flavor runs it and, when that is a stage1 image, the image itself.

A pod is run by a stage1 flavor (a plugin), chosen by name, or by a *stage1 image*: one of rkt's
stage1 ACIs, which a flavor that sets ``Stage1Flavor.check_image`` runs (rkt-stage1-image).
:func:`choose` follows rkt's rules:

- ``--stage1-name=NAME`` is a flavor's name (``fly``), or an image name and version
  (``example.com/stage1:1.0``: from the store, else by discovery). rkt's own image names stand
  for the installed flavor that replaces them (``coreos.com/rkt/stage1-fly`` -> ``fly``,
  ``-coreos``/``-src``/``-host`` -> ``nspawn``, ``-kvm`` -> ``kvm``); an image of such a name is
  run only when that flavor is not installed.
- ``--stage1-path``, ``--stage1-url``, ``--stage1-hash`` and ``--stage1-from-dir`` (a file in
  the stage1 images directory, ``paths.d`` ``stage1-images``) always ask for an image. v0.14's
  ``--stage1-image`` takes any of these; a path to no file whose name is rkt's
  (``/usr/lib/rkt/stage1-fly.aci``) stands for the flavor as a name does.
- Without a flag, ``stage1.d``: its ``name`` and ``version`` (a flavor, or an image in the store,
  never pulled), else its ``location``; without one, a plugin's choice, else ``nspawn``.

Images are fetched like any image (pull policy ``new``; signatures checked) except that images
in the directory rkt installs them in (:data:`TRUSTED_IMAGES_DIR`) and images found in the store
by name or hash need no signature, as in rkt.

In the pod, prepare records the image's manifest (``stage1/manifest``) and rendered tree
(``stage1TreeStoreID``); with ``--no-overlay`` the tree is copied into ``stage1/rootfs``. On an
overlay, :func:`mounted` mounts it there, with each app's root under it, while the flavor runs
the pod (and the tree alone for its gc). The overlay's upper layer is ``stage1/rootfs`` itself:
what the stage1 writes there (``rkt/status/<app>``) stays in the pod directory once unmounted.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

from ..config import DEFAULT_SYSTEM_CONFIG
from ..errors import NotFoundError, RktError, UsageError
from .imageref import HASH, NAME, PATH, URL, classify
from ..records import dataclass

TRUSTED_IMAGES_DIR = os.path.join(DEFAULT_SYSTEM_CONFIG, "stage1-images")
KINDS = ("name", "path", "url", "hash", "from-dir", "image")  # the --stage1-KIND flags
RKT_IMAGE_NAME = r"^coreos\.com/rkt/stage1-([a-z0-9-]+)(:.*)?$"
RKT_IMAGE_FILE = r"^stage1-([a-z0-9-]+)\.aci$"
FLAVOR_OF_RKT_IMAGE = {"coreos": "nspawn", "src": "nspawn", "host": "nspawn"}  # else same name
WORK_DIR = ("stage1", "overlay-work")
_TREE_ID = r"^deps-sha512-[0-9a-f]{64}$"


@dataclass(frozen=True)
class Stage1Request:
    """A ``--stage1-KIND=VALUE`` flag (``kind`` one of :data:`KINDS`), or none (``kind=""``)."""

    kind: str = ""
    value: str = ""


@dataclass(frozen=True)
class Stage1:
    """The chosen stage1: a flavor and, if it runs a stage1 image, the image's store key."""

    flavor: str
    image: str = ""


def request_from_flags(values: dict[str, tuple[str, ...]]) -> Stage1Request:
    """The request of the ``--stage1-*`` flags (``values``: kind -> values given); the flags
    are mutually exclusive and each may be given once, as in rkt."""
    given = [(kind, values[kind]) for kind in KINDS if values.get(kind)]
    if len(given) > 1:
        raise UsageError(f"flags --stage1-{given[0][0]} and --stage1-{given[1][0]} are mutually "
                         "exclusive")
    if not given:
        return Stage1Request()
    kind, flag_values = given[0]
    if len(flag_values) > 1:
        raise UsageError(f"--stage1-{kind} already used")
    if not flag_values[0]:
        raise UsageError(f"--stage1-{kind} needs a value")
    return Stage1Request(kind, flag_values[0])


def choose(ctx, request: Stage1Request) -> Stage1:
    """The flavor (and stage1 image, fetched into the store) a pod is to run with."""
    kind, value = request.kind, request.value
    if kind == "image":
        kind, value = _v014_kind(ctx, value)
    if kind == "name":
        return _by_name(ctx, value)
    if kind:
        return _image(ctx, _fetch_flag(ctx, kind, value))
    return _configured(ctx)


def flavor_meant_by(name: str) -> str:
    """The flavor rkt's image name ``coreos.com/rkt/stage1-fly[:VERSION]`` (or file name
    ``stage1-fly.aci``) stands for; "" for other names."""
    match = re.match(RKT_IMAGE_NAME, name) or re.match(RKT_IMAGE_FILE, os.path.basename(name))
    if not match:
        return ""
    return FLAVOR_OF_RKT_IMAGE.get(match.group(1), match.group(1))


def _installed(ctx, flavor: str) -> bool:
    return bool(flavor) and flavor in ctx.plugins.stage1_flavors()


def _flavor(ctx, name: str) -> Stage1:
    record = ctx.plugins.stage1_flavor(name)
    if record.check_image is not None:
        raise UsageError(f"the {name} flavor runs stage1 images: give one with --stage1-path, "
                         "--stage1-url, --stage1-name=NAME:VERSION, --stage1-hash or "
                         "--stage1-from-dir")
    return Stage1(name)


def _image(ctx, key: str) -> Stage1:
    return Stage1(ctx.plugins.stage1_image_flavor(ctx.store.manifest(key)).name, key)


def _is_name(text: str) -> bool:
    """Whether ``text`` is no ID, URL or path (a file so named in the working directory does
    not make it a path here)."""
    kind = classify(text).kind
    return kind == NAME or (kind == PATH and not (os.path.isabs(text) or "./" in text
                                                  or text.endswith(".aci")))


def _by_name(ctx, name: str) -> Stage1:
    if not _is_name(name):
        raise UsageError(f'--stage1-name "{name}": expected a flavor or an image name[:version] '
                         "(for files, URLs and IDs use --stage1-path, --stage1-url, --stage1-hash)")
    if "/" not in name:  # a flavor's own name
        return _flavor(ctx, name.split(":")[0])
    from .fetch import FetchOptions, fetch_image

    flavor = flavor_meant_by(name)
    if _installed(ctx, flavor):
        return _flavor(ctx, flavor)
    try:
        return _image(ctx, fetch_image(ctx, name, FetchOptions("new")))
    except RktError as e:
        if flavor:
            e.hint = f"to run pods with the {flavor} flavor instead: pip install rkt-stage1-{flavor}"
        raise


def _v014_kind(ctx, value: str) -> tuple[str, str]:
    """What v0.14's ``--stage1-image`` value is: a hash, URL, path or name."""
    ref = classify(value)
    if ref.kind == HASH:
        return "hash", value
    if ref.kind == URL:
        return "url", value
    if ref.kind == PATH:
        flavor = flavor_meant_by(value)
        if not os.path.exists(value) and _installed(ctx, flavor):
            return "name", flavor
        return "path", value
    return "name", value


def _trusted(path: str) -> bool:
    """Whether ``path`` is in the directory rkt's packages install stage1 images in."""
    return os.path.realpath(path).startswith(TRUSTED_IMAGES_DIR + "/")


def images_dir(ctx) -> str:
    """The stage1 images directory (``paths.d`` ``stage1-images``, else rkt's default)."""
    return ctx.config.stage1_images_dir or TRUSTED_IMAGES_DIR


def _fetch_location(ctx, location: str) -> str:
    """Fetch a stage1 image by path or URL; unsigned only from the trusted directory."""
    from .fetch import FetchOptions, fetch_image

    verify = not (classify(location).kind == PATH and _trusted(location))
    return fetch_image(ctx, location, FetchOptions("new", verify=verify))


def _fetch_flag(ctx, kind: str, value: str) -> str:
    if kind == "hash":
        if classify(value).kind != HASH:
            raise UsageError(f'--stage1-hash "{value}": expected an image ID (sha512-...)')
        return ctx.store.resolve_key(value)
    if kind == "url":
        if classify(value).kind != URL:
            raise UsageError(f'--stage1-url "{value}": expected a URL (for a file, use '
                             "--stage1-path)")
        return _fetch_location(ctx, value)
    if kind == "from-dir":
        if "/" in value or value in (".", ".."):
            raise UsageError(f'--stage1-from-dir "{value}": expected a file name in the stage1 '
                             f"images directory ({images_dir(ctx)})")
        return _fetch_location(ctx, os.path.join(images_dir(ctx), value))
    if classify(value).kind == URL:
        raise UsageError(f'--stage1-path "{value}": expected a path (for a URL, use --stage1-url)')
    return _fetch_location(ctx, os.path.abspath(value))


def _configured(ctx) -> Stage1:
    """The default stage1 of ``stage1.d``, else a plugin's choice, else ``nspawn``."""
    config = ctx.config
    if config.stage1_name:
        if "/" not in config.stage1_name:
            return _flavor(ctx, config.stage1_name)
        flavor = flavor_meant_by(config.stage1_name)
        if _installed(ctx, flavor):
            return _flavor(ctx, flavor)
        if not config.stage1_version.endswith("-dirty"):
            found = ctx.store.find_by_name(config.stage1_name, {"version": config.stage1_version})
            if found is not None:
                return _image(ctx, found.key)
        if not config.stage1_location:
            raise NotFoundError(
                f'the default stage1 image "{config.stage1_name}:{config.stage1_version}" '
                "(stage1.d) is not in the store and stage1.d gives no location",
                hint="fetch it, or choose a stage1 with --stage1-name or --stage1-path")
    if config.stage1_location:
        return _image(ctx, _fetch_location(ctx, config.stage1_location))
    return _flavor(ctx, ctx.plugins.default_stage1_flavor(config) or "nspawn")


# --- a stage1 image in the pod -----------------------------------------------------------------


def tree_id(pod) -> str:
    """The tree of the pod's stage1 image (``stage1TreeStoreID``), "" if it has none."""
    tree = pod.read_text("stage1TreeStoreID") or ""
    if tree and not re.match(_TREE_ID, tree):
        raise RktError(f'pod "{pod.uuid}": malformed stage1TreeStoreID')
    return tree


@contextmanager
def mounted(ctx, pod, apps: bool) -> Iterator[None]:
    """For the block: the pod's stage1 image mounted on ``stage1/rootfs`` and, with ``apps``,
    each app's overlay on its root under it. Nothing to do for pods without a stage1 image, or
    without overlays, or whose stage1 is mounted already (by the ``rkt run`` that runs it).
    Everything mounted is unmounted afterwards (detached if still busy)."""
    from ..sys import mount

    tree = tree_id(pod)
    rootfs = pod.file("stage1", "rootfs")
    if not tree or not os.path.exists(pod.file("overlay-prepared")) or os.path.ismount(rootfs):
        yield
        return
    lower = os.path.join(ctx.data_dir, "cas", "tree", tree)
    if not os.path.exists(os.path.join(lower, "rendered")):
        raise RktError(f'pod "{pod.uuid}": its stage1 image tree {tree} is gone from the store')
    try:
        try:
            mount.overlay(rootfs, [os.path.join(lower, "rootfs")], rootfs, pod.file(*WORK_DIR))
            if apps:
                _mount_apps(ctx, pod, mount)
        except OSError as e:
            raise RktError(f"mounting the pod's stage1 image: {e.strerror or e}") from None
        yield
    finally:
        mount.unmount_all_under(rootfs)


def _mount_apps(ctx, pod, mount) -> None:
    from ..pod.runtime import app_runtimes

    for app in app_runtimes(ctx.data_dir, pod.path, pod.manifest()):
        mount.overlay(app.rootfs, [app.tree_rootfs], app.overlay_upper, app.overlay_work)

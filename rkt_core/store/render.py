"""Rendering an image and its dependencies into one root filesystem, by appc's acirenderer rules.

Layers come in priority order, highest first, as the flattened dependency list gives them (for
A -> [B, C] and C -> [D]: A, C, D, B). Only ``rootfs/`` entries are rendered, without that prefix,
and the first layer to provide a path wins: an entry is skipped when an earlier entry already
provided the same path, or when one of its parent paths was provided as something other than a
directory. Path whitelists filter as in appc (exact matches on cleaned paths):

- an image's own ``pathWhitelist`` filters its non-directory entries;
- the whitelist of its highest ancestor (closest to the top image) that has a non-empty one also
  filters the image's entries, directories included. (acirenderer's ``getUpperPWLM`` also picks
  up the whitelist of an earlier *sibling* branch; that is a bug we do not copy.)

One refinement over acirenderer: a parent directory created implicitly for an entry counts as
provided, so a lower layer may still set its metadata with a directory entry, but cannot replace
it (and what is below it) with a file or symlink.

Each layer's tar is hashed while it is read and must match the layer's key. All writes go through
:class:`ScopedExtractor`, so what one layer plants (``x -> ../../..``, ``x -> /etc``) cannot make
another layer write outside the root. If this raises, the partly rendered root must be discarded.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile

from ..errors import ImageError
from .aci import CHUNK, TAR_ERRORS, CappedTarInfo, clean_name
from .extract import ScopedExtractor
from .readahead import ReadAhead
from ..records import dataclass, field

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import
if TYPE_CHECKING:
    from typing import Callable

ROOTFS = "rootfs"
PREFIX = ROOTFS + "/"


@dataclass
class Layer:
    """One image of the flattened dependency list: its uncompressed ACI on disk, its key
    (``sha512-`` + 64 hex), its own ``pathWhitelist`` and its depth (0 = the top image)."""

    tar_path: str
    key: str
    path_whitelist: list[str] = field(default_factory=list)
    level: int = 0


@dataclass
class _Provided:
    """What the layers rendered so far provide, by archive name (``rootfs/...``)."""

    paths: dict[str, bool] = field(default_factory=lambda: {ROOTFS: True})  # name -> is a dir
    implicit: set[str] = field(default_factory=set)  # parent dirs created without an entry


def _whitelist(paths: list[str]) -> set[str] | None:
    """A whitelist as archive names (``/bin/sh`` -> ``rootfs/bin/sh``); None when empty."""
    if not paths:
        return None
    return {posixpath.normpath(PREFIX + p.lstrip("/")) for p in paths}


def _ancestor_whitelist(layers: list[Layer], index: int) -> set[str] | None:
    """The whitelist of the highest ancestor of ``layers[index]`` that has a non-empty one.

    The list is a depth-first walk, so walking back from ``index`` every image with a lower level
    than all images passed so far is an ancestor; the last one found is the highest.
    """
    chosen = None
    level = layers[index].level
    for layer in reversed(layers[:index]):
        if layer.level < level:
            level = layer.level
            if layer.path_whitelist:
                chosen = layer.path_whitelist
    return _whitelist(chosen) if chosen else None


def render_layers(layers: list[Layer], root: str,
                  warn: Callable[[str], None] | None = None) -> None:
    """Render ``layers`` (highest priority first) into the existing, empty directory ``root``."""
    if not layers:
        raise ImageError("nothing to render: the image list is empty")
    warn = warn or (lambda message: None)
    provided = _Provided()
    with ScopedExtractor(root, preserve_owner=os.geteuid() == 0, warn=warn) as extractor:
        for index, layer in enumerate(layers):
            _render_layer(layer, extractor, provided, _ancestor_whitelist(layers, index),
                          top=index == 0, warn=warn)
        extractor.finish()


def _render_layer(layer: Layer, extractor: ScopedExtractor, provided: _Provided,
                  branch: set[str] | None, top: bool, warn: Callable[[str], None]) -> None:
    own = _whitelist(layer.path_whitelist)
    digest = hashlib.sha512()
    hint = f'remove it with "rkt image rm {layer.key}" and fetch it again'
    try:
        f = open(layer.tar_path, "rb")
    except FileNotFoundError:
        raise ImageError(f'image "{layer.key}": its file {layer.tar_path} is missing from the '
                         "store", hint=hint) from None
    with f, ReadAhead(f, tap=digest.update) as reader:
        error = None
        try:
            with tarfile.open(fileobj=reader, mode="r:", tarinfo=CappedTarInfo) as tar:
                while (member := tar.next()) is not None:
                    tar.members.clear()  # memory stays flat for huge archives
                    _render_member(tar, member, extractor, provided, own, branch, top, warn)
        except TAR_ERRORS as e:
            error = ImageError(f'image "{layer.key}": not a valid tar: {e}')
        except ImageError as e:  # what a damaged file in the store looks like, if it is one
            error = e
        while reader.read(CHUNK):
            pass
    actual = "sha512-" + digest.hexdigest()[:64]
    if actual != layer.key:
        raise ImageError(f'image "{layer.key}": its content does not match its ID (found '
                         f"{actual}): the store holds a damaged copy", hint=hint)
    if error is not None:
        raise error


def _render_member(tar: tarfile.TarFile, member: tarfile.TarInfo, extractor: ScopedExtractor,
                   provided: _Provided, own: set[str] | None, branch: set[str] | None,
                   top: bool, warn: Callable[[str], None]) -> None:
    """Extract one entry if whitelists allow it and it is the first to provide its path."""
    name = clean_name(member.name)
    if name == ROOTFS:
        if not member.isdir():
            raise ImageError('image archive: "rootfs" is not a directory')
        if top:
            extractor.extract_member(tar, member, "")
        return
    if not name.startswith(PREFIX):
        return
    if own is not None and not member.isdir() and name not in own:
        return
    if branch is not None and name not in branch:
        return
    if name in provided.paths or (name in provided.implicit and not member.isdir()):
        return
    parents = []
    parent = posixpath.dirname(name)
    while parent != ROOTFS:
        if provided.paths.get(parent) is False:
            return
        parents.append(parent)
        parent = posixpath.dirname(parent)
    linkpath = None
    if member.islnk():
        target = clean_name(member.linkname, f'hard link target of "{member.name}"')
        if not target.startswith(PREFIX):
            raise ImageError(f'image archive: hard link "{member.name}" points outside '
                             f'"rootfs/" (to "{member.linkname}")')
        if provided.paths.get(target) is not False:
            warn(f'image archive: skipping hard link "{member.name}": its target '
                 f'"{member.linkname}" was not rendered as a file')
            return
        linkpath = target[len(PREFIX):]
    provided.paths[name] = member.isdir()
    provided.implicit.discard(name)
    provided.implicit.update(p for p in parents if p not in provided.paths)
    extractor.extract_member(tar, member, name[len(PREFIX):], linkpath=linkpath)

"""The image store as plugins see it, read-only: images, their manifests, where they came from.

Every function takes the command's context (``FetchRequest.context``, a network backend's
``ctx``, :func:`rkt_core.plugin_api.cli.context` in a command). Only rkt's own import adds
images: a fetcher hands back a file, never writes the store.
"""

from __future__ import annotations

from ..store.imagestore import ImageInfo
from ..types import RemoteInfo


def list_images(ctx) -> list[ImageInfo]:
    """Every stored image, oldest import first."""
    return ctx.store.list_images()


def find_image(ctx, ref: str) -> ImageInfo:
    """The image an ID prefix or ``name[:version][,label=value]`` names (NotFoundError if
    none)."""
    store = ctx.store
    return store.get_info(store.resolve(ref))


def image_manifest(ctx, key: str):
    """The manifest (``ImageManifest``) of the image with this full key."""
    return ctx.store.manifest(key)


def image_manifest_json(ctx, key: str) -> bytes:
    """The manifest of the image with this full key, as stored (JSON bytes)."""
    return ctx.store.manifest_json(key)


def stored_remote(ctx, url: str) -> tuple[RemoteInfo, str] | None:
    """What the store recorded for an image fetched from ``url`` (its ``RemoteInfo`` and
    image key), if that image is still stored."""
    found = ctx.store.get_remote(url)
    return None if found is None else (found[0], found[1])


def temp_dir(ctx) -> str:
    """The store's directory for temporary files (``cas/tmp``): downloads and conversions go
    there, on the store's filesystem, and ``rkt image gc`` removes what a crash left."""
    return ctx.store.tmp_dir


__all__ = ["ImageInfo", "RemoteInfo", "find_image", "image_manifest", "image_manifest_json",
           "list_images", "stored_remote", "temp_dir"]

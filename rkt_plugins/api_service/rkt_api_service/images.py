"""Images as the v1alpha API shows them (``Image``), and ListImages' filters, as rkt defined
them. A stored image never changes, so its manifest is read once."""

from __future__ import annotations

import json
import posixpath

from rkt_core.plugin_api import APPC_VERSION
from rkt_core.plugin_api import images as store

from . import api_pb2 as pb


class ImageCache:
    """Each stored image's manifest (bytes, labels, annotations), read once."""

    def __init__(self, ctx):
        self.ctx = ctx
        self._manifests: dict[str, tuple[bytes, list, list]] = {}

    def manifest(self, key: str) -> tuple[bytes, list, list]:
        """The manifest's bytes, labels and annotations (lists of KeyValue pairs)."""
        cached = self._manifests.get(key)
        if cached is None:
            data = store.image_manifest_json(self.ctx, key)
            manifest = json.loads(data)
            cached = (data, _pairs(manifest.get("labels")), _pairs(manifest.get("annotations")))
            self._manifests[key] = cached
        return cached

    def forget_others(self, keys: set[str]) -> None:
        """Drop the images that are gone."""
        for key in set(self._manifests) - keys:
            del self._manifests[key]


def _pairs(items) -> list[tuple[str, str]]:
    return [(str(i.get("name", "")), str(i.get("value", ""))) for i in items or ()
            if isinstance(i, dict)]


def to_message(info, manifest: tuple[bytes, list, list], detail: bool) -> pb.Image:
    """The API's view of a stored image (an ``ImageInfo``)."""
    data, labels, annotations = manifest
    return pb.Image(
        base_format=pb.ImageFormat(type=pb.IMAGE_TYPE_APPC, version=APPC_VERSION),
        id=info.key, name=info.name, version=dict(labels).get("version", "latest"),
        import_timestamp=int(info.import_time), manifest=data if detail else b"",
        size=info.size + info.treestore_size,
        labels=[pb.KeyValue(Key=k, value=v) for k, v in labels],
        annotations=[pb.KeyValue(Key=k, value=v) for k, v in annotations])


def _has_all(pairs, required) -> bool:
    have = {(kv.Key, kv.value) for kv in pairs}
    return all((kv.Key, kv.value) in have for kv in required)


def matches(image: pb.Image, f: pb.ImageFilter) -> bool:
    """Whether an image passes one filter (every condition it sets)."""
    name = image.name
    return ((not f.ids or image.id in f.ids)
            and (not f.full_names or name in f.full_names)
            and (not f.prefixes or any(name.startswith(p) for p in f.prefixes))
            and (not f.base_names or posixpath.basename(name) in f.base_names)
            and (not f.keywords or any(k in name for k in f.keywords))
            and (not f.imported_after or image.import_timestamp > f.imported_after)
            and (not f.imported_before or image.import_timestamp < f.imported_before)
            and _has_all(image.labels, f.labels)
            and _has_all(image.annotations, f.annotations))


def matches_any(image: pb.Image, filters) -> bool:
    """Whether an image passes any of the filters (or there are none)."""
    return not filters or any(matches(image, f) for f in filters)

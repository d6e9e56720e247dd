"""Image manifests: Docker schema1 (signed or not), Docker schema2, OCI, and manifest lists /
OCI indexes, resolved to one :class:`Image` for this machine with every digest checked.

- The manifest a tag or digest names is checked against the digest asked for, else against the
  registry's ``Docker-Content-Digest``. A list's entry for this machine's os/arch/variant is then
  fetched by digest and checked against it (and its size).
- What a document is comes from its ``Content-Type``, else its ``mediaType``, else
  ``schemaVersion: 1``; a ``mediaType`` field that disagrees, or a document with both
  ``manifests`` and ``layers``/``config``, is refused (CVE-2021-41190).
- Signed schema1: the digest is that of the JWS payload (the body up to ``formatLength`` plus
  ``formatTail``), and only that payload is parsed, never the bytes around it. The signatures are
  not checked: they are made with throwaway keys of the pushing client and prove nothing.
  Layer ids are checked and the parent chain must be linear (CVE-2016-7569, CVE-2016-8579).
- Schema2/OCI: the config blob is checked against its digest and size; ``rootfs.diff_ids`` must
  have one entry per layer (checked against the uncompressed layers later).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re

from rkt_core.plugin_api import ImageError, dataclass, field

from .client import MAX_CONFIG_BYTES, Registry
from .digest import check, check_bytes, digest_of, parse_digest
from .reference import DockerRef

DOCKER_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_V2, DOCKER_V1_SIGNED, DOCKER_V1)
LISTS = (DOCKER_LIST, OCI_INDEX)
SCHEMA1 = (DOCKER_V1, DOCKER_V1_SIGNED)
CONFIG_TYPES = ("application/vnd.docker.container.image.v1+json",
                "application/vnd.oci.image.config.v1+json")
LAYER_TYPES = ("application/vnd.docker.image.rootfs.diff.tar.gzip",
               "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "application/vnd.oci.image.layer.v1.tar",
               "application/vnd.oci.image.layer.v1.tar+gzip",
               "application/vnd.oci.image.layer.nondistributable.v1.tar",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
# Each layer is a file open while squashing; docker itself stops at 125 (moby's layer depth).
MAX_LAYERS = 500

_V1_ID = r"[a-f0-9]{64}\Z"  # compiled on first use: schema1 only
# uname's machine -> (GOARCH, variant), the names registries use.
_GOARCH = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"),
           "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
           "i386": ("386", ""), "i686": ("386", ""), "ppc64le": ("ppc64le", ""),
           "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


@dataclass(frozen=True)
class Layer:
    """One layer blob; ``diff_id`` is the digest of its uncompressed tar ("" for schema1)."""

    digest: str
    size: int | None = None
    diff_id: str = ""


@dataclass
class Image:
    """What the conversion needs of one image.

    ``digest`` is the digest of the image manifest converted (a list's entry, for a list).
    ``config`` is the container config (``Entrypoint``, ``Cmd``, ``Env``...), None when the
    image has none. ``v1_id``, ``v1_parent`` and ``comment``
    come with schema1 only.
    """

    digest: str
    schema: str
    layers: list[Layer] = field(default_factory=list)
    config: dict | None = None
    os: str = ""
    architecture: str = ""
    variant: str = ""
    author: str = ""
    created: str = ""
    comment: str = ""
    v1_id: str = ""
    v1_parent: str = ""


def host_platform() -> tuple[str, str, str]:
    """This machine as registries name platforms: (os, architecture, variant)."""
    system = os.uname()  # what platform.system() and machine() read, without its import
    arch, variant = _GOARCH.get(system.machine, (system.machine.lower(), ""))
    return system.sysname.lower(), arch, variant


@dataclass(frozen=True)
class Document:
    """A manifest or list as fetched and checked: its kind (media type), content and digest."""

    kind: str
    doc: dict
    digest: str


def fetch_named(registry: Registry, ref: DockerRef) -> Document:
    """The manifest or list that ``ref`` names, checked against the digest asked for, else
    against the registry's ``Docker-Content-Digest``."""
    body, media_type, served_digest = registry.get_manifest(ref.reference, ACCEPT)
    what = f"manifest {ref.reference}"
    if not ref.digest and served_digest:
        parse_digest(served_digest, f"{what}: Docker-Content-Digest")
    kind, doc, digest = _decode(body, media_type, ref.digest or served_digest or "sha256:", what)
    check(ref.digest or served_digest or digest, digest.split(":", 1)[1], what)
    return Document(kind, doc, digest)


def resolve(registry: Registry, ref: DockerRef, named: Document,
            want: tuple[str, str, str] | None = None) -> Image:
    """The image of ``named`` (for a list, its entry for ``want``, by default this machine,
    fetched by digest and checked) with, for schema2/OCI, its checked config."""
    kind, doc, digest = named.kind, named.doc, named.digest
    what = f"manifest {ref.reference}"
    if kind in LISTS:
        entry = select_platform(doc, want or host_platform(), what)
        what = f"manifest {entry['digest']} (from {what})"
        body, media_type, _ = registry.get_manifest(entry["digest"], ACCEPT)
        if len(body) != entry["size"]:
            raise ImageError(f"{what}: {len(body)} bytes, the list says {entry['size']}")
        kind, doc, digest = _decode(body, media_type, entry["digest"], what)
        check(entry["digest"], digest.split(":", 1)[1], what)
        if kind in LISTS:
            raise ImageError(f"{what}: a list inside a list is not supported")
    if kind in SCHEMA1:
        return _schema1(doc, ref, digest, what)
    return _schema2(registry, doc, digest, what, "oci" if kind == OCI_MANIFEST else "docker")


def _decode(body: bytes, media_type: str, like: str, what: str) -> tuple[str, dict, str]:
    """(kind, parsed document, digest) of a manifest or list; for signed schema1 the document
    and digest are those of the JWS payload."""
    doc = _json_object(body, what)
    declared = doc.get("mediaType")
    if media_type in ACCEPT:
        kind = media_type
    elif declared in ACCEPT:
        kind = declared
    elif doc.get("schemaVersion") == 1:
        kind = DOCKER_V1_SIGNED
    else:
        raise ImageError(f"{what}: unsupported manifest type {media_type or declared!r}")
    if declared is not None and declared != kind and kind not in SCHEMA1:
        raise ImageError(f"{what}: served as {kind} but declares mediaType {declared!r}")
    if (kind in LISTS) == ("manifests" not in doc) or (kind in LISTS and ("layers" in doc
                                                                          or "config" in doc)):
        raise ImageError(f"{what}: ambiguous document: neither clearly a manifest nor a list")
    if kind in SCHEMA1:
        payload = _jws_payload(body, doc, what)
        doc = _json_object(payload, what)
        if doc.get("schemaVersion") != 1:
            raise ImageError(f"{what}: schema1 manifest without schemaVersion 1")
        return kind, doc, digest_of(payload, like)
    if doc.get("schemaVersion") != 2:
        raise ImageError(f"{what}: expected schemaVersion 2, got {doc.get('schemaVersion')!r}")
    return kind, doc, digest_of(body, like)


def _json_object(data: bytes, what: str) -> dict:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ImageError(f"{what}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: not a JSON object")
    return doc


def _b64url(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ImageError(f"{what}: malformed schema1 signature")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ImageError(f"{what}: malformed schema1 signature") from None


def _jws_payload(body: bytes, doc: dict, what: str) -> bytes:
    """The signed payload of a schema1 manifest (the body itself when it is not signed)."""
    signatures = doc.get("signatures")
    if not signatures:
        return body
    if not isinstance(signatures, list) or not isinstance(signatures[0], dict):
        raise ImageError(f"{what}: malformed schema1 signatures")
    protected = _json_object(_b64url(signatures[0].get("protected"), what), what)
    length, tail = protected.get("formatLength"), protected.get("formatTail")
    if not isinstance(length, int) or isinstance(length, bool) or not 0 < length <= len(body):
        raise ImageError(f"{what}: schema1 signature with a bad formatLength")
    return body[:length] + _b64url(tail, what)


def _descriptor(obj: object, what: str) -> dict:
    """A checked ``{mediaType, digest, size}``."""
    if not isinstance(obj, dict):
        raise ImageError(f"{what}: missing or not an object")
    parse_digest(obj.get("digest"), f"{what} digest")
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{what}: invalid size {size!r}")
    if not isinstance(obj.get("mediaType", ""), str):
        raise ImageError(f"{what}: invalid mediaType")
    return obj


def select_platform(doc: dict, want: tuple[str, str, str], what: str) -> dict:
    """The entry of a manifest list for platform ``want`` = (os, architecture, variant); an
    exact variant is preferred, an entry without variant accepted."""
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise ImageError(f"{what}: manifests is not a list")
    os_name, arch, variant = want
    found, seen = [], []
    for i, entry in enumerate(entries):
        _descriptor(entry, f"{what}: manifests[{i}]")
        plat = entry.get("platform") if isinstance(entry.get("platform"), dict) else {}
        have = (plat.get("os"), plat.get("architecture"), plat.get("variant", ""))
        seen.append("/".join(str(p) for p in have if p))
        if have[:2] == (os_name, arch) and have[2] in (variant, ""):
            found.append((have[2] != variant, i, entry))
    if not found:
        wanted = "/".join(filter(None, want))
        raise ImageError(f"{what}: no image for {wanted} (the list has "
                         f"{', '.join(seen) or 'nothing'})")
    return min(found)[2]


def _schema2(registry: Registry, doc: dict, digest: str, what: str, schema: str) -> Image:
    config_desc = _descriptor(doc.get("config"), f"{what}: config")
    if config_desc.get("mediaType") not in CONFIG_TYPES:
        raise ImageError(f"{what}: not a container image (config media type "
                         f"{config_desc.get('mediaType')!r})")
    layers = doc.get("layers") or []
    if not isinstance(layers, list):
        raise ImageError(f"{what}: layers is not a list")
    _check_layer_count(len(layers), what)
    for i, layer in enumerate(layers):
        _descriptor(layer, f"{what}: layers[{i}]")
        media_type = layer.get("mediaType", "")
        if media_type not in LAYER_TYPES:
            raise ImageError(f"{what}: layer {layer['digest']} has the unsupported media type "
                             f"{media_type!r}")
    config_what = f"image config {config_desc['digest']}"
    raw = registry.get_blob(config_desc["digest"], MAX_CONFIG_BYTES, config_what)
    if len(raw) != config_desc["size"]:
        raise ImageError(f"{config_what}: {len(raw)} bytes, the manifest says "
                         f"{config_desc['size']}")
    check_bytes(config_desc["digest"], raw, config_what)
    config = _json_object(raw, config_what)
    rootfs = config.get("rootfs") if isinstance(config.get("rootfs"), dict) else {}
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise ImageError(f"{config_what}: rootfs.diff_ids has {len(diff_ids)} entries for "
                         f"{len(layers)} layers")
    for diff_id in diff_ids:
        parse_digest(diff_id, f"{config_what}: diff_id")
    container = config.get("config")
    return Image(digest=digest, schema=schema,
                 layers=[Layer(layer["digest"], layer["size"], diff_id)
                         for layer, diff_id in zip(layers, diff_ids)],
                 config=container if isinstance(container, dict) else None,
                 **_platform_fields(config), author=_str(config.get("author")),
                 created=_str(config.get("created")))


def _check_layer_count(count: int, what: str) -> None:
    """Refuse more layers than any real image has (each is a file open while squashing)."""
    if count > MAX_LAYERS:
        raise ImageError(f"{what}: {count} layers, more than the {MAX_LAYERS} allowed")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _platform_fields(doc: dict) -> dict:
    return {"os": _str(doc.get("os")), "architecture": _str(doc.get("architecture")),
            "variant": _str(doc.get("variant"))}


def _schema1(doc: dict, ref: DockerRef, digest: str, what: str) -> Image:
    if doc.get("name") != ref.repository:
        raise ImageError(f"{what}: the manifest is for {doc.get('name')!r}, not "
                         f"{ref.repository!r}")
    if ref.tag and doc.get("tag") != ref.tag:
        raise ImageError(f"{what}: the manifest is for tag {doc.get('tag')!r}, not {ref.tag!r}")
    fs_layers, history = doc.get("fsLayers"), doc.get("history")
    if not isinstance(fs_layers, list) or not isinstance(history, list) \
            or not fs_layers or len(fs_layers) != len(history):
        raise ImageError(f"{what}: fsLayers and history must be lists of the same length")
    entries = []  # (blobSum, v1Compatibility), top layer first
    for i, (layer, item) in enumerate(zip(fs_layers, history)):
        blob = parse_digest(layer.get("blobSum") if isinstance(layer, dict) else None,
                            f"{what}: fsLayers[{i}].blobSum")
        compat = item.get("v1Compatibility") if isinstance(item, dict) else None
        if not isinstance(compat, str):
            raise ImageError(f"{what}: history[{i}] has no v1Compatibility")
        v1 = _json_object(compat.encode(), f"{what}: history[{i}]")
        if not isinstance(v1.get("id"), str) or not re.match(_V1_ID, v1["id"]):
            raise ImageError(f"{what}: history[{i}] has an invalid layer id {v1.get('id')!r}")
        if entries and entries[-1][1]["id"] == v1["id"]:
            continue  # old registries repeat a layer: consecutive duplicates collapse
        entries.append((blob, v1))
    ids = [v1["id"] for _, v1 in entries]
    if len(set(ids)) != len(ids):
        raise ImageError(f"{what}: a layer id appears twice in history")
    for i, (_, v1) in enumerate(entries):
        parent = v1.get("parent", "")
        expected = entries[i + 1][1]["id"] if i + 1 < len(entries) else ""
        if parent != expected:
            raise ImageError(f"{what}: broken layer chain: {v1['id']} has parent {parent!r}, "
                             f"expected {expected!r}")
    top = entries[0][1]
    layers = [Layer(blob) for blob, v1 in reversed(entries) if not v1.get("throwaway")]
    _check_layer_count(len(layers), what)
    container = top.get("config")
    fields = _platform_fields(top)
    fields["architecture"] = fields["architecture"] or _str(doc.get("architecture"))
    return Image(digest=digest, schema="docker-v1", layers=layers,
                 config=container if isinstance(container, dict) else None, **fields,
                 author=_str(top.get("author")), created=_str(top.get("created")),
                 comment=_str(top.get("comment")), v1_id=top["id"],
                 v1_parent=_str(top.get("parent")))

"""The apps of a pod manifest as ``rkt list`` and ``rkt status`` show them, read without the
appc records.

``rkt list`` reads the manifest of every pod; building a full ``rkt_core.appc.PodManifest``
for each (with its apps' isolators, environment, ports...) and importing ``rkt_core.appc`` were
most of its time. :func:`read_apps` decodes only what a listing shows: app names and their
images' names, IDs and labels. In those it refuses what ``PodManifest.from_json`` refuses, with
the same message, found in the same order; a document that is not a JSON object, or is nested
too deep, is refused as a whole, as there. What a listing does not show (each app's ``app``,
``mounts`` and ``annotations``; the pod's volumes, isolators, annotations and ports) is not
checked. ``tests/hostile/test_pod_listing.py`` holds the two readers to the same answers. The
checks of names, IDs, labels and versions remember what they accepted: pods share images.
"""

from __future__ import annotations

import json
from functools import lru_cache

from ..errors import ImageError

MAX_DEPTH = 100  # as rkt_core.appc.gojson: arrays and objects inside each other
POD_MANIFEST_KIND = "PodManifest"
MAX_AC_NAME = 255
_AC_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_AC_IDENTIFIER_CHARS = _AC_NAME_CHARS | frozenset("._~/")
_AC_IDENTIFIER_EDGES = "-._~/"
_VALID_OS_ARCH = {  # as rkt_core.appc.labels.VALID_OS_ARCH
    "linux": ("amd64", "i386", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv7b"),
    "freebsd": ("amd64", "i386", "arm"),
    "darwin": ("x86_64", "i386"),
}


class ListedApp:
    """One app of a pod as a listing shows it: its name and its image's name (None when the
    manifest gives none), ID (None while unknown) and labels."""

    __slots__ = ("name", "image_name", "image_id", "labels")

    def __init__(self, name: str, image_name: str | None, image_id: str | None,
                 labels: dict[str, str]):
        self.name = name
        self.image_name = image_name
        self.image_id = image_id
        self.labels = labels


def read_apps(data: bytes) -> list[ListedApp]:
    """The apps of the pod manifest ``data``; ImageError where ``PodManifest.from_json`` would
    refuse the document or one of the fields read."""
    fields = _fields(_load(data), _POD_FIELDS, "pod manifest")
    version = _str(fields.get("acVersion", ""), "pod manifest acVersion")
    kind = _str(fields.get("acKind", ""), "pod manifest acKind")
    apps = [_app(item, f"apps[{i}]")
            for i, item in enumerate(_list(fields.get("apps", []), "apps"))]
    if kind != POD_MANIFEST_KIND:
        raise ImageError(f"invalid pod manifest: acKind must be {_quote(POD_MANIFEST_KIND)}, "
                         f"not {_quote(kind)}")
    if version:
        _check_semver(version)
    seen = set()
    for app in apps:
        if app.name in seen:
            raise ImageError(f"invalid pod manifest: more than one app is named "
                             f"{_quote(app.name)}")
        seen.add(app.name)
    return apps


def _load(data: bytes) -> dict:
    what = "pod manifest"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ImageError(f"invalid {what}: not UTF-8 text ({err.reason} at byte {err.start})")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as err:
        raise ImageError(f"invalid {what}: not valid JSON: {err.msg} at line {err.lineno}, "
                         f"column {err.colno}")
    except ValueError as err:
        raise ImageError(f"invalid {what}: not valid JSON: {err}")
    except RecursionError:
        raise ImageError(f"invalid {what}: nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(value, dict):
        raise ImageError(f"invalid {what}: must be a JSON object")
    # Fewer brackets than the limit cannot nest deeper than it: count them before walking.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise ImageError(f"invalid {what}: nested deeper than {MAX_DEPTH} levels")
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # json.loads makes one a call


def _depth(value: object) -> int:
    """How many arrays and objects are nested in ``value`` (counted without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _app(data: object, what: str) -> ListedApp:
    fields = _fields(data, _APP_FIELDS, what)
    name = _check_ac_name(_str(fields.get("name", ""), f"{what} name"), "app name")
    what = f'app "{name}"'  # _quote(name): a valid ACName has nothing to escape
    image = _fields(fields.get("image", {}), _IMAGE_FIELDS, f"{what} image")
    image_name, image_id = image.get("name"), image.get("id")
    if image_name is not None:
        _str(image_name, f"{what} image name")
    if image_id is not None:
        _str(image_id, f"{what} image id")
    labels = _labels(image.get("labels"), f"{what} image labels")
    if image_name is not None:
        _check_image_name(image_name)
    if image_id is not None:
        _check_image_id(image_id)
    return ListedApp(name, image_name, image_id, labels)


def _labels(data: object, what: str) -> dict[str, str]:
    """Image labels, checked as ``rkt_core.appc.Labels.from_json`` does."""
    if data is None:
        return {}
    pairs = []
    for i, item in enumerate(_list(data, what)):
        fields = _fields(item, _LABEL_FIELDS, f"{what}[{i}]")
        pairs.append((_str(fields.get("name", ""), f"{what}[{i}].name"),
                      _str(fields.get("value", ""), f"{what}[{i}].value")))
    _check_labels(tuple(pairs))
    return dict(pairs)


@lru_cache(maxsize=None)
def _check_labels(pairs: tuple[tuple[str, str], ...]) -> None:
    labels = {}
    for name, value in pairs:
        _check_ac_identifier(name, "label name")
        if name in labels:
            raise ImageError(f"duplicate label {_quote(name)}: names must be unique")
        labels[name] = value
    if "name" in labels:
        raise ImageError('invalid label name "name": the image name is not a label')
    os_name = labels.get("os")
    if os_name is not None:
        if os_name not in _VALID_OS_ARCH:
            raise ImageError(f"invalid os label {_quote(os_name)}: must be one of "
                             f"{', '.join(sorted(_VALID_OS_ARCH))}")
        arch = labels.get("arch")
        if arch is not None and arch not in _VALID_OS_ARCH[os_name]:
            raise ImageError(f"invalid arch label {_quote(arch)} for os {_quote(os_name)}: must "
                             f"be one of {', '.join(_VALID_OS_ARCH[os_name])}")


# --- Go's decoding of a struct and the appc checks, as rkt_core.appc words their errors ------

def _struct(*fields: str) -> dict[str, str]:
    """The fields of a Go struct, by their lower-case names."""
    return {name.lower(): name for name in fields}


_POD_FIELDS = _struct("acVersion", "acKind", "apps")
_APP_FIELDS = _struct("name", "image")
_IMAGE_FIELDS = _struct("name", "id", "labels")
_LABEL_FIELDS = _struct("name", "value")


def _fields(obj: object, canonical: dict[str, str], what: str) -> dict[str, object]:
    """The fields (``_struct``) of a JSON object decoded like a Go struct: keys match
    case-insensitively, ``null`` counts as absent, a later duplicate wins."""
    if not isinstance(obj, dict):
        raise ImageError(f"invalid {what}: must be a JSON object")
    picked = {}
    for key, value in obj.items():
        name = canonical.get(key.lower())
        if name is not None:
            if value is None:
                picked.pop(name, None)
            else:
                picked[name] = value
    return picked


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ImageError(f"invalid {what}: must be a string, not {_json_type(value)}")
    return value


def _list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise ImageError(f"invalid {what}: must be a JSON array, not {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"the string {_quote(value)}"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _quote(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def _check_chars(value: str, what: str, chars: frozenset, edges: str, allowed: str) -> None:
    if value == "":
        raise ImageError(f"invalid {what}: must not be empty")
    if not chars.issuperset(value):
        raise ImageError(f"invalid {what} {_quote(value)}: only lowercase letters, digits "
                         f"and {allowed} are allowed")
    if value[0] in edges or value[-1] in edges:
        raise ImageError(f"invalid {what} {_quote(value)}: must start and end with a "
                         f"lowercase letter or digit")


@lru_cache(maxsize=None)
def _check_ac_name(value: str, what: str) -> str:
    _check_chars(value, what, _AC_NAME_CHARS, "-", "-")
    if len(value) > MAX_AC_NAME:
        raise ImageError(f"invalid {what} {_quote(value[:32] + '...')}: longer than "
                         f"{MAX_AC_NAME} characters")
    return value


def _check_ac_identifier(value: str, what: str) -> None:
    _check_chars(value, what, _AC_IDENTIFIER_CHARS, _AC_IDENTIFIER_EDGES, "-._~/")


@lru_cache(maxsize=None)
def _check_image_name(value: str, what: str = "image name") -> None:
    _check_ac_identifier(value, what)
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise ImageError(f"invalid {what} {_quote(value)}: empty, \".\" and \"..\" path "
                             f"segments are not allowed")


@lru_cache(maxsize=None)
def _check_image_id(value: str, what: str = "image ID") -> None:
    parts = value.split("-")
    if len(parts) != 2:
        raise ImageError(f"invalid {what} {_quote(value)}: must look like sha512-<hex digits>")
    if parts[0] != "sha512":
        raise ImageError(f"invalid {what} {_quote(value)}: unknown hash type "
                         f"{_quote(parts[0])} (only sha512 is supported)")
    if parts[1] == "":
        raise ImageError(f"invalid {what} {_quote(value)}: the hash value is empty")
    if "/" in parts[1] or "\0" in parts[1]:
        raise ImageError(f"invalid {what} {_quote(value)}: the hash value may not contain / "
                         f"or NUL")


@lru_cache(maxsize=None)
def _check_semver(value: str, what: str = "acVersion") -> None:
    """Refuse what go-semver cannot parse (signs and leading zeros allowed), or zero."""
    parts = value.split(".", 2)
    numbers = []
    if len(parts) == 3:
        patch, _, metadata = parts[2].partition("+")
        patch, _, prerelease = patch.partition("-")
        for text in (parts[0], parts[1], patch):
            digits = text[1:] if text[:1] in ("+", "-") else text
            if digits.isascii() and digits.isdigit() and -(1 << 63) <= int(text) < (1 << 63):
                numbers.append(int(text))
    if len(numbers) != 3:
        raise ImageError(f"invalid {what} {_quote(value)}: must be a version such as 0.7.4 "
                         f"(MAJOR.MINOR.PATCH[-PRERELEASE][+METADATA])")
    if numbers == [0, 0, 0] and not prerelease and not metadata:
        raise ImageError(f"invalid {what} {_quote(value)}: the version cannot be zero")

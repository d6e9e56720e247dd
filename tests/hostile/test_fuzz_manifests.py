"""Fuzzing the appc parsers with hypothesis: image and pod manifests, names, labels,
isolators, quantities and the ``--volume``/``--mount`` values. Whatever the input, a parser
either returns a value that writes back and reads again to the same value, or raises
``AppcError`` with a message; never another exception. (Runs of 3,000 and 5,000 examples a
test found nothing in these parsers, hardened by hand before; the fuzzing keeps them so.)

Manifests are drawn near the valid ones (every field present with a right or wrong value of
any JSON type), so that the checks behind the first field are reached too: about one in
six drawn manifests is valid.
"""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from rkt_core.appc import (AppcError, ImageManifest, Labels, Mount, PodManifest, Volume,
                           app_name_from_image_name, parse_app_string, parse_quantity,
                           sanitize_ac_name, validate_ac_identifier, validate_ac_name,
                           validate_image_name)
from rkt_core.appc.isolators import isolators_from_json


# Characters that matter to the parsers: name alphabets and their edges, separators, escapes.
TEXT = st.text(st.sampled_from("az09-._~/:,= \\\"\0\n\t\u00e9\u2028\ud800A"), max_size=24)
JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2**65, max_value=2**65)
                | st.floats(allow_nan=False, allow_infinity=False) | TEXT)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)


def either(valid, wrong=JSON):
    """Mostly (nine times in ten) a valid value, sometimes anything at all."""
    return st.integers(0, 9).flatmap(lambda n: wrong if n == 9 else valid)


def maybe(fields: dict, required: tuple[str, ...] = ()) -> st.SearchStrategy[dict]:
    """A JSON object with the ``required`` keys of ``fields`` (mostly) and any subset of the
    others (keys with their value strategies)."""
    always = {key: fields[key] for key in required}
    others = {key: value for key, value in fields.items() if key not in required}
    return either(st.fixed_dictionaries(always, optional=others),
                  st.fixed_dictionaries({}, optional=fields))


QUANTITY_TEXT = st.from_regex(r"\A[+-]?[0-9]{0,22}(\.[0-9]{0,5})?([mkMGTPE]i?|e[+-]?[0-9]{1,20})?"
                              r"\Z") | TEXT
NAME = either(st.sampled_from(["example.com/app", "a", "a-b", "b1"]),
              st.sampled_from(["A", "-a", "a..b", "../x", "x/../y", "a//b", ""]) | TEXT)
LABEL = st.fixed_dictionaries({"name": either(st.sampled_from(["version", "os", "arch", "x"])
                                              | NAME),
                               "value": either(st.sampled_from(["1.0", "linux", "amd64"])
                                               | TEXT)})
LABELS = either(st.lists(LABEL, max_size=3))
RESOURCE = maybe({"default": either(st.booleans()), "request": either(QUANTITY_TEXT),
                  "limit": either(QUANTITY_TEXT | st.integers())}, ("limit",))
ISOLATOR = maybe({
    "name": either(st.sampled_from(["resource/cpu", "resource/memory",
                                    "resource/block-bandwidth", "resource/network-bandwidth",
                                    "os/linux/capabilities-retain-set",
                                    "os/linux/capabilities-remove-set", "vendor/x"]) | NAME),
    "value": either(RESOURCE | maybe({"set": either(st.lists(
        st.sampled_from(["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "cap_chown", ""]) | TEXT,
        max_size=3))}, ("set",))),
}, ("name", "value"))
ISOLATORS = either(st.lists(ISOLATOR, max_size=3))
APP = maybe({
    "exec": either(st.lists(st.sampled_from(["/bin/sh", "sh", "", "-c"]) | TEXT, max_size=3)),
    "user": either(st.sampled_from(["0", "root", "", "-1"]) | TEXT),
    "group": either(st.sampled_from(["0", "root", ""]) | TEXT),
    "supplementaryGIDs": either(st.lists(st.integers(min_value=-2**33, max_value=2**33),
                                         max_size=3)),
    "workingDirectory": either(st.sampled_from(["/", "rel", ""]) | TEXT),
    "environment": either(st.lists(maybe({"name": either(TEXT), "value": either(TEXT)}),
                                   max_size=3)),
    "eventHandlers": either(st.lists(maybe({"name": either(st.sampled_from(["pre-start",
                                                                            "post-stop", "x"])),
                                            "exec": either(st.lists(TEXT, max_size=2))}),
                                     max_size=2)),
    "isolators": ISOLATORS,
    "mountPoints": either(st.lists(maybe({"name": either(NAME), "path": either(TEXT),
                                          "readOnly": either(st.booleans())}), max_size=2)),
    "ports": either(st.lists(maybe({"name": either(NAME), "protocol": either(
        st.sampled_from(["tcp", "udp", "sctp", ""])), "port": either(st.integers(-5, 70000)),
        "count": either(st.integers(-5, 70000)), "socketActivated": either(st.booleans())}),
        max_size=2)),
}, ("exec", "user", "group"))
IMAGE_MANIFEST = maybe({
    "acKind": either(st.just("ImageManifest"), JSON_SCALARS),
    "acVersion": either(st.sampled_from(["0.7.4", "0.8.0", "1", "0.7.4-rc.1+x", "v1"])),
    "name": either(NAME),
    "labels": LABELS,
    "app": either(APP),
    "annotations": either(st.lists(maybe({"name": either(NAME), "value": either(
        st.sampled_from(["2016-01-01T00:00:00Z", "https://example.com", "x"]) | TEXT)}),
        max_size=2)),
    "dependencies": either(st.lists(maybe({
        "imageName": either(NAME), "imageID": either(st.sampled_from(
            ["sha512-" + "a" * 64, "sha512-", "sha256-ab", "sha512-../x"]) | TEXT),
        "labels": LABELS, "size": either(st.integers(-1, 2**65))}), max_size=2)),
    "pathWhitelist": either(st.lists(TEXT, max_size=2)),
}, ("acKind", "acVersion", "name"))
POD_MANIFEST = maybe({
    "acKind": either(st.just("PodManifest"), JSON_SCALARS),
    "acVersion": either(st.sampled_from(["0.7.4", "0.8.0", "x"])),
    "apps": either(st.lists(maybe({
        "name": either(NAME),
        "image": either(maybe({"name": either(NAME), "id": either(st.sampled_from(
            ["sha512-" + "b" * 64, "sha512-x"]) | TEXT), "labels": LABELS}, ("name", "id"))),
        "app": either(APP),
        "readOnlyRootFS": either(st.booleans()),
        "mounts": either(st.lists(maybe({"volume": either(NAME), "path": either(TEXT)}),
                                  max_size=2)),
        "annotations": either(st.lists(maybe({"name": either(NAME), "value": either(TEXT)}),
                                       max_size=1)),
    }, ("name", "image", "app")), max_size=2)),
    "volumes": either(st.lists(maybe({
        "name": either(NAME), "kind": either(st.sampled_from(["host", "empty", "x"])),
        "source": either(st.sampled_from(["/tmp", "rel", ""]) | TEXT),
        "readOnly": either(st.booleans()), "mode": either(st.sampled_from(["0755", "9", ""])),
        "uid": either(st.integers(-2**64, 2**64)), "gid": either(st.integers(-2**64, 2**64)),
    }, ("name", "kind")), max_size=2)),
    "isolators": ISOLATORS,
    "annotations": either(st.lists(maybe({"name": either(NAME), "value": either(TEXT)}),
                                   max_size=1)),
    "ports": either(st.lists(maybe({"name": either(NAME), "hostPort": either(
        st.integers(-1, 70000)), "hostIP": either(TEXT)}), max_size=1)),
}, ("acKind", "acVersion", "apps"))

def assert_appc_error(error: AppcError) -> None:
    assert isinstance(error, AppcError) and str(error).strip(), repr(error)


def parsed_or_refused(parse, value):
    """``parse(value)``, or None when it raised an AppcError with a message."""
    try:
        return parse(value)
    except AppcError as error:
        assert_appc_error(error)
        return None


def as_text(document: dict, raw: bool) -> str | dict:
    """The document as JSON text (which may hold lone surrogates) or as the decoded object."""
    return json.dumps(document) if raw else document


def parses_back_the_same(kind, document: dict, raw: bool) -> None:
    """A manifest ``kind`` accepts prints as JSON that parses back to the same JSON."""
    manifest = parsed_or_refused(kind.from_json, as_text(document, raw))
    text = manifest and parsed_or_refused(kind.to_json, manifest)  # needs acVersion
    if text is not None:
        assert kind.from_json(text).to_json() == text


@given(IMAGE_MANIFEST, st.booleans())
def test_image_manifests(figures, document, raw):
    figures.add("fuzzing: appc")
    parses_back_the_same(ImageManifest, document, raw)


@given(POD_MANIFEST, st.booleans())
def test_pod_manifests(figures, document, raw):
    figures.add("fuzzing: appc")
    parses_back_the_same(PodManifest, document, raw)


@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
@example(b'{"acKind":"ImageManifest"' + b"[" * 200)
@example(b"\xff\xfe{}")
def test_manifest_bytes(figures, data):
    figures.add("fuzzing: appc")
    parsed_or_refused(ImageManifest.from_json, data)
    parsed_or_refused(PodManifest.from_json, data)


@given(NAME)
def test_names(figures, text):
    figures.add("fuzzing: appc")
    for check in (validate_ac_name, validate_ac_identifier, validate_image_name,
                  parse_app_string):
        parsed_or_refused(check, text)
    sanitized = parsed_or_refused(sanitize_ac_name, text)
    if sanitized is not None:
        assert validate_ac_name(sanitized) == sanitized
    app_name = parsed_or_refused(app_name_from_image_name, text)
    if app_name is not None:
        assert validate_ac_name(app_name) == app_name
    if parsed_or_refused(validate_image_name, text) is not None:
        assert all(part not in ("", ".", "..") for part in text.split("/"))


@given(LABELS)
def test_labels(figures, document):
    figures.add("fuzzing: appc")
    labels = parsed_or_refused(Labels.from_json, document)
    if labels is not None:
        assert Labels.from_json(labels.to_json()) == labels


@given(ISOLATORS)
def test_isolators(figures, document):
    figures.add("fuzzing: appc")
    isolators = parsed_or_refused(isolators_from_json, document)
    for isolator in isolators or ():
        for attribute in ("limit", "request", "default", "capabilities"):
            getattr(isolator, attribute)


@given(QUANTITY_TEXT | st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_quantities(figures, value):
    figures.add("fuzzing: appc")
    quantity = parsed_or_refused(parse_quantity, value)
    if quantity is not None:
        assert parse_quantity(str(quantity)).millis == quantity.millis


@given(st.lists(st.sampled_from(["kind=host", "kind=empty", "source=/tmp", "source=rel",
                                 "readOnly=true", "readOnly=maybe", "mode=0700", "mode=9",
                                 "uid=-5", "uid=99999999999999999999", "gid=1", "x=1", "kind",
                                 "="]) | TEXT, max_size=5), NAME)
def test_volume_values(figures, params, name):
    figures.add("fuzzing: appc")
    volume = parsed_or_refused(Volume.from_cli, ",".join([name, *params]))
    if volume is not None:
        assert Volume.from_cli(volume.to_cli()) == volume


@given(st.lists(st.sampled_from(["volume=data", "target=/x", "target=", "volume=../x", "x=1",
                                 "volume", "="]) | TEXT, max_size=4))
def test_mount_values(figures, params):
    figures.add("fuzzing: appc")
    parsed_or_refused(Mount.from_cli, ",".join(params))

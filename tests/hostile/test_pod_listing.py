"""The listing's reader of pod manifests (rkt_core.pod.listing) answers as the full parse
(rkt_core.appc.PodManifest) does for every field a listing shows, damaged and fuzzed manifests
included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_manifests import POD_MANIFEST

from rkt_core.appc import AppcError, PodManifest
from rkt_core.errors import ImageError
from rkt_core.pod.listing import read_apps

RUNTIME = (Path(__file__).parents[1] / "unit" / "appc" / "data" / "pod_runtime.json").read_bytes()
ID = "sha512-" + "ab" * 32
# What a listing does not read, per app and per pod (keys match case-insensitively).
UNREAD_APP_KEYS = {"app", "mounts", "annotations"}
UNREAD_POD_KEYS = {"volumes", "isolators", "annotations", "ports"}


def listed(data: bytes):
    """What the listing's reader gives: per app (name, image name, ID, labels), or the error."""
    try:
        return [(a.name, a.image_name, a.image_id, a.labels) for a in read_apps(data)]
    except ImageError as error:
        return error.message


def parsed(data: bytes):
    """The same from the full parse."""
    try:
        manifest = PodManifest.from_json(data)
    except AppcError as error:
        return error.message
    return [(a.name, a.image.name, a.image.id, a.image.labels.as_dict()) for a in manifest.apps]


def without_unread(document: dict) -> dict:
    """``document`` without the fields a listing does not read."""
    def keep(obj: dict, unread: set[str]) -> dict:
        return {k: v for k, v in obj.items() if k.lower() not in unread}

    document = keep(document, UNREAD_POD_KEYS)
    for key, apps in document.items():
        if key.lower() == "apps" and isinstance(apps, list):
            document[key] = [keep(a, UNREAD_APP_KEYS) if isinstance(a, dict) else a for a in apps]
    return document


def assert_same_answer(data: bytes) -> None:
    """The reader answers as the full parse does on the fields it reads: on the whole
    document when that is refused as a whole (not UTF-8 or JSON, not an object, too deep),
    else on the document without the fields a listing does not read."""
    expected = parsed(data)
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict) and not (isinstance(expected, str) and "nested deeper" in expected):
        expected = parsed(json.dumps(without_unread(document)).encode())
    assert listed(data) == expected


def manifest(*apps: dict, **fields) -> bytes:
    return json.dumps({"acKind": "PodManifest", "acVersion": "0.7.4", "apps": list(apps),
                       **fields}).encode()


def app(name="app", image_name="example.com/ok", image_id=ID, labels=None, **fields) -> dict:
    image = {"name": image_name, "id": image_id,
             "labels": [{"name": "version", "value": "1.0"}] if labels is None else labels}
    return {"name": name, "image": image, "app": {"exec": ["/bin/true"], "user": "0",
                                                  "group": "0"}, **fields}


CASES = {
    "as rkt writes it": manifest(app(), volumes=None, isolators=None, annotations=None, ports=[]),
    "the spec's example": RUNTIME,
    "two apps": manifest(app("a"), app("b", labels=[])),
    "no apps": manifest(),
    "apps null": json.dumps({"acKind": "PodManifest", "acVersion": "0.7.4", "apps": None}).encode(),
    "keys in other cases": json.dumps({"ACKIND": "PodManifest", "acversion": "0.7.4", "Apps": [
        {"NAME": "a", "Image": {"ID": ID, "NaMe": "example.com/x"}}]}).encode(),
    "a later duplicate key wins": b'{"acKind": "PodManifest", "apps": [{"name": "A"}],'
                                  b' "apps": [{"name": "a"}]}',
    "no acVersion": json.dumps({"acKind": "PodManifest", "apps": []}).encode(),
    "image without name, id or labels": manifest({"name": "a", "image": {}}),
    "no image": manifest({"name": "a"}),
    "floats and big numbers elsewhere": manifest(app(x=1.5e300, y=10 ** 30)),
    "os and arch labels": manifest(app(labels=[{"name": "os", "value": "linux"},
                                               {"name": "arch", "value": "amd64"}])),
    # refused, as a whole
    "not UTF-8": b"\x00\xffnot json at all{",
    "not JSON": b'{"acKind": "PodManifest",',
    "NaN": b'{"acKind": "PodManifest", "x": NaN}',
    "an array": b"[]",
    "nested 101 deep where a listing does not look": manifest(
        app(), volumes=[[[]] * 1] * 1, x=json.loads("[" * 101 + "]" * 101)),
    "nested 50,000 deep": manifest(app())[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "a number of 5,000 digits": manifest(app())[:-1] + b', "x": ' + b"1" * 5000 + b"}",
    # refused in a field a listing shows
    "app named ../../x": manifest(app("../../x")),
    "app name upper case": manifest(app("App")),
    "app name too long": manifest(app("a" * 256)),
    "app name empty": manifest(app("")),
    "app name a number": manifest({"name": 7, "image": {}}),
    "apps of wrong type": b'{"acKind": "PodManifest", "acVersion": "0.7.4", "apps": 7}',
    "app of wrong type": manifest("a"),
    "image of wrong type": manifest({"name": "a", "image": []}),
    "image name ..": manifest(app(image_name="example.com/../x")),
    "image name empty": manifest(app(image_name="")),
    "image name a list": manifest(app(image_name=["x"])),
    "image id sha256": manifest(app(image_id="sha256-ab")),
    "image id with a slash": manifest(app(image_id="sha512-a/b")),
    "image id empty hash": manifest(app(image_id="sha512-")),
    "image id null": manifest(app(image_id=None)),
    "labels not a list": manifest(app(labels={"version": "1"})),
    "label named name": manifest(app(labels=[{"name": "name", "value": "x"}])),
    "label twice": manifest(app(labels=[{"name": "v", "value": "1"}, {"name": "v", "value": "2"}])),
    "label value a number": manifest(app(labels=[{"name": "v", "value": 1}])),
    "label name bad": manifest(app(labels=[{"name": "-v", "value": "1"}])),
    "unknown os": manifest(app(labels=[{"name": "os", "value": "plan9"}])),
    "arch of another os": manifest(app(labels=[{"name": "os", "value": "darwin"},
                                               {"name": "arch", "value": "amd64"}])),
    "two apps of one name": manifest(app("a"), app("a")),
    "acKind wrong": json.dumps({"acKind": "ImageManifest", "apps": []}).encode(),
    "acKind missing": json.dumps({"acVersion": "0.7.4", "apps": []}).encode(),
    "acVersion zero": json.dumps({"acKind": "PodManifest", "acVersion": "0.0.0"}).encode(),
    "acVersion not semver": json.dumps({"acKind": "PodManifest", "acVersion": "v1"}).encode(),
    "acVersion with unicode digits": json.dumps({"acKind": "PodManifest",
                                                 "acVersion": "0.\u0663.4"}).encode(),
    "acVersion signed": json.dumps({"acKind": "PodManifest", "acVersion": "+1.-2.03-rc+m"}).encode(),
    "acVersion a number": json.dumps({"acKind": "PodManifest", "acVersion": 1}).encode(),
    "first error wins": manifest(app("a", labels=[{"name": "x"}] * 2), app("B")),
    # damaged where a listing does not look: listed all the same
    "bad isolator": manifest(app(), isolators=[{"name": "resource/cpu", "value": 7}]),
    "bad app section": manifest(app(app={"user": 0})),
    "bad volume": manifest(app(), volumes=[{"name": "../x", "kind": "host"}]),
}


@pytest.mark.parametrize("case", CASES)
def test_the_reader_answers_as_the_full_parse(figures, case):
    figures.add("pod listing")
    assert_same_answer(CASES[case])


@given(POD_MANIFEST, st.booleans())
def test_the_reader_answers_as_the_full_parse_on_fuzzed_manifests(figures, document, ascii):
    figures.add("fuzzing: pod listing")
    # Not ASCII: UTF-8 as written, where a lone surrogate makes the document invalid UTF-8.
    assert_same_answer(json.dumps(document, ensure_ascii=ascii).encode("utf-8", "surrogatepass"))


def test_rkts_pod_manifest_is_read(figures):
    figures.add("pod listing")
    (only,) = read_apps(CASES["as rkt writes it"])
    assert (only.name, only.image_name, only.image_id, only.labels) == (
        "app", "example.com/ok", ID, {"version": "1.0"})


@pytest.mark.parametrize("case, message", [
    ("app named ../../x", 'invalid app name "../../x": only lowercase letters, digits and - are '
                          'allowed'),
    ("nested 50,000 deep", "invalid pod manifest: nested deeper than 100 levels"),
    ("nested 101 deep where a listing does not look",
     "invalid pod manifest: nested deeper than 100 levels"),
    ("apps of wrong type", "invalid apps: must be a JSON array, not a number"),
])
def test_damaged_manifests_are_refused(figures, case, message):
    figures.add("pod listing")
    with pytest.raises(ImageError) as error:
        read_apps(CASES[case])
    assert error.value.message == message


@pytest.mark.parametrize("case", ["bad isolator", "bad app section", "bad volume"])
def test_what_a_listing_does_not_show_is_not_checked(figures, case):
    figures.add("pod listing")
    assert isinstance(parsed(CASES[case]), str)  # the full parse refuses it
    assert [a.name for a in read_apps(CASES[case])] == ["app"]

"""Labels, annotations and the os/arch table."""

import json

import pytest

from rkt_core.appc import AppcError, Labels, VALID_OS_ARCH, host_os_arch
from rkt_core.appc.annotations import Annotations


def labels(text: str) -> Labels:
    return Labels.from_json(json.loads(text))


@pytest.mark.parametrize("os_name, arch", [
    ("linux", "amd64"), ("linux", "aarch64"), ("linux", "aarch64_be"), ("linux", "armv6l"),
    ("linux", "armv7l"), ("linux", "armv7b"), ("linux", "i386"), ("freebsd", "amd64"),
    ("freebsd", "arm"), ("darwin", "x86_64"),
])
def test_valid_os_arch(os_name, arch):
    assert dict(Labels([("os", os_name), ("arch", arch)])) == {"os": os_name, "arch": arch}


@pytest.mark.parametrize("os_name, arch, message", [
    # From labels_test.go TestLabels.
    ("linux", "arm64", 'invalid arch label "arm64" for os "linux"'),
    ("linux", "arm64_be", 'invalid arch label "arm64_be"'),
    ("linux", "arm", 'invalid arch label "arm"'),
    ("OS/360", "S/360", 'invalid os label "OS/360": must be one of darwin, freebsd, linux'),
    ("freebsd", "armv7b", 'invalid arch label "armv7b" for os "freebsd"'),
    ("darwin", "amd64", 'invalid arch label "amd64"'),
])
def test_invalid_os_arch(os_name, arch, message):
    with pytest.raises(AppcError, match=message):
        Labels([("os", os_name), ("arch", arch)])


def test_arch_without_os_is_not_checked():
    assert Labels([("arch", "pdp11")]).get("arch") == "pdp11"


def test_label_called_name_is_refused():
    with pytest.raises(AppcError, match='invalid label name "name"'):
        labels('[{"name": "name"}]')


@pytest.mark.parametrize("text", [
    '[{"name": "os", "value": "linux"}, {"name": "os", "value": "freebsd"}]',
    '[{"name": "arch", "value": "amd64"}, {"name": "os", "value": "freebsd"}, '
    '{"name": "arch", "value": "x86_64"}]',
])
def test_duplicate_labels(text):
    with pytest.raises(AppcError, match="duplicate label"):
        labels(text)


@pytest.mark.parametrize("pairs", [[("Version", "1")], [("", "x")], [("a b", "x")]])
def test_label_names_are_ac_identifiers(pairs):
    with pytest.raises(AppcError, match="label name"):
        Labels(pairs)


def test_label_value_must_be_a_string():
    with pytest.raises(AppcError, match="must be a string"):
        labels('[{"name": "version", "value": 1}]')


def test_labels_behave_as_ordered_pairs():
    lab = Labels.from_dict({"version": "1.0", "os": "linux", "arch": "amd64"})
    assert list(lab) == [("version", "1.0"), ("os", "linux"), ("arch", "amd64")]
    assert dict(lab) == lab.as_dict() == {"version": "1.0", "os": "linux", "arch": "amd64"}
    assert len(lab) == 3
    assert lab.get("os") == "linux"
    assert lab.get("missing") is None
    assert lab.get("missing", "latest") == "latest"
    assert "version" in lab and "name" not in lab
    assert lab.to_json() == [{"name": "version", "value": "1.0"}, {"name": "os", "value": "linux"},
                             {"name": "arch", "value": "amd64"}]
    assert Labels.from_json(lab.to_json()) == lab
    assert lab != Labels.from_dict({"os": "linux", "version": "1.0", "arch": "amd64"})


def test_labels_are_immutable():
    lab = Labels([("version", "1")])
    with pytest.raises(AttributeError):
        lab.append(("os", "linux"))
    assert hash(lab) == hash(Labels([("version", "1")]))


def test_labels_from_json_null_and_missing_value():
    assert len(Labels.from_json(None)) == 0
    assert labels('[{"Name": "version"}]').get("version") == ""


def test_labels_from_json_needs_a_list():
    with pytest.raises(AppcError, match="must be a JSON array"):
        Labels.from_json({"version": "1"})


def test_valid_os_arch_table_is_the_code_superset():
    assert VALID_OS_ARCH["linux"] == ("amd64", "i386", "aarch64", "aarch64_be", "armv6l",
                                      "armv7l", "armv7b")
    assert VALID_OS_ARCH["darwin"] == ("x86_64", "i386")


@pytest.mark.parametrize("machine, arch", [
    ("x86_64", "amd64"), ("aarch64", "aarch64"), ("i686", "i386"), ("i386", "i386"),
    ("armv7l", "armv7l"),
])
def test_host_os_arch(monkeypatch, machine, arch):
    monkeypatch.setattr("platform.machine", lambda: machine)
    monkeypatch.setattr("platform.system", lambda: "Linux")
    assert host_os_arch() == ("linux", arch)


# Annotations: annotations_test.go and date_test.go.

@pytest.mark.parametrize("pairs", [
    [("created", "2004-05-14T23:11:14+00:00"), ("documentation", "http://example.com/docs")],
    [("foo", "bar"), ("homepage", "https://homepage.com")],
    [("created", "2001-02-03T04:05:06Z")],
    [("created", "2014-11-14T17:36:54-08:00")],
    [("created", "2014-10-27T19:32:27.67021798Z")],
    [("homepage", "HTTP://example.com")],
    [],
])
def test_good_annotations(pairs):
    assert list(Annotations(pairs)) == pairs


@pytest.mark.parametrize("pairs, message", [
    ([("foo", "bar"), ("foo", "baz")], 'duplicate annotation "foo"'),
    ([("created", "garbage")], 'annotation "created" value "garbage": must be an RFC 3339'),
    ([("created", "1416015188")], "RFC 3339"),
    ([("created", "Fri Nov 14 17:53:02 PST 2014")], "RFC 3339"),
    ([("created", "2014-11-1417:36:54")], "RFC 3339"),
    ([("created", "2014-11-14 17:36:54Z")], "RFC 3339"),
    ([("created", "2014-11-14t17:36:54Z")], "RFC 3339"),
    ([("created", "2014-02-30T17:36:54Z")], "RFC 3339"),
    ([("created", "2014-11-14T17:36:54")], "RFC 3339"),
    ([("homepage", "not-A$@#URL")], 'annotation "homepage" value "not-A\\$@#URL": must be an '
                                    'http or https URL'),
    ([("documentation", "ftp://isnotallowed.com")], "http or https URL"),
    ([("Foo", "bar")], "annotation name"),
])
def test_bad_annotations(pairs, message):
    with pytest.raises(AppcError, match=message):
        Annotations(pairs)


def test_annotations_json_and_get():
    ann = Annotations.from_json([{"name": "foo", "value": "bar"},
                                 {"name": "website", "value": "http://example.com/anno"}])
    assert ann.get("website") == "http://example.com/anno"
    assert ann.get("baz") is None
    assert ann.to_json() == [{"name": "foo", "value": "bar"},
                             {"name": "website", "value": "http://example.com/anno"}]
    assert list(ann) == [("foo", "bar"), ("website", "http://example.com/anno")]

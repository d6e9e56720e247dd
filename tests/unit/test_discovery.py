"""appc meta discovery: tag parsing (also of garbage), template rendering, the prefix walk order,
default labels."""

import platform

import pytest

from rkt_core.remote.discovery import app_labels, host_labels, parse_meta, prefixes, render


def test_meta_tags_are_read_with_prefix_and_uri():
    page = b"""<html><head>
      <meta name="ac-discovery" content="example.com https://e.com/{name}-{version}.{ext}">
      <META NAME="ac-discovery-pubkeys" CONTENT="example.com   https://e.com/keys.gpg"/>
      <meta name="description" content="example.com nothing">
      <meta name="ac-discovery" content="only-a-prefix">
      <meta name="ac-discovery" content=" ">
    </head></html>"""
    assert parse_meta(page) == [
        ("ac-discovery", "example.com", "https://e.com/{name}-{version}.{ext}"),
        ("ac-discovery-pubkeys", "example.com", "https://e.com/keys.gpg"),
    ]


@pytest.mark.parametrize("page", [
    b"", b"\x00\xff\xfe" * 1000, b"<meta", b"<<<<>>>>&&&;", b"<meta name=ac-discovery content=",
    b"<!-- <meta name='ac-discovery' content='a b'> -->", "<méta>ünïcode".encode(),
    b"<![CDATA[ <meta name='ac-discovery' content='a b'>",
])
def test_garbage_gives_no_tags_and_no_exception(page):
    assert parse_meta(page) == []


def test_the_number_of_tags_read_is_capped():
    page = b"<meta name='ac-discovery' content='a b'>" * 5000
    assert len(parse_meta(page)) == 1000


def test_template_rendering_fills_name_ext_and_every_label():
    labels = {"version": "1.0", "os": "linux", "arch": "amd64", "channel": "beta"}
    template = "https://s.com/{name}/{channel}/{version}-{os}-{arch}.{ext}"
    assert render(template, "example.com/app", labels, "aci") == \
        "https://s.com/example.com/app/beta/1.0-linux-amd64.aci"
    assert render(template, "example.com/app", labels, "aci.asc").endswith(".aci.asc")


def test_a_template_with_an_unfilled_placeholder_is_skipped():
    assert render("https://s.com/{name}-{flavor}.{ext}", "a.com/b", {"version": "1"}, "aci") is None


def test_a_label_called_name_does_not_replace_the_name():
    assert render("https://s/{name}.{ext}", "a.com/b", {"name": "evil"}, "aci") == "https://s/a.com/b.aci"


def test_prefixes_are_walked_longest_first():
    assert prefixes("a.com/p/s") == ["a.com/p/s", "a.com/p", "a.com"]
    assert prefixes("a.com") == ["a.com"]


def test_missing_version_is_latest_and_os_arch_are_the_hosts():
    labels = app_labels({})
    assert labels["version"] == "latest"
    assert labels["os"] == platform.system().lower() == host_labels()["os"]
    if platform.machine() == "x86_64":
        assert labels["arch"] == "amd64"
    assert app_labels({"version": "2", "os": "freebsd"})["os"] == "freebsd"

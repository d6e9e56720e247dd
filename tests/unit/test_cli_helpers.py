"""Small CLI pieces: insecure options, tables, times, sizes, durations, image arguments."""

import pytest

from rkt_core.cli.output import format_table, human_size, humanize_time
from rkt_core.duration import format_duration, parse_duration
from rkt_core.errors import UsageError
from rkt_core.insecure import Insecure, format_insecure_options, parse_insecure_options
from rkt_core.stage0.imageref import classify


def test_insecure_options_groups_and_errors():
    assert parse_insecure_options("image,tls") == Insecure.IMAGE | Insecure.TLS
    assert Insecure.PUBKEY in parse_insecure_options("all-fetch")
    assert Insecure.SECCOMP not in parse_insecure_options("all-fetch")
    assert parse_insecure_options("all") & Insecure.ONDISK
    assert parse_insecure_options("none") == Insecure.NONE
    assert format_insecure_options(parse_insecure_options("http,image")) == "image,http"
    with pytest.raises(UsageError, match='"bogus"'):
        parse_insecure_options("image,bogus")


def test_table_matches_go_tabwriter_output_of_rkt():
    # From rkt v1.30 "image list" on this machine (reference/rkt-outputs.txt).
    text = format_table([["ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"],
                         ["sha512-9485936ecf06", "example.com/busybox:1.0", "1.9MiB", "now", "now"]])
    assert text == ("ID\t\t\tNAME\t\t\tSIZE\tIMPORT TIME\tLAST USED\n"
                    "sha512-9485936ecf06\texample.com/busybox:1.0\t1.9MiB\tnow\t\tnow\n")


def test_human_sizes_and_times():
    assert human_size(1996800) == "1.9MiB"
    assert human_size(17341440) == "16MiB"
    assert human_size(3991899) == "3.8MiB"
    assert human_size(5) == "5B"
    assert humanize_time(100.0, now=100.5) == "now"
    assert humanize_time(0, now=90) == "1 minute ago"
    assert humanize_time(0, now=3 * 3600) == "3 hours ago"
    assert humanize_time(200, now=100) == "1 minute from now"


def test_go_durations():
    assert parse_duration("30m0s") == 1800
    assert parse_duration("24h") == 86400
    assert parse_duration("1h30m") == 5400
    assert parse_duration("0") == 0
    assert parse_duration("500ms") == 0.5
    assert format_duration(1800) == "30m0s"
    assert format_duration(86400) == "24h0m0s"
    for bad in ("", "10", "5x", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_image_argument_classification(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plainfile").write_text("x")
    assert classify("sha512-abcd").kind == "hash"
    assert classify("docker://busybox").scheme == "docker"
    assert classify("https://example.com/x.aci").scheme == "https"
    assert classify("/abs/path").scheme == "file"
    assert classify("./rel").kind == "path"
    assert classify("x.aci").kind == "path"
    assert classify("plainfile").kind == "path"
    assert classify("example.com/app:1.0").kind == "name"
    assert classify("example.com/app:1.0").scheme == "appc"
    assert classify("Docker://busybox").scheme == "docker"
    assert classify("git+ssh.x-y://host/x").scheme == "git+ssh.x-y"
    for not_a_url in ("1docker://x", "://x", "a/b://c", "do_cker://x", "dock er://x",
                      "docker:/x", "\u017f://x"):  # not ASCII: the long s
        assert classify(not_a_url).kind != "url", not_a_url

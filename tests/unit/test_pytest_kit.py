"""rkt's pytest kit works for a plugin author's tests: loaded by its pytest11 entry point, with
none of this repository's conftest files."""

import subprocess
import sys
import textwrap

THIRD_PARTY_TESTS = '''
import errno

import pytest

PLUGIN = """
from rkt_core.plugin_api import Fetcher, hookimpl

RKT_PLUGIN_API = 1

@hookimpl
def rkt_fetchers():
    return [Fetcher("thirdparty", ("thirdparty",), lambda request: None)]
"""


def test_rkt_runs_the_real_command_on_its_own_directories(rkt, busybox_image):
    assert rkt("version", check=0).stdout.startswith("rkt Version: ")
    key = rkt("fetch", "--full", busybox_image, check=0).stdout.strip()
    assert rkt.image_keys() == [key]
    assert rkt.images() == ["example.com/busybox:1.0"]
    assert str(rkt.data_dir).startswith(str(rkt.base))


def test_a_test_plugin_is_discovered_by_the_command(rkt, rkt_plugin):
    rkt_plugin("rkt-thirdparty", {"fetch-thirdparty": "thirdparty_plugin"},
               {"thirdparty_plugin": PLUGIN})
    rows = [[cell for cell in line.split("\\t") if cell]
            for line in rkt("plugins", "--no-legend", check=0).stdout.splitlines()]
    assert ["fetch-thirdparty", "rkt-thirdparty 0.0.1", "fetcher thirdparty", "loaded"] in rows


def test_a_signed_image_is_fetched_once_its_key_is_trusted(rkt, signed_image):
    rkt.insecure = ""
    assert rkt("fetch", signed_image.aci).returncode == 254
    rkt("trust", "--prefix", signed_image.name, "--skip-fingerprint-review",
        signed_image.key, check=0)
    rkt("fetch", signed_image.aci, check=0)


def test_wait_for_names_what_it_waited_for(wait_for):
    assert wait_for(lambda: 42, 1, "the answer") == 42
    with pytest.raises(AssertionError, match="waiting for the impossible"):
        wait_for(lambda: False, 0.2, "the impossible")


def test_the_fake_libc_records_and_fails(fake_libc):
    from rkt_core.sys import mount

    mount.bind("/a", "/b")
    assert fake_libc.calls[0][0] == "mount"
    fake_libc.fail["mount"] = errno.EPERM
    with pytest.raises(OSError):
        mount.bind("/a", "/b")


@pytest.mark.root
def test_the_root_marker_is_known():
    pass
'''


def test_the_kit_works_without_this_repositorys_conftest(tmp_path):
    (tmp_path / "test_thirdparty.py").write_text(textwrap.dedent(THIRD_PARTY_TESTS))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning",
                           "test_thirdparty.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout, done.stdout
    assert "conftest" not in done.stdout

"""The index of the ``rkt.plugins`` entry points: used while ``sys.path`` is unchanged, rebuilt
when a plugin is installed or removed, ignored when it cannot be trusted."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from rkt_core.testing.plugins import plugin_site

PROGRAM = """
import json, sys
from rkt_core.plugin_index import entry_points
found = [[e.name, e.value, e.distribution, e.version] for e in entry_points()]
print(json.dumps({"found": found, "scanned": "importlib.metadata" in sys.modules}))
"""
OLD = 1_600_000_000 * 10**9  # a modification time long past: nothing is being installed


def discover(site, cache):
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout)
    return {name: rest for name, *rest in result["found"]}, result["scanned"]


def settle(directory):
    """Give ``directory`` a modification time in the past (and a new one each call)."""
    settle.count = getattr(settle, "count", 0) + 1
    os.utime(directory, ns=(OLD + settle.count, OLD + settle.count))


@pytest.fixture
def site(tmp_path):
    site = plugin_site(str(tmp_path / "site"), "rkt-first", {"first": "first_plugin"},
                       {"first_plugin": "RKT_PLUGIN_API = 1\n"}, version="1.0")
    settle(site)
    return tmp_path / "site"


def test_the_index_answers_while_nothing_changes(site, tmp_path):
    found, scanned = discover(site, tmp_path / "cache")
    assert found["first"] == ["first_plugin", "rkt-first", "1.0"] and scanned
    assert "fetch-file" in found  # rkt-core's own
    again, scanned = discover(site, tmp_path / "cache")
    assert again == found and not scanned


def test_an_installed_plugin_is_found_and_a_removed_one_forgotten(site, tmp_path):
    cache = tmp_path / "cache"
    discover(site, cache)
    plugin_site(str(site), "rkt-second", {"second": "second_plugin"},
                {"second_plugin": "RKT_PLUGIN_API = 1\n"}, version="2.0")
    found, scanned = discover(site, cache)  # just installed: found, index not yet rewritten
    assert found["second"] == ["second_plugin", "rkt-second", "2.0"] and scanned
    settle(site)
    assert "second" in discover(site, cache)[0]
    assert discover(site, cache) == (found, False)
    shutil.rmtree(site / "rkt_second-2.0.dist-info")
    found, scanned = discover(site, cache)
    assert "second" not in found and "first" in found and scanned


def test_no_index_is_written_while_a_directory_is_changing(site, tmp_path):
    os.utime(site, ns=(time.time_ns(), time.time_ns()))
    discover(site, tmp_path / "cache")
    assert discover(site, tmp_path / "cache")[1]
    assert not list((tmp_path / "cache").glob("rkt/plugins-*"))


@pytest.mark.parametrize("spoil", ["writable", "garbage", "wrong key"])
def test_an_index_that_cannot_be_trusted_is_ignored(site, tmp_path, spoil):
    cache = tmp_path / "cache"
    found, _ = discover(site, cache)
    (index,) = (cache / "rkt").glob("plugins-*")
    if spoil == "writable":
        data = json.loads(index.read_text())
        data["entry_points"].append(["evil", "os", "", ""])
        index.write_text(json.dumps(data))
        index.chmod(0o666)
    elif spoil == "garbage":
        index.write_bytes(b"\x00{not json")
    else:
        data = json.loads(index.read_text())
        data["key"][3][0][1] += 1
        index.write_text(json.dumps(data))
    again, scanned = discover(site, cache)
    assert (again, scanned) == (found, True)

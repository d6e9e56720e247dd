"""Hostile command-line values for ``rkt run``: overlong values and control characters in
``--volume``, ``--mount``, ``--set-env``, ``--net``, ``--port``, ``--hostname``, ``--dns``,
``--hosts-entry``, ``--uuid-file-save``, app names and image names. Each is refused with
rkt's clear error (``rkt: ...``, exit 254), printed safely (no control character reaches the
terminal, an overlong value is cut), and nothing is created: no pod in any state, no change in
the store, no uuid file.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from hostile import assert_clear_error, store_state

from rkt_core.testing.aci import busybox_aci
from rkt_core.testing.runner import Rkt

pytestmark = pytest.mark.root

LONG = "a" * 100_000  # under the kernel's 128 KiB limit for one argument
CONTROL = "x\x1b[31m\r\x07\ny"
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# case -> (arguments before the image, arguments after it, what the error names)
CASES = {
    "--volume overlong": ([f"--volume={LONG}"], [], "invalid volume"),
    "--volume name with control characters": ([f"--volume=v{CONTROL},kind=empty"], [],
                                              "invalid volume name"),
    "--volume source with control characters": (
        [f"--volume=v,kind=host,source=/tmp/{CONTROL}"], [], "control character"),
    "--volume source overlong": ([f"--volume=v,kind=host,source=/{LONG}"], [],
                                 "longer than 4096 bytes"),
    "--volume uid overlong": ([f"--volume=v,kind=empty,uid={'9' * 5000}"], [], "uid"),
    "--mount target overlong": (["--volume=v,kind=empty", f"--mount=volume=v,target=/{LONG}"],
                                [], "longer than 4096 bytes"),
    "--mount target with control characters": (
        ["--volume=v,kind=empty", f"--mount=volume=v,target=/a{CONTROL}"], [],
        "control character"),
    "--set-env name with control characters": ([f"--set-env=A{CONTROL}=1"], [],
                                               "environment variable name"),
    "--set-env without a name": (["--set-env==1"], [], "--set-env"),
    "--net overlong": ([f"--net={LONG}"], [], "invalid network name"),
    "--net with control characters": ([f"--net=default{CONTROL}"], [], "--net"),
    "--port overlong": ([f"--port={LONG}"], [], "--port"),
    "--port with control characters": ([f"--port=http{CONTROL}:80"], [], "--port"),
    "--hostname overlong": ([f"--hostname={LONG}"], [], "--hostname: longer than 64 bytes"),
    "--hostname with control characters": ([f"--hostname=a{CONTROL}"], [], "--hostname"),
    "--dns overlong": ([f"--dns={LONG}"], [], "--dns"),
    "--dns with control characters": ([f"--dns=10.0.0.1{CONTROL}"], [], "--dns"),
    "--hosts-entry overlong": ([f"--hosts-entry={LONG}"], [], "--hosts-entry"),
    "--hosts-entry with control characters": ([f"--hosts-entry=10.0.0.1=a{CONTROL}"], [],
                                              "--hosts-entry"),
    "--uuid-file-save overlong name": (["--uuid-file-save={tmp}/" + "u" * 300], [],
                                       "--uuid-file-save"),
    "--uuid-file-save in a missing directory": (["--uuid-file-save={tmp}/missing/uuid"], [],
                                                "does not exist"),
    "--uuid-file-save with control characters": ([f"--uuid-file-save={{tmp}}/u{CONTROL}"], [],
                                                 "control character"),
    "app name climbing out": ([], ["--name=../../x"], "invalid app name"),
    "app name overlong": ([], [f"--name={LONG}"], "longer than 255 characters"),
    "app name with control characters": ([], [f"--name=a{CONTROL}"], "invalid app name"),
}
# Image names (not files): the pull policy keeps rkt from looking them up on the network.
IMAGE_CASES = {
    "image name overlong": (f"example.com/{LONG}", "example.com/aaaa"),
    "image name with control characters": (f"example.com/a{CONTROL}", "invalid image name"),
    "image name with empty segments": ("example.com//x", "invalid image name"),
}


@pytest.fixture(scope="module")
def aci(tmp_path_factory):
    return busybox_aci(tmp_path_factory.mktemp("img") / "bb.aci", exec=["/bin/true"])


@pytest.fixture(scope="module")
def template(tmp_path_factory, aci):
    """A data directory holding the image, copied for each case (cheaper than a fetch)."""
    rkt = Rkt(tmp_path_factory.mktemp("template"))
    rkt("fetch", aci, check=0)
    return rkt.data_dir


@pytest.fixture
def fetched(rkt, template):
    shutil.copytree(template, rkt.data_dir, symlinks=True)
    return store_state(rkt.data_dir)


def check_refused(rkt, tmp_path, store_before, done, expected: str) -> None:
    assert_clear_error(done, expected)
    assert not RAW_CONTROL.search(done.stderr), repr(done.stderr)
    assert len(done.stderr) < 3000, f"{len(done.stderr)} characters of error"
    pods = rkt.data_dir / "pods"
    assert not pods.exists() or [p for d in pods.iterdir() for p in d.iterdir()] == []
    assert store_state(rkt.data_dir) == store_before
    assert sorted(os.listdir(tmp_path)) == ["data"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_values_are_refused_and_create_nothing(rkt, aci, fetched, tmp_path, case,
                                                       figures):
    before, after, expected = CASES[case]
    before = [arg.replace("{tmp}", str(tmp_path)) for arg in before]
    done = rkt("run", "--stage1-name=nspawn", *before, aci, *after)
    figures.add("CLI arguments")
    check_refused(rkt, tmp_path, fetched, done, expected)


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_hostile_image_names_are_refused_and_create_nothing(rkt, fetched, tmp_path, case,
                                                            figures):
    name, expected = IMAGE_CASES[case]
    done = rkt("run", "--stage1-name=nspawn", "--pull-policy=never", name)
    figures.add("CLI arguments")
    check_refused(rkt, tmp_path, fetched, done, expected)

"""Measured pod starts as root with a software TPM (swtpm, on the loopback) and tpm2-tools: the
PCR after ``rkt run`` is the hash chain the test computes from the pod itself, ``rkt tpm-log``
reads the events back and checks them against the PCR, and a TPM that is not there never stops
a pod."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from rkt_core.testing.aci import busybox_aci

pytestmark = pytest.mark.root

TIMEOUT = 120
PCR = 15


def free_port_pair() -> int:
    """A port P with P+1 free too (swtpm's server and control ports)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            if port < 65535 and s.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port
    raise AssertionError("no free pair of ports")


@pytest.fixture
def swtpm(tmp_path):
    """A fresh TPM 2.0 (swtpm) on the loopback; yields its TCTI."""
    state = tmp_path / "tpm-state"
    state.mkdir()
    port = free_port_pair()
    process = subprocess.Popen(
        ["swtpm", "socket", "--tpm2", f"--tpmstate=dir={state}",
         f"--server=type=tcp,port={port},bindaddr=127.0.0.1",
         f"--ctrl=type=tcp,port={port + 1},bindaddr=127.0.0.1",
         "--flags=not-need-init,startup-clear"], stderr=subprocess.PIPE)
    tcti = f"swtpm:host=127.0.0.1,port={port}"
    deadline = time.monotonic() + 60
    while subprocess.run(["tpm2_pcrread", f"--tcti={tcti}", f"sha256:{PCR}"],
                         capture_output=True).returncode != 0:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "swtpm did not start"
        time.sleep(0.1)
    yield tcti
    process.terminate()
    process.wait(timeout=60)


def pcr_value(tcti: str) -> bytes:
    out = subprocess.run(["tpm2_pcrread", f"--tcti={tcti}", f"sha256:{PCR}"], check=True,
                         capture_output=True, text=True).stdout
    return bytes.fromhex(out.split("0x", 1)[1].strip())


class Rkt:
    def __init__(self, tmp_path, tcti):
        self.data = tmp_path / "data"
        self.log = tmp_path / "events.log"
        self.env = dict(os.environ, RKT_TPM_TCTI=tcti, RKT_TPM_EVENT_LOG=str(self.log))

    def __call__(self, *args):
        return subprocess.run([sys.executable, "-m", "rkt_core.cli.main", f"--dir={self.data}",
                               "--insecure-options=image", *map(str, args)],
                              capture_output=True, text=True, env=self.env, timeout=TIMEOUT)

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def rkt(tmp_path, swtpm):
    r = Rkt(tmp_path, swtpm)
    yield r
    assert r("gc", "--grace-period=0s").returncode == 0


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return busybox_aci(tmp_path_factory.mktemp("img") / "bb.aci", exec=["/bin/true"])


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize("flavor,net", [("fly", "host"), ("nspawn", "default")])
def test_the_pcr_after_rkt_run_is_the_expected_chain(rkt, swtpm, image, tmp_path, flavor, net):
    assert pcr_value(swtpm) == bytes(32)
    expected = bytes(32)
    for run in range(2):
        uuid_file = tmp_path / f"uuid-{run}"
        done = rkt("run", f"--stage1-name={flavor}", f"--net={net}",
                   f"--uuid-file-save={uuid_file}", image)
        assert done.returncode == 0, done.stderr
        assert "tpm" not in done.stderr
        uuid = uuid_file.read_text()
        pod = next(rkt.data.glob(f"pods/*/{uuid}"))
        events = [e for e in rkt.events() if e["pod"] == uuid]
        assert [e["event"] for e in events] == ["stage1 flavor", "pod manifest", "run options"]
        assert events[0]["data"].startswith(f"{flavor} (rkt-stage1-{flavor} ")
        options = json.loads(events[2]["data"])
        assert (options["pod"], options["flavor"]) == (uuid, flavor)
        assert options["options"]["net"] == [net]
        measured = [events[0]["data"].encode(), (pod / "pod").read_bytes(),
                    events[2]["data"].encode()]
        for event, data in zip(events, measured):
            assert event["pcr"] == PCR and event["digests"]["sha256"] == sha256(data).hex()
            expected = sha256(expected + sha256(data))
        assert pcr_value(swtpm) == expected


def test_tpm_log_reads_the_events_back_and_checks_them(rkt, swtpm, image):
    assert rkt("run", "--stage1-name=fly", image).returncode == 0
    listed = rkt("tpm-log")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["TIME", "PCR", "POD", "EVENT", "SHA256"] and len(lines) == 4
    as_json = json.loads(rkt("tpm-log", "--format=json").stdout)
    assert as_json == rkt.events()
    checked = rkt("tpm-log", "--check")
    assert checked.returncode == 0 and "matches the event log" in checked.stderr
    subprocess.run(["tpm2_pcrextend", f"--tcti={swtpm}", f"{PCR}:sha256={'11' * 32}"],
                   check=True)
    checked = rkt("tpm-log", "--check")
    assert checked.returncode == 254
    assert f"rkt: PCR {PCR} (sha256) is {pcr_value(swtpm).hex()}, but" in checked.stderr


def test_without_a_tpm_the_pod_runs_and_the_failure_is_reported(tmp_path, image):
    rkt = Rkt(tmp_path, f"swtpm:host=127.0.0.1,port={free_port_pair()}")
    try:
        done = rkt("run", "--stage1-name=fly", image, "--exec", "/bin/sh", "--", "-c",
                   "echo ran; exit 3")
        assert done.returncode == 3 and done.stdout == "ran\n"
        assert "rkt: tpm: pod " in done.stderr and "was not measured" in done.stderr
        assert not rkt.log.exists() or rkt.events() == []
    finally:
        assert rkt("gc", "--grace-period=0s").returncode == 0

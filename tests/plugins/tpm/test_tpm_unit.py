"""The TPM plugin without a TPM: what a pod start measures, the event log and its replay, that
a failing TPM never stops a pod, and ``rkt version``'s ``+TPM``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid as uuidlib

import pytest

from rkt_core.plugin_api import RunOptions
from rkt_core.testing.plugins import load_plugin
from rkt_tpm import plugin, tpm
from rkt_tpm.eventlog import LOG_ENV, EventLog, replay
from rkt_tpm.measure import PCR_ENV, measure_pod_start
from rkt_tpm.tpm import TCTI_ENV, TpmError

MANIFEST = b'{"acVersion":"0.7.4","acKind":"PodManifest","apps":[]}'
SECRET = "http://127.0.0.1:18112/0123456789abcdef0123456789abcdef"


class FakePod:
    def __init__(self):
        self.uuid = str(uuidlib.uuid4())

    def manifest_json(self):
        return MANIFEST


class FakeTpm:
    """Records extends; fails the extend number ``fail_at`` (counting from 1)."""

    def __init__(self, fail_at=0):
        self.extended = []
        self.fail_at = fail_at

    def extend(self, pcr, digest):
        if len(self.extended) + 1 == self.fail_at:
            raise TpmError("the TPM said no")
        self.extended.append((pcr, digest))


OPTIONS = RunOptions(lock_fd=7, net=("default",), mds_register=True, metadata_url=SECRET)


def chain(digests, start=bytes(32)):
    value = start
    for digest in digests:
        value = hashlib.sha256(value + digest).digest()
    return value


def test_a_pod_start_extends_the_pcr_three_times_and_logs_each(tmp_path):
    tpm, log = FakeTpm(), EventLog(str(tmp_path / "log" / "events"))
    pod = FakePod()
    measure_pod_start(pod, "fly", OPTIONS, tpm, log)
    events = log.read()
    assert [e.event for e in events] == ["stage1 flavor", "pod manifest", "run options"]
    assert [e.pcr for e in events] == [15, 15, 15] and {e.pod for e in events} == {pod.uuid}
    assert [d for _, d in tpm.extended] == [bytes.fromhex(e.digests["sha256"]) for e in events]
    assert events[0].data == "fly (rkt-stage1-fly 0.1.0)"
    assert events[1].data is None
    assert events[1].digests["sha256"] == hashlib.sha256(MANIFEST).hexdigest()
    for event in (events[0], events[2]):
        assert event.digests["sha256"] == hashlib.sha256(event.data.encode()).hexdigest()
    options = json.loads(events[2].data)
    assert options["pod"] == pod.uuid and options["flavor"] == "fly"
    assert options["options"]["net"] == ["default"] and options["options"]["mds_register"] is True
    assert "lock_fd" not in options["options"] and "metadata_url" not in options["options"]
    assert "0123456789abcdef" not in (tmp_path / "log" / "events").read_text()
    assert oct(os.stat(tmp_path / "log" / "events").st_mode & 0o777) == "0o600"
    assert replay(events, 15) == chain(d for _, d in tpm.extended)


def test_the_log_replays_across_pods_and_pcrs(tmp_path, monkeypatch):
    tpm, log = FakeTpm(), EventLog(str(tmp_path / "events"))
    measure_pod_start(FakePod(), "nspawn", OPTIONS, tpm, log)
    monkeypatch.setenv(PCR_ENV, "16")
    measure_pod_start(FakePod(), "nspawn", OPTIONS, tpm, log)
    events = log.read()
    assert len(events) == 6 and [e.pcr for e in events] == [15] * 3 + [16] * 3
    assert replay(events, 15) == chain(d for p, d in tpm.extended if p == 15)
    assert replay(events, 16) == chain(d for p, d in tpm.extended if p == 16)
    assert replay(events, 15) != replay(events, 16)


def test_a_failed_extend_logs_only_what_was_extended(tmp_path):
    tpm, log = FakeTpm(fail_at=2), EventLog(str(tmp_path / "events"))
    with pytest.raises(TpmError):
        measure_pod_start(FakePod(), "fly", OPTIONS, tpm, log)
    assert [e.event for e in log.read()] == ["stage1 flavor"]
    assert replay(log.read(), 15) == chain(d for _, d in tpm.extended)


def test_a_corrupt_log_is_an_error(tmp_path):
    (tmp_path / "events").write_text('{"not": "an event"}\n')
    with pytest.raises(ValueError, match="events:1: not an event"):
        EventLog(str(tmp_path / "events")).read()


@pytest.mark.parametrize("env", [{TCTI_ENV: "swtpm:host=127.0.0.1,port=1"},
                                 {TCTI_ENV: "device:/dev/tpmrm0", PCR_ENV: "99"}])
def test_the_observer_never_stops_a_pod(tmp_path, monkeypatch, capsys, env):
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "events"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pod = FakePod()
    plugins, info = load_plugin(plugin, "tpm")
    assert info.errors == []
    plugins.notify("rkt_before_stage1", pod=pod, flavor="fly", options=OPTIONS)
    err = capsys.readouterr().err
    assert err.startswith(f"rkt: tpm: pod {pod.uuid} was not measured: ")
    assert EventLog(str(tmp_path / "events")).read() == []


def test_missing_tpm2_tools_are_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "events"))
    monkeypatch.setenv(TCTI_ENV, "device:/dev/tpmrm0")
    monkeypatch.setenv("PATH", str(tmp_path))
    plugin.rkt_before_stage1(FakePod(), "fly", OPTIONS)
    assert "tpm2_pcrextend is not installed (Debian: tpm2-tools)" in capsys.readouterr().err


def test_a_host_without_a_tpm_is_left_alone(tmp_path, monkeypatch, capsys):
    """No TCTI chosen and no TPM device: nothing is run, nothing said (but with --debug)."""
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "events"))
    for name in (TCTI_ENV, "TPM2TOOLS_TCTI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tpm, "DEVICES", (str(tmp_path / "tpmrm0"),))
    monkeypatch.setenv("PATH", str(tmp_path))  # running a tpm2 tool would be reported
    plugin.rkt_before_stage1(FakePod(), "fly", OPTIONS)
    assert capsys.readouterr().err == "" and not (tmp_path / "events").exists()
    plugin.rkt_before_stage1(FakePod(), "fly", RunOptions(lock_fd=3, debug=True))
    assert "rkt: tpm: no TPM (no device, no RKT_TPM_TCTI)" in capsys.readouterr().err
    (tmp_path / "tpmrm0").touch()  # a TPM appears: now it is used (and here, fails)
    plugin.rkt_before_stage1(FakePod(), "fly", OPTIONS)
    assert "tpm2_pcrextend is not installed" in capsys.readouterr().err


VERSION = """
import sys
from rkt_core.cli.main import main
{block}
try:
    main(["version"])
except SystemExit:
    pass
print(sorted(m for m in ("pluggy", "stevedore", "rkt_tpm") if sys.modules.get(m) is not None))
"""


@pytest.mark.parametrize("block,features", [("", "Features: +TPM"),
                                            ("sys.modules['rkt_tpm'] = None", "Features: -TPM")])
def test_version_shows_whether_the_tpm_plugin_is_installed_without_loading_plugins(block,
                                                                                   features):
    out = subprocess.run([sys.executable, "-c", VERSION.format(block=block)], capture_output=True,
                         text=True, check=True).stdout
    assert features in out
    assert out.splitlines()[-1] == "[]"

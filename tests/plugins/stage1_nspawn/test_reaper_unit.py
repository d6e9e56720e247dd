"""The nspawn flavor's reaper script, run by the shell a Debian stage1 root has (dash), on
systemd's MONITOR_* variables: the exit status it records and ends the pod with."""

import os
import shutil
import subprocess

import pytest

from rkt_stage1_nspawn import units


@pytest.fixture
def reaper(tmp_path):
    """The script, with ``/rkt/`` moved under tmp_path and systemctl replaced by an echo."""
    root = tmp_path / "rkt"
    (root / "status").mkdir(parents=True)
    script = tmp_path / "reaper"
    script.write_text(units.REAPER_SCRIPT.replace("/rkt/", f"{root}/")
                      .replace("exec /usr/bin/systemctl --no-block exit", "echo exit"))
    return script, root


def reap(reaper, app, exit_code, exit_status):
    script, _root = reaper
    env = dict(os.environ, MONITOR_EXIT_CODE=exit_code, MONITOR_EXIT_STATUS=exit_status)
    return subprocess.run([shutil.which("dash") or "/bin/sh", str(script), app], env=env,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("exit_code,exit_status,recorded", [
    ("exited", "5", "5"), ("killed", "KILL", "137"), ("killed", "TERM", "143"),
    ("dumped", "SEGV", "139"), ("killed", "USR1", "138"), ("killed", "NOSUCH", "128"),
    ("exited", "not-a-number", "1"),
])
def test_the_status_recorded_for_an_app(reaper, exit_code, exit_status, recorded):
    _script, root = reaper
    (root / "apps").write_text("app\n")
    assert reap(reaper, "app", exit_code, exit_status) == f"exit {recorded}\n"
    assert (root / "status" / "app").read_text() == f"{recorded}\n"


def test_the_pod_ends_once_every_app_has_a_status_with_the_first_failure(reaper):
    _script, root = reaper
    (root / "apps").write_text("a\nb\nc\n")
    assert reap(reaper, "b", "killed", "KILL") == ""  # a and c still run
    assert reap(reaper, "a", "exited", "3") == ""
    assert reap(reaper, "c", "exited", "0") == "exit 137\n"

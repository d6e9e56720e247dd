"""rkt enter waits for the app's exec: a process still running its parent's code (systemd's
child setting the app up) is not the app yet."""

import os
import signal
import subprocess

from rkt_core.plugin_api.linux import proc
from rkt_stage1_nspawn.enter import runs_the_app


def test_a_fork_that_has_not_execd_is_not_the_app():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the same executable as its parent, like systemd's child before exec
        os.close(write)
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    proc_fd = proc.open_process(pid)
    try:
        assert not runs_the_app(proc_fd)
    finally:
        os.close(write)
        os.waitpid(pid, 0)
        os.close(proc_fd)


def test_a_process_that_execd_is_the_app():
    child = subprocess.Popen(["sleep", "60"])
    proc_fd = proc.open_process(child.pid)
    try:
        assert runs_the_app(proc_fd)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        os.close(proc_fd)


def test_a_process_gone_is_not_the_app():
    child = subprocess.Popen(["true"])
    proc_fd = proc.open_process(child.pid)
    child.wait()
    try:
        assert not runs_the_app(proc_fd)
    finally:
        os.close(proc_fd)

"""rkt_core.sys.proc: descriptors, process identity through /proc, signals and waiting."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from rkt_core.sys import proc


def test_prctl_calls(fake_libc):
    proc.set_dumpable(False)
    proc.set_parent_death_signal(signal.SIGKILL)
    assert fake_libc.calls == [("prctl", 4, 0, 0, 0, 0), ("prctl", 1, signal.SIGKILL, 0, 0, 0)]


def test_prctl_error(fake_libc):
    import errno

    fake_libc.fail["prctl"] = errno.EINVAL
    with pytest.raises(OSError, match="cannot set the parent death signal: Invalid argument"):
        proc.set_parent_death_signal(99)


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_close_fds_except_keeps_only_what_is_asked(in_child):
    def body():
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(6)]
        keep = {fds[1], fds[4]}
        proc.close_fds_except(keep)
        assert {fd for fd in range(1024) if _is_open(fd)} == {0, 1, 2} | keep

    in_child(body)


def test_open_process_pins_a_process_and_sees_its_fds(tmp_path):
    held = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    proc_fd = proc.open_process(os.getpid())
    try:
        assert proc.holds_open(proc_fd, os.stat(tmp_path))
        assert not proc.holds_open(proc_fd, os.stat("/"))  # cwd/root are not descriptors
    finally:
        os.close(proc_fd)
        os.close(held)


def test_open_process_of_nobody():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with pytest.raises(ProcessLookupError):
        proc.open_process(pid)


def test_send_signal_and_a_reaped_process():
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    proc_fd = proc.open_process(pid)
    try:
        proc.send_signal(proc_fd, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert proc.exit_code(status) == 128 + signal.SIGKILL
        with pytest.raises(ProcessLookupError):
            proc.send_signal(proc_fd, signal.SIGTERM)  # the pid may be reused; the fd is not
        assert not proc.holds_open(proc_fd, os.stat("/dev/null"))
    finally:
        os.close(proc_fd)


@pytest.mark.parametrize("status,code", [(0, 0), (7 << 8, 7), (signal.SIGTERM, 143)])
def test_exit_code(status, code):
    assert proc.exit_code(status) == code


def _child(body):
    pid = os.fork()
    if pid == 0:
        try:
            proc.restore_default_signals()
            body()
        finally:
            os._exit(99)
    return pid


def test_wait_forwarding_passes_kill_signals_on():
    with proc.blocked_signals(proc.FORWARDED):
        pid = _child(lambda: time.sleep(30))
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill <rkt>` would
        assert proc.wait_forwarding(pid) == 128 + signal.SIGTERM
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_wait_forwarding_returns_the_exit_status():
    with proc.blocked_signals(proc.FORWARDED):
        pid = _child(lambda: os._exit(7))
        assert proc.wait_forwarding(pid) == 7


def test_restore_default_signals_in_a_child():
    read, write = os.pipe()

    def body():
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        handlers = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGPIPE)]
        os.write(write, repr((sorted(mask), handlers == [signal.SIG_DFL] * 2)).encode())
        os._exit(0)

    with proc.blocked_signals(proc.FORWARDED):
        pid = _child(body)
        os.close(write)
        assert os.read(read, 100) == b"([], True)"
        os.waitpid(pid, 0)
    os.close(read)



# A ^C that lands just before a blocking wait starts: the main thread blocks SIGINT, so the
# kernel hands it to another thread, whose C handler only flags it for the main thread, which
# sleeps on in recv() with no timeout. prompt_signals' timer must wake it to raise.
MISSED_CTRL_C = """
import os, signal, socket, sys, threading, time
from contextlib import nullcontext
from rkt_core.sys.proc import prompt_signals

quiet, _peer = socket.socketpair()  # nothing ever arrives
main = threading.get_native_id()

def interrupt():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # the timer wakes the main thread
    while open(f"/proc/self/task/{main}/stat").read().rsplit(")", 1)[1].split()[0] != "S":
        time.sleep(0.01)  # until the main thread sleeps in recv()
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
try:
    with prompt_signals() if sys.argv[1] == "prompt" else nullcontext():
        quiet.recv(1)
except KeyboardInterrupt:
    print("interrupted", signal.getitimer(signal.ITIMER_REAL))
"""


def test_prompt_signals_wakes_a_wait_a_signal_missed():
    result = subprocess.run([sys.executable, "-c", MISSED_CTRL_C, "prompt"], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout == "interrupted (0.0, 0.0)\n", result.stderr  # and the timer stopped


def test_prompt_signals_nests_and_stays_out_of_other_threads():
    with proc.prompt_signals():
        outer = signal.getitimer(signal.ITIMER_REAL)
        with proc.prompt_signals():
            pass
        assert outer[1] > 0 and signal.getitimer(signal.ITIMER_REAL)[1] == outer[1]
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    seen = []

    def in_thread():
        with proc.prompt_signals():
            seen.append(signal.getitimer(signal.ITIMER_REAL))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [(0.0, 0.0)]


def test_close_in_background_closes_our_copies_and_the_last_reference():
    read, write = os.pipe()
    proc.close_in_background([write])
    with pytest.raises(OSError):
        os.fstat(write)  # our copy is gone at once
    assert os.read(read, 1) == b""  # and the detached process dropped the last one: EOF
    os.close(read)


def test_close_in_background_forks_nothing_for_nothing(monkeypatch):
    def no_fork():
        raise AssertionError("forked with no descriptor to close")

    monkeypatch.setattr(os, "fork", no_fork)
    proc.close_in_background([])
    proc.close_in_background([-1])

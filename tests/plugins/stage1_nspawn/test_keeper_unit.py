"""The pod's keeper without root: a shutdown request kept until the pod's PID 1 takes it, and
how ``rkt stop`` recognizes a keeper. Stand-ins for systemd-nspawn are small Python
processes."""

import os
import subprocess
import sys
import time

from rkt_stage1_nspawn import keeper

# Plays systemd-nspawn: forks the pod's "PID 1", which neither catches nor blocks SIGRTMIN+3
# (so it dies of it) until a byte arrives on the descriptor argv[1]; then it blocks it until
# it is pending (as systemd reads it from a signalfd). SIGTERM is passed on as SIGRTMIN+3;
# exits 0 if its PID 1 did.
NSPAWN = """
import os, signal, sys, time
poweroff = signal.SIGRTMIN + 3
init = os.fork()
if init == 0:
    if not os.read(int(sys.argv[1]), 1):  # the test ended first
        os._exit(1)
    signal.pthread_sigmask(signal.SIG_BLOCK, {poweroff})
    while poweroff not in signal.sigpending():
        time.sleep(0.01)
    os._exit(0)
signal.signal(signal.SIGTERM, lambda *_: os.kill(init, poweroff))
_, status = os.waitpid(init, 0)
sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)
"""

# Plays a keeper: named like one, with one child (argv).
KEEPER = f"""
import subprocess, sys
open("/proc/self/comm", "w").write({keeper.COMM!r})
subprocess.run(sys.argv[1:])
"""


def _wait_until(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return value


def _blocks(pid: int, sig: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        blocked = next(line for line in f if line.startswith("SigBlk:")).split()[1]
    return bool(int(blocked, 16) >> (sig - 1) & 1)


def test_a_shutdown_is_sent_once_the_pods_init_takes_it():
    ready_r, ready_w = os.pipe()
    nspawn = subprocess.Popen([sys.executable, "-c", NSPAWN, str(ready_r)], pass_fds=(ready_r,))
    os.close(ready_r)
    pidfd = os.pidfd_open(nspawn.pid)
    init = None
    try:
        init = _wait_until(lambda: keeper.pod_init(nspawn.pid))
        shutdown = keeper.Shutdown()
        shutdown.push(nspawn.pid, pidfd)
        assert not shutdown.pending  # nothing asked yet
        shutdown.requested = True
        shutdown.push(nspawn.pid, pidfd)  # its PID 1 would drop (here: die of) SIGRTMIN+3
        assert shutdown.pending and nspawn.poll() is None
        os.write(ready_w, b"x")
        _wait_until(lambda: _blocks(init, keeper.POWEROFF))
        shutdown.push(nspawn.pid, pidfd)
        assert not shutdown.pending
        assert nspawn.wait(30) == 0  # its PID 1 took the request and ended
    finally:
        os.close(ready_w)
        os.close(pidfd)
        if nspawn.poll() is None:
            if init is not None:
                os.kill(init, 9)
            nspawn.kill()
            nspawn.wait()


def test_a_shutdown_before_the_pods_init_exists_goes_to_nspawn():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    pidfd = os.pidfd_open(sleeper.pid)
    try:
        shutdown = keeper.Shutdown()
        shutdown.requested = True
        shutdown.push(sleeper.pid, pidfd)
        assert sleeper.wait(30) == -15 and shutdown.pending  # not delivered to a PID 1
    finally:
        os.close(pidfd)


def test_stop_signals_only_a_keeper():
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    kept = subprocess.Popen([sys.executable, "-c", KEEPER, "sleep", "600"])
    child = None
    try:
        assert keeper.keeper_of(plain.pid) is None  # its parent is this test
        child = _wait_until(lambda: keeper.pod_init(kept.pid))
        _wait_until(lambda: open(f"/proc/{kept.pid}/comm").read().strip() == keeper.COMM)
        proc_fd = keeper.keeper_of(child)
        assert proc_fd is not None
        try:
            assert os.readlink(f"/proc/self/fd/{proc_fd}") == f"/proc/{kept.pid}"
        finally:
            os.close(proc_fd)
    finally:
        if child is not None:
            os.kill(child, 9)
        for process in (plain, kept):
            process.kill()
            process.wait()

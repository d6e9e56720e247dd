"""``rkt run``'s side of a running VM: the control channel, the apps' output, signals, and
time limits.

The guest agent says HELLO once it booted and gets the plan; it reports each app's exit status
(recorded in the pod at once) and errors (shown as ``rkt: ...``). The apps' output is copied
to ``rkt run``'s stdout and stderr and to ``kvm/logs/<app>`` in the pod. SIGTERM, SIGINT and
SIGHUP ask the agent to stop the apps. A VM that does not boot within the boot timeout, or does
not power off within the shutdown timeout once its apps are done, is killed and reported.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
import time

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.stage1 import chroot

from . import wire
from .logs import Writer

BOOT_TIMEOUT_ENV = "RKT_STAGE1_KVM_BOOT_TIMEOUT"
BOOT_TIMEOUT = 120.0  # seconds from qemu's start to the agent's HELLO (emulation is slow)
SHUTDOWN_TIMEOUT = 30.0  # seconds from the last app's exit to qemu's
STOP_TIMEOUT = 30.0  # seconds from a stop request to qemu's exit
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
KILLED = 128 + signal.SIGKILL


def boot_timeout() -> float:
    """Seconds a VM may take to boot (``RKT_STAGE1_KVM_BOOT_TIMEOUT``, default 120)."""
    value = os.environ.get(BOOT_TIMEOUT_ENV, "")
    try:
        return float(value) if value else BOOT_TIMEOUT
    except ValueError:
        raise RktError(f'{BOOT_TIMEOUT_ENV}: "{value}" is not a number of seconds') from None


class Supervisor:
    """Watches one VM (qemu ``pid``) until it exits."""

    def __init__(self, pod, pid: int, control, outputs: list, directory: str):
        self.pod = pod
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.control = control
        self.reader = wire.Reader()
        self.outputs = {sock.fileno(): (app, stream, sock) for app, stream, sock in outputs}
        self.directory = directory
        log_dir = os.path.join(directory, "logs")
        os.makedirs(log_dir, mode=0o700, exist_ok=True)
        self.logs = {app: Writer(os.path.join(log_dir, app)) for app, _, _ in outputs}
        self.codes: dict[str, int] = {}
        self.first_failure = ""
        self.errors: list[str] = []
        self.deadline = time.monotonic() + boot_timeout()
        self.deadline_reason = "did not boot"
        self.greeted = False
        self.stop_requested = False
        self.killed = ""
        self.times = {"exec": time.monotonic()}  # host clock: when each phase ended
        self.guest: dict = {}  # guest uptimes: init started, agent started, apps started

    def run(self, plan: dict, apps: list[str]) -> int:
        """Supervise until qemu exits; return the pod's exit status."""
        self.plan, self.apps = plan, apps
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        old = {sig: signal.signal(sig, lambda *_: None) for sig in FORWARDED}
        selector = selectors.DefaultSelector()
        try:
            selector.register(self.pidfd, selectors.EVENT_READ, "qemu")
            selector.register(self.control, selectors.EVENT_READ, "control")
            selector.register(wake_r, selectors.EVENT_READ, "signal")
            for fd in self.outputs:
                selector.register(fd, selectors.EVENT_READ, "output")
            status = self._loop(selector, wake_r)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            selector.close()
            os.close(wake_r)
            os.close(wake_w)
            os.close(self.pidfd)
            self.control.close()
            for log in self.logs.values():
                log.close()
        return self._result(status)

    def _loop(self, selector, wake_r: int) -> int:
        while True:
            left = self.deadline - time.monotonic()
            events = selector.select(None if left == float("inf") else max(0.0, left))
            if not events and time.monotonic() >= self.deadline:
                self._kill(self.deadline_reason)
                continue
            for key, _ in events:
                if key.data == "qemu":
                    _, status = os.waitpid(self.pid, 0)
                    self.times["exit"] = time.monotonic()
                    self._drain()
                    self._write_timings()
                    return status
                if key.data == "signal":
                    if any(b != signal.SIGCHLD for b in os.read(wake_r, 64)):
                        self._stop()
                elif key.data == "control":
                    chunk = self.control.recv(65536)
                    if chunk:
                        self._control(chunk)
                    else:
                        selector.unregister(self.control)
                else:
                    self._output(key.fd, selector)

    def _kill(self, reason: str) -> None:
        if not self.killed:
            self.killed = reason
            self.deadline = float("inf")
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _stop(self) -> None:
        if self.stop_requested or self.killed:
            return
        self.stop_requested = True
        if self.greeted:
            self._send(wire.frame(wire.STOP))
            self.deadline = min(self.deadline, time.monotonic() + STOP_TIMEOUT)
            self.deadline_reason = "did not stop"
        else:
            self._kill("was stopped while booting")

    def _send(self, buffer: bytes) -> None:
        try:
            self.control.sendall(buffer)
        except OSError:
            pass  # qemu is gone; its exit is what we see next

    def _control(self, chunk: bytes) -> None:
        for kind, payload in self.reader.feed(chunk):
            if kind == wire.HELLO and not self.greeted:
                self.greeted = True
                self.times["hello"] = time.monotonic()
                self.guest.update(wire.load(payload) if payload else {})
                self.deadline = float("inf")
                self._send(wire.data(wire.PLAN, self.plan))
                if self.stop_requested:
                    self._send(wire.frame(wire.STOP))
            elif kind == wire.STARTED:
                self.times["started"] = time.monotonic()
                self.guest["started"] = wire.load(payload)
            elif kind == wire.EXITED:
                app, code = wire.load(payload)
                if app in self.apps and app not in self.codes:
                    self.codes[app] = code
                    chroot.write_exit_status(self.pod, app, code)
                    if code and not self.first_failure:
                        self.first_failure = app
                    if len(self.codes) == len(self.apps):
                        self.times["done"] = time.monotonic()
                        self.deadline = min(self.deadline,
                                            time.monotonic() + SHUTDOWN_TIMEOUT)
                        self.deadline_reason = "did not power off"
            elif kind == wire.ERROR:
                message = payload.decode("utf-8", "replace")
                self.errors.append(message)
                print(f"rkt: {message}", file=sys.stderr, flush=True)

    def _output(self, fd: int, selector) -> None:
        app, stream, sock = self.outputs[fd]
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            selector.unregister(fd)
            return
        self.logs[app].write(stream, chunk)
        try:
            wire.write_all(stream, chunk)
        except OSError:
            pass  # nobody reads rkt's output any more; the log keeps it

    def _drain(self) -> None:
        """Copy what the apps wrote before qemu exited."""
        for fd, (_, _, sock) in self.outputs.items():
            sock.setblocking(False)
            while True:
                try:
                    chunk = sock.recv(65536)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                app, stream, _ = self.outputs[fd]
                self.logs[app].write(stream, chunk)
                try:
                    wire.write_all(stream, chunk)
                except OSError:
                    break
        self.control.setblocking(False)
        while True:
            try:
                chunk = self.control.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            self._control(chunk)

    def _write_timings(self) -> None:
        """``kvm/timings.json``: where the VM's time went, in seconds (for bench/kvm.py).

        ``firmware``: from qemu's exec to the guest kernel's start (qemu's set-up, loading the
        kernel); ``kernel``: to the init script; ``init``: drivers, the 9p mount, Python up to
        the agent; ``handshake``: the agent's HELLO reaching rkt and the plan coming back;
        ``setup``: network, mounts, cgroups and starting the apps; ``apps``: until the last
        app exited; ``shutdown``: until qemu exited."""
        t, g = self.times, self.guest
        if not {"hello", "started", "done"} <= set(t) or not {"init", "agent", "started"} <= set(g):
            return
        booted = t["hello"] - t["exec"]  # host time until HELLO arrived
        phases = {"firmware": max(0.0, booted - g["agent"]), "kernel": g["init"],
                  "init": g["agent"] - g["init"]}
        phases["handshake"] = max(0.0, (t["started"] - t["hello"]) - (g["started"] - g["agent"]))
        phases["setup"] = g["started"] - g["agent"]
        phases["apps"] = t["done"] - t["started"]
        phases["shutdown"] = t["exit"] - t["done"]
        phases["total"] = t["exit"] - t["exec"]
        with open(os.path.join(self.directory, "timings.json"), "w") as f:
            json.dump({k: round(v, 3) for k, v in phases.items()}, f)

    def _result(self, status: int) -> int:
        qemu_code = os.waitstatus_to_exitcode(status)
        missing = [a for a in self.apps if a not in self.codes]
        for app in missing:
            code = KILLED if self.killed or qemu_code < 0 or self.stop_requested else 255
            self.codes[app] = code
            chroot.write_exit_status(self.pod, app, code)
        if self.killed and not self.greeted:
            raise RktError(f"the VM {self.killed} within {boot_timeout():g} s and was killed "
                           f"(see {os.path.join(self.pod.path, 'kvm', 'console.log')})")
        if self.killed:
            print(f"rkt: the VM {self.killed} and was killed", file=sys.stderr, flush=True)
        if missing and not self.killed and not self.stop_requested and qemu_code >= 0:
            raise RktError(f"the VM exited (qemu status {qemu_code}) before its apps were done"
                           + (f": {self.errors[-1]}" if self.errors else ""))
        if self.first_failure:
            return self.codes[self.first_failure]
        failed = [self.codes[a] for a in self.apps if self.codes[a]]
        return failed[0] if failed else 0

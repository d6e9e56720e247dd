"""A test-only stage1 flavor with contained networking: it runs each app's command *on the
host's filesystem* (no root of its own), joined to the pod's network namespace, and records
the ``RunOptions`` it got in ``<pod>/nettest-options.json``. Enough to test stage0's
networking end to end through the real ``rkt`` command while no real flavor is installed.

``nettest-exec`` does the same for a one-app pod by replacing ``rkt run`` itself with the app
(``exec``), as a flavor that execs its stage1 does: nothing of rkt is left to tear down."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess

from rkt_core.plugin_api import hookimpl
from rkt_core.errors import RktError
from rkt_core.pod.runtime import app_runtimes
from rkt_core.sys import ns
from rkt_core.sys.fs import write_atomic
from rkt_core.types import Stage1Features, Stage1Flavor

RKT_PLUGIN_API = 1
NAME = "nettest"


class NetTestStage1:
    # own_hostname: stands in for a flavor that sets the pod's hostname (it sets none itself)
    features = Stage1Features(contained_network=True, multi_app=True, own_hostname=True)

    def run(self, pod, options) -> int:
        write_atomic(pod.file("nettest-options.json"),
                     json.dumps(dataclasses.asdict(options)).encode())
        netns = os.open(options.netns, os.O_RDONLY | os.O_CLOEXEC) if options.netns else None

        def join():
            if netns is not None:
                ns.setns(netns, "net")

        procs = []
        for app in app_runtimes(pod.data_dir, pod.path, pod.manifest()):
            procs.append((app.name, subprocess.Popen(
                app.exec, pass_fds=(options.lock_fd,), preexec_fn=join, start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **app.environment})))
        write_atomic(pod.file("pid"), str(procs[0][1].pid).encode())
        write_atomic(pod.file("nettest-pids"), " ".join(str(p.pid) for _, p in procs).encode())
        status = pod.file("stage1", "rootfs", "rkt", "status")
        os.makedirs(status, exist_ok=True)
        codes = []
        for name, proc in procs:
            code = proc.wait()
            code = code if code >= 0 else 128 - code
            write_atomic(os.path.join(status, name), str(code).encode())
            codes.append(code)
        if netns is not None:
            os.close(netns)
        return next((c for c in codes if c), 0)

    def enter(self, pod, app, argv):
        raise RktError("the nettest flavor cannot enter pods")

    def stop(self, pod, force):
        """Signal every app's process group (each app runs in a session of its own)."""
        for pid in (pod.read_text("nettest-pids") or "").split():
            try:
                os.killpg(int(pid), signal.SIGKILL if force else signal.SIGTERM)
            except ProcessLookupError:
                pass

    def gc(self, pod):
        pass


class NetTestExecStage1(NetTestStage1):
    features = Stage1Features(contained_network=True, own_hostname=True)

    def run(self, pod, options) -> int:
        (app,) = app_runtimes(pod.data_dir, pod.path, pod.manifest())
        write_atomic(pod.file("pid"), str(os.getpid()).encode())
        if options.netns:
            netns = os.open(options.netns, os.O_RDONLY | os.O_CLOEXEC)
            ns.setns(netns, "net")
            os.close(netns)
        os.execve(app.exec[0], app.exec,  # the lock's descriptor stays open across exec
                  {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **app.environment})

    def stop(self, pod, force):
        if pod.pid:
            os.kill(pod.pid, signal.SIGKILL if force else signal.SIGTERM)


@hookimpl
def rkt_stage1_flavors():
    return [Stage1Flavor(NAME, NetTestStage1, 1, "test only: host filesystem, pod network"),
            Stage1Flavor(NAME + "-exec", NetTestExecStage1, 1,
                         "test only: like nettest, rkt run replaced by the app")]

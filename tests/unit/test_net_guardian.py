"""The network guardian without root: real processes and flocks, a stand-in network backend
that records its teardown in the pod directory."""

import os
import signal
import subprocess
import time

import pytest

from rkt_core.plugin_api import hookimpl
from rkt_core.appc import PodManifest
from rkt_core.pod.pod import Pod
from rkt_core import network
from rkt_core.network.guardian import Guardian
from rkt_core.testing.plugins import load_plugin
from rkt_core.testing.wait import wait_for
from rkt_core.types import NetworkBackend


class Recording:
    """Tears down by appending a line to ``<pod>/teardowns`` (or fails, if asked to)."""

    def setup(self, pod, requests, context):
        raise AssertionError("not used")

    def teardown(self, pod, context):
        if os.path.exists(pod.file("fail-teardown")):
            with open(pod.file("failed-teardowns"), "a") as f:
                f.write(f"{os.getpid()}\n")
            raise RuntimeError("plugin broke")
        with open(pod.file("teardowns"), "a") as f:
            f.write(f"{os.getpid()}\n")


class Plugin:
    RKT_PLUGIN_API = 1

    @hookimpl
    def rkt_network_backends(self):
        return [NetworkBackend("recording", lambda name: name == "rec", Recording)]


class Ctx:
    def __init__(self):
        self.plugins, _ = load_plugin(Plugin(), "recording")
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def log(self, message):
        pass


@pytest.fixture
def pod(tmp_path):
    """A running pod (locked, in run/) whose networks the recording backend set up."""
    pod = Pod.create(str(tmp_path))
    with open(pod.file("pod"), "w") as f:
        f.write(PodManifest(apps=[]).to_json())
    pod.to_run()
    network.write_state(pod.file(network.BACKEND_FILE), b"recording")
    yield pod
    pod.close()


def _pod_file(pod, name: str) -> str:
    """A file of the pod, wherever its directory is now."""
    for state_dir in os.listdir(os.path.join(pod.data_dir, "pods")):
        path = os.path.join(pod.data_dir, "pods", state_dir, pod.uuid)
        if os.path.isdir(path):
            return os.path.join(path, name)
    raise AssertionError("the pod is gone")


def _teardowns(pod) -> list[str]:
    path = _pod_file(pod, "teardowns")
    return open(path).read().split() if os.path.exists(path) else []


def test_finish_tears_down_before_returning(pod):
    ctx = Ctx()
    guardian = Guardian(ctx, pod)
    guardian.finish(ctx, pod)
    teardowns = _teardowns(pod)
    assert len(teardowns) == 1 and int(teardowns[0]) != os.getpid()  # done by the guardian
    assert not network.needs_teardown(pod)
    assert pod.state == "exited" and ctx.warnings == []


def test_teardown_failures_are_reported_by_rkt_run(pod):
    open(pod.file("fail-teardown"), "w").close()
    ctx = Ctx()
    Guardian(ctx, pod).finish(ctx, pod)
    assert len(ctx.warnings) == 1 and "teardown failed: plugin broke" in ctx.warnings[0]
    assert network.needs_teardown(pod)  # the records stay for gc


def test_a_process_still_holding_the_pod_delays_the_teardown(pod):
    ctx = Ctx()
    guardian = Guardian(ctx, pod)
    # a process of the pod that outlives the flavor (it holds the lock's descriptor)
    holder = subprocess.Popen(["sleep", "60"], pass_fds=(pod.lock.fd,))
    try:
        guardian.finish(ctx, pod)
        assert _teardowns(pod) == [] and pod.state == "running"
    finally:
        holder.kill()
        holder.wait()
    wait_for(lambda: _teardowns(pod), what="the teardown")
    wait_for(lambda: pod.state == "exited", what="the pod to exit")
    assert not network.needs_teardown(pod)


def test_an_early_release_tears_down_while_the_pod_still_runs(pod):
    """A flavor says every app is gone (release_networks) while the pod's init still holds the
    lock: the networks go at once; finish then finds nothing left and the pod exits."""
    from rkt_core.plugin_api.stage1 import release_networks
    from rkt_core.pod.view import PodView

    ctx = Ctx()
    guardian = Guardian(ctx, pod)
    init = subprocess.Popen(["sleep", "60"], pass_fds=(pod.lock.fd,))  # shutting down
    try:
        release_networks(PodView(pod))
        wait_for(lambda: _teardowns(pod), what="the early teardown")
        assert not network.needs_teardown(pod)
        assert pod.state == "running"  # the lock is still held: gc and rm stay away
        release_networks(PodView(pod))  # asked once only
    finally:
        init.kill()
        init.wait()
    guardian.finish(ctx, pod)
    assert len(_teardowns(pod)) == 1 and ctx.warnings == []
    assert pod.state == "exited"


def test_a_failed_early_release_is_retried_and_reported_once_the_pod_is_gone(pod):
    open(pod.file("fail-teardown"), "w").close()
    ctx = Ctx()
    guardian = Guardian(ctx, pod)
    guardian.release()
    guardian.release()
    wait_for(lambda: os.path.exists(pod.file("failed-teardowns")), what="the early teardown")
    os.unlink(pod.file("fail-teardown"))  # the plugin works again by the end of the pod
    guardian.finish(ctx, pod)
    assert len(_teardowns(pod)) == 1 and ctx.warnings == []
    assert len(open(_pod_file(pod, "failed-teardowns")).read().split()) == 1  # asked once
    assert not network.needs_teardown(pod)


def test_a_release_asked_of_a_dead_guardian_is_left_to_finish(pod):
    ctx = Ctx()
    guardian = Guardian(ctx, pod)
    (holder,) = _holders(pod.path)  # the guardian
    os.kill(holder, signal.SIGKILL)
    wait_for(lambda: not _holders(pod.path), what="the guardian to die")
    guardian.release()  # its socket is closed: no error
    guardian.finish(ctx, pod)  # rkt run tears down itself
    assert len(_teardowns(pod)) == 1 and int(_teardowns(pod)[0]) == os.getpid()


def test_releasing_a_pod_without_a_guardian_does_nothing(pod):
    from rkt_core.network.guardian import release_early

    release_early(pod.uuid)  # host networking: no guardian, nothing to release
    assert _teardowns(pod) == [] and network.needs_teardown(pod)


def test_rkt_run_killed_or_exec_ed(pod, tmp_path):
    """The process that started the guardian goes away without a word, while a pod process
    still holds the lock: the teardown waits for that process, not for rkt run."""
    ctx = Ctx()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # plays rkt run: starts the guardian, hands the lock on to an app, dies
        try:
            Guardian(ctx, pod)
            app = subprocess.Popen(["sleep", "60"], pass_fds=(pod.lock.fd,),
                                   start_new_session=True)
            os.write(write, str(app.pid).encode())
        finally:
            os._exit(0)
    os.close(write)
    app = int(os.read(read, 32))
    os.close(read)
    os.waitpid(pid, 0)
    pod.close()  # this process's copy of the lock (inherited by the fork) goes too
    try:
        time.sleep(0.2)
        assert _teardowns(pod) == []
    finally:
        os.kill(app, signal.SIGKILL)
    wait_for(lambda: _teardowns(pod), what="the teardown")
    wait_for(lambda: not os.path.exists(_pod_file(pod, network.BACKEND_FILE)),
             what="the records to go")


def test_the_guardian_keeps_no_descriptor_but_its_own(pod, tmp_path):
    ctx = Ctx()
    stray = os.open(str(tmp_path), os.O_RDONLY)  # inheritable: would leak into a plain fork
    os.set_inheritable(stray, True)
    try:
        guardian = Guardian(ctx, pod)
        (holder,) = _holders(pod.path)  # the guardian: nothing else holds the pod

        def targets():
            return sorted(_links(str(holder)))
        # (it starts in the background)
        wait_for(lambda: os.readlink(f"/proc/{holder}/cwd") == "/", what="the holder")
        wait_for(lambda: len(targets()) == 5, what="five targets")
        targets = targets()
        assert targets[:4] == ["/dev/null"] * 3 + [pod.path]
        assert len(targets) == 5 and targets[4].startswith("socket:")
        assert os.readlink(f"/proc/{holder}/cwd") == "/"
        assert open(f"/proc/{holder}/comm").read() == "rkt-net-guard\n"
        assert os.getsid(holder) != os.getsid(0)  # a session of its own: ^C does not reach it
        guardian.finish(ctx, pod)
        wait_for(lambda: not _holders(pod.path), what="no holders")
    finally:
        os.close(stray)


def _holders(path: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        if any(link == path or link.startswith(path + "/") for link in _links(pid)):
            found.append(int(pid))
    return found


def _links(pid: str) -> list[str]:
    """What the process's descriptors point to (it may be closing some meanwhile)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    links = []
    for fd in fds:
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return links

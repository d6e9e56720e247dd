"""The chroot runner the fly flavor (and flavors like it) is built on, without root: how it
finds (and never mistakes) the pod's process, the set-up error channel of the processes it
forks, and how a process is resolved inside an app's root."""

import os
import signal
import time

import pytest

from rkt_core.errors import RktError
from rkt_core.pod import chroot, stage2
from rkt_core.pod.pod import Pod
from rkt_core.pod.runtime import AppRuntime
from rkt_core.pod.view import PodView
from rkt_core.sys import proc
from rkt_core.sys.spawn import spawn
from rkt_core.types import RunOptions


def test_run_app_needs_the_pods_lock_fd():
    with pytest.raises(RktError, match="lock fd is missing"):
        chroot.run_app(None, _app(), RunOptions(lock_fd=-1))


# --- finding the pod's process ----------------------------------------------------------------


@pytest.fixture
def pod(tmp_path):
    with Pod.create(str(tmp_path / "data")) as p:
        yield p


def _sleeper(holding=None):
    """A child sleeping 30 s with no descriptor but stdio, and ``holding`` if given (a copy of
    the pod lock); returns once the child closed the others."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            proc.close_fds_except([write] + ([holding] if holding is not None else []))
            os.close(write)
            time.sleep(30)
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b""  # closed: the child is ready
    os.close(read)
    return pid


def _alive(pid):
    return os.waitpid(pid, os.WNOHANG) == (0, 0)


def test_stop_never_signals_a_process_that_is_not_the_pods(pod):
    stranger = _sleeper()
    try:
        with open(pod.file("pid"), "w") as f:
            f.write(str(stranger))
        chroot.signal_app(PodView(pod), force=True)
        time.sleep(0.1)
        assert _alive(stranger)
    finally:
        os.kill(stranger, signal.SIGKILL)
        os.waitpid(stranger, 0)


def test_stop_signals_the_process_holding_the_pod_lock(pod):
    app = _sleeper(holding=pod.lock.fd)
    with open(pod.file("pid"), "w") as f:
        f.write(str(app))
    chroot.signal_app(PodView(pod), force=False)
    _, status = os.waitpid(app, 0)
    assert os.WTERMSIG(status) == signal.SIGTERM


def test_stop_of_a_pod_without_pid_that_is_not_running_returns(pod):
    pod.unlock()
    chroot.signal_app(PodView(pod), force=True)  # nothing to wait for


# --- the set-up channel -----------------------------------------------------------------------


@pytest.mark.parametrize("fds", [False, True])  # a pipe; a socket pair
def test_spawn_reports_set_up_errors_and_reaps_the_child(fds):
    def child(channel):
        raise RktError("no luck")

    # Checked in a fresh process: pytest's own process may have other children (test servers).
    pid = os.fork()
    if pid == 0:
        try:
            spawn(child, fds=fds)
        except RktError as e:
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0 if str(e) == "no luck" else 2)
            os._exit(3)  # a child was left unreaped
        os._exit(4)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_spawn_returns_after_exec_with_the_descriptors_sent():
    read, write = os.pipe()

    def child(channel):
        channel.send_fds([write])
        os.execv("/bin/true", ["true"])

    pid, fds = spawn(child, fds=True)
    os.close(write)
    assert len(fds) == 1
    os.write(fds[0], b"x")  # the pipe's write end, passed back
    assert os.read(read, 1) == b"x"
    assert os.waitpid(pid, 0)[1] == 0
    for fd in (read, *fds):
        os.close(fd)


def test_spawn_reports_a_message_longer_than_a_pipe_write_whole():
    message = "x" * 200_000  # several atomic pipe writes, several reads

    def child(channel):
        raise RktError(message)

    with pytest.raises(RktError) as raised:
        spawn(child)
    assert raised.value.message == message


def test_descriptors_need_a_channel_made_for_them():
    read, write = os.pipe()
    try:
        with pytest.raises(RktError, match="made without fds=True"):
            spawn(lambda channel: channel.send_fds([write]))
    finally:
        os.close(read)
        os.close(write)


@pytest.mark.parametrize("fds", [False, True])
def test_a_child_that_closes_its_channel_counts_as_started(fds):
    read, write = os.pipe()

    def child(channel):
        channel.close()
        os.read(read, 1)  # still running after spawn returned: until told
        os._exit(5)

    pid, received = spawn(child, fds=fds)
    assert received == []
    os.write(write, b"x")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 5
    os.close(read)
    os.close(write)


def test_a_closed_channel_reports_nothing_even_where_its_number_is_reused():
    read, write = os.pipe()

    def child(channel):
        number = channel.fileno()
        channel.close()
        os.dup2(write, number)  # something else gets the channel's number
        os.close(write)
        raise RktError("after the start")  # reported through the channel: must not be

    pid, _ = spawn(child)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 254
    os.close(write)
    assert os.read(read, 100) == b""  # the pipe got no report
    os.close(read)


def test_spawn_describes_os_errors():
    with pytest.raises(RktError, match="No such file or directory: /nonexistent"):
        spawn(lambda channel: os.open("/nonexistent", os.O_RDONLY))


# --- resolving a process inside an app's root -------------------------------------------------


@pytest.fixture
def app_root(tmp_path):
    root = tmp_path / "rootfs"
    for d in ("bin", "etc", "home/user", "proc/1"):
        (root / d).mkdir(parents=True)
    (root / "bin/busybox").write_text("")
    os.chmod(root / "bin/busybox", 0o755)
    (root / "bin/sh").symlink_to("busybox")
    (root / "bin/data").write_text("")
    (root / "etc/passwd").write_text("user:x:1000:1000::/home/user:/bin/sh\n")
    (root / "etc/group").write_text("users:x:100:\n")
    (root / "home/up").symlink_to("/proc/1")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def _app(**fields):
    defaults = dict(name="app", image_name="example.com/app", image_id="sha512-0", tree_id="",
                    rootfs="", overlay=False, exec=["/bin/sh"], user="user", group="users",
                    supplementary_gids=[7], working_directory="/", environment={"A": "b"})
    return AppRuntime(**{**defaults, **fields})


def test_process_resolves_user_environment_executable_and_directory(app_root):
    p = stage2.process(app_root, _app(), ["sh", "-c", "x"], "/home/user", interactive=False)
    assert p.path == "/bin/busybox" and p.argv == ["sh", "-c", "x"] and p.cwd == "/home/user"
    assert (p.account.uid, p.account.gid, p.account.groups) == (1000, 100, (7,))
    assert p.env["A"] == "b" and p.env["AC_APP_NAME"] == "app" and p.env["HOME"] == "/home/user"


@pytest.mark.parametrize("argv0,message", [("/bin/data", "not found"),
                                           ("nope", "not found in PATH"), ("/etc", "not found")])
def test_process_needs_an_executable_file(app_root, argv0, message):
    with pytest.raises(RktError, match=message):
        stage2.process(app_root, _app(), [argv0], "/", interactive=False)


@pytest.mark.parametrize("cwd", ["/proc", "/proc/1", "/home/up"])
def test_working_directory_under_proc_is_refused(app_root, cwd):
    with pytest.raises(RktError, match="is under /proc"):
        stage2.process(app_root, _app(), ["/bin/sh"], cwd, interactive=False)


def test_unknown_user_is_an_error(app_root):
    with pytest.raises(RktError, match='user "nobody"'):
        stage2.process(app_root, _app(user="nobody"), ["/bin/sh"], "/", interactive=False)

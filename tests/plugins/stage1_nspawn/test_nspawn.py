"""What is the nspawn flavor's own, through the real ``rkt`` command: isolators seen from inside
the app, multi-app exit statuses, ``enter`` confined like the app, logs, a real terminal,
private users, hostname and hosts, event handlers, and nothing left behind."""

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rkt_core.pod.limits import DEFAULT_CAPABILITIES
from rkt_core.pod.limits import AppLimits as Limits
from rkt_core.sys import mount
from rkt_core.testing.aci import app_image
from rkt_core.testing.runner import Rkt
from rkt_core.testing.wait import WAIT_TIMEOUT, wait_for
from rkt_stage1_nspawn import cgroups

pytestmark = pytest.mark.root

V1 = not cgroups.unified(cgroups.hierarchies())


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return str(app_image(tmp_path_factory.mktemp("images") / "busybox.aci"))


def _pod_cgroups(uuid: str) -> list[str]:
    found = []
    for top, dirs, _ in os.walk(cgroups.ROOT):
        found += [os.path.join(top, d) for d in dirs if d == f"rkt-{uuid}"]
        dirs[:] = [d for d in dirs if not d.startswith("rkt-")]
    return found


@pytest.fixture
def rkt(tmp_path):
    rkt = Rkt(tmp_path, flavor="nspawn")
    yield rkt
    rkt.cleanup()
    for uuid in rkt.pods():  # every pod's cgroups are gone once rkt run returned
        assert _pod_cgroups(uuid) == []
    assert mount.mounts_under(str(tmp_path)) == []


def _run_saving_uuid(rkt, tmp_path, *args, **kwargs):
    uuid_file = tmp_path / "uuid"
    result = rkt.run(f"--uuid-file-save={uuid_file}", *args, **kwargs)
    return result, uuid_file.read_text().strip()


def _status_mask(text: str, field: str) -> int:
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in {text!r}")


# --- isolators ---------------------------------------------------------------------------------


@pytest.mark.skipif(not V1, reason="the host has a unified cgroup hierarchy")
def test_memory_and_cpu_limits_seen_by_the_app_v1(rkt, image):
    result = rkt.run(image, "--memory=64M", "--cpu=500m", "--exec", "/bin/sh", "--", "-c",
                     "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                     "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; "
                     "exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == ["64000000", "50000", "100000"]


def test_image_isolators_and_their_override(rkt, tmp_path):
    limited = app_image(tmp_path / "limited.aci", name="example.com/limited", isolators=[
        {"name": "resource/memory", "value": {"request": "32Mi", "limit": "32Mi"}},
        {"name": "resource/cpu", "value": {"request": "250m", "limit": "250m"}}])
    show = ["--exec", "/bin/sh", "--", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                                             "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"]
    result = rkt.run(str(limited), *show)
    assert result.stdout.split() == [str(32 << 20), "25000"], result.stderr
    result = rkt.run(str(limited), "--memory=16Mi", *show)
    assert result.stdout.split() == [str(16 << 20), "25000"], result.stderr


def test_default_capabilities(rkt, image):
    result = rkt.run(image, "--exec", "/bin/cat", "--", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    assert _status_mask(result.stdout, "CapBnd") == Limits().capability_mask
    assert _status_mask(result.stdout, "CapEff") == Limits().capability_mask


def test_capabilities_retain_and_remove(rkt, image, tmp_path):
    result = rkt.run(image, "--caps-retain=CAP_NET_ADMIN,CAP_KILL", "--exec", "/bin/cat", "--",
                     "/proc/self/status")
    assert _status_mask(result.stdout, "CapBnd") == (1 << 12) | (1 << 5), result.stderr
    result = rkt.run(image, "--caps-remove=CAP_CHOWN", "--exec", "/bin/sh", "--", "-c",
                     "grep CapBnd /proc/self/status; chown 1000 /etc/marker")
    assert _status_mask(result.stdout, "CapBnd") == \
        Limits(tuple(c for c in DEFAULT_CAPABILITIES if c != "CAP_CHOWN")).capability_mask
    assert result.returncode != 0  # chown without CAP_CHOWN
    retained = app_image(tmp_path / "caps.aci", name="example.com/caps", isolators=[
        {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_SYS_ADMIN"]}}])
    result = rkt.run(str(retained), "--exec", "/bin/cat", "--", "/proc/self/status")
    assert _status_mask(result.stdout, "CapBnd") == 1 << 21, result.stderr


def test_unknown_capability_is_refused(rkt, image):
    result = rkt.run(image, "--caps-retain=CAP_NOPE", "--exec", "/bin/true")
    assert result.returncode == 254 and 'unknown capability "CAP_NOPE"' in result.stderr


# --- several apps ------------------------------------------------------------------------------


def test_two_apps_the_failing_ones_status_wins(rkt, image, tmp_path):
    result, uuid = _run_saving_uuid(
        rkt, tmp_path, image, "--name=ok", "--exec", "/bin/sh", "--", "-c", "sleep 0.3; echo ok",
        "---", image, "--name=bad", "--exec", "/bin/sh", "--", "-c", "echo bad; exit 5")
    assert result.returncode == 5, result.stderr
    assert sorted(result.stdout.split()) == ["bad", "ok"]
    status = rkt.status(uuid)
    assert (status["app-ok"], status["app-bad"]) == ("0", "5")


def test_first_failure_in_time_decides(rkt, image, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    pod = rkt.start(
        f"--volume=data,kind=host,source={host}", image, "--name=late",
        "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--", "-c",
        "while [ ! -e /data/go ]; do sleep 0.05; done; exit 7",
        "---", image, "--name=early", "--exec", "/bin/sh", "--", "-c", "exit 6")
    uuid = pod.uuid
    # "late" fails only once the pod has recorded "early" as its first failure
    first = next((rkt.data_dir / "pods").glob(f"*/{uuid}")) / "stage1/rootfs/rkt/first-failure"
    wait_for(first.is_symlink, what="the early app's failure to be recorded")
    (host / "go").write_text("")
    assert pod.wait() == 6
    status = rkt.status(uuid)
    assert (status["app-late"], status["app-early"]) == ("7", "6")


def test_missing_executable_is_an_error_of_rkt(rkt, image):
    result = rkt.run(image, "--exec", "/no/such")
    assert result.returncode == 254
    assert 'executable "/no/such" not found' in result.stderr


# --- enter -------------------------------------------------------------------------------------


def test_enter_is_confined_like_the_app(rkt, image, tmp_path):
    pod = rkt.start("--set-env=FOO=bar", image, "--caps-retain=CAP_NET_BIND_SERVICE,CAP_KILL",
                    "--memory=32Mi", "--exec", "/bin/sleep", "--", "1000")
    uuid = pod.uuid
    app_pid = _app_pid(uuid, comm="busybox")  # systemd calls it "(busybox)" until exec
    with open(f"/proc/{app_pid}/status") as f:
        app_status = f.read()
    with open(f"/proc/{app_pid}/cgroup") as f:
        app_cgroup = f.read()
    result = rkt("enter", uuid, "/bin/sh", "-c",
                 "cat /proc/self/status; echo ---; cat /proc/self/cgroup; echo ---; echo $FOO; "
                 "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert result.returncode == 0, result.stderr
    status, cgroup, rest = result.stdout.split("---\n")
    for field in ("CapBnd", "CapEff", "CapPrm"):
        assert _status_mask(status, field) == _status_mask(app_status, field) == \
            (1 << 10) | (1 << 5), field
    assert _status_mask(status, "CapInh") == 0 and _status_mask(status, "CapAmb") == 0
    assert "NoNewPrivs:\t1" in status
    assert "Uid:\t0\t0\t0\t0" in status
    # the app's cgroup in every hierarchy (inside, paths are relative to the pod's cgroup)
    on_host = dict(line.rsplit(":", 1) for line in app_cgroup.splitlines())
    inside = dict(line.rsplit(":", 1) for line in cgroup.splitlines())
    assert inside.keys() == on_host.keys()
    for hierarchy, path in inside.items():
        pod_base = on_host[hierarchy][:on_host[hierarchy].index(f"rkt-{uuid}") + 40]
        pod_base += "/payload" if on_host[hierarchy][len(pod_base):].startswith("/payload") else ""
        assert on_host[hierarchy] == pod_base + (path if path != "/" else ""), hierarchy
    assert "memory:/system.slice/busybox.service" in cgroup
    assert rest.split() == ["bar", str(32 << 20)]
    rkt("stop", uuid)
    pod.wait()


def test_enter_as_the_apps_user(rkt, image):
    pod = rkt.start(image, "--user=user", "--group=users", "--exec", "/bin/sleep", "--", "1000")
    uuid = pod.uuid
    result = rkt("enter", uuid, "/bin/sh", "-c", "id -u; id -g; grep CapEff /proc/self/status")
    assert result.stdout.split() == ["1000", "1000", "CapEff:", "0000000000000000"], result.stderr
    rkt("stop", uuid)
    pod.wait()


def _status_fields(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":", 1) for line in f.read().splitlines())


def _pid_of(argv: list[str]) -> int | None:
    wanted = "".join(a + "\0" for a in argv).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == wanted:
                return int(pid)
        except OSError:
            continue
    return None


def _filters(seccomp, pid: int) -> list[bytes]:
    proc_fd = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
    try:
        return seccomp.read_filters(pid, proc_fd)
    finally:
        os.close(proc_fd)


@pytest.mark.parametrize("identity", [["--user=user", "--group=0", "--supplementary-gids=2000"],
                                      ["--user=user", "--group=users"], []])
def test_enter_gets_the_apps_seccomp_filters_and_groups(rkt, image, identity):
    from rkt_stage1_nspawn import seccomp

    pod = rkt.start(image, *identity, "--exec", "/bin/sleep", "--", "1000")
    app_pid = _app_pid(pod.uuid, comm="busybox")
    command = ["/bin/sleep", f"{os.getpid()}.5"]  # found by its unique argument
    entered = subprocess.Popen(rkt.argv("enter", pod.uuid, *command), env=rkt.env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        def started() -> int | None:
            assert entered.poll() is None, entered.stderr.read()
            return _pid_of(command)

        pid = wait_for(started, what="the entered command")
        app, inside = _status_fields(app_pid), _status_fields(pid)
        for field in ("Seccomp", "Seccomp_filters", "Groups", "Uid", "Gid", "CapBnd", "CapEff"):
            assert inside[field] == app[field], field
        assert app["Seccomp"].strip() == "2"  # systemd-nspawn's filter, inherited from PID 1
        filters = [_filters(seccomp, p) for p in (app_pid, pid)]
        assert len(filters[0]) == int(app["Seccomp_filters"]) > 0
        assert filters[1] == filters[0]
    finally:
        entered.terminate()
        entered.wait(WAIT_TIMEOUT)
    rkt("stop", pod.uuid)
    pod.wait()


def _app_pid(uuid: str, comm: str | None = None) -> int:
    """The pid of the pod's busybox app; with ``comm``, once it has exec'd that program (before
    that it is systemd's child still setting the app's credentials up)."""
    def pid() -> int | None:
        for path in _pod_cgroups(uuid):
            procs = Path(path, cgroups.PAYLOAD, "system.slice", "busybox.service", "cgroup.procs")
            pids = procs.read_text().split() if procs.exists() else []
            if pids and (comm is None or _comm(pids[0]) == comm):
                return int(pids[0])
        return None

    return wait_for(pid, what="the app to start")


def _comm(pid: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


# --- logs --------------------------------------------------------------------------------------


def test_logs_of_an_exited_pod(rkt, image, tmp_path):
    result, uuid = _run_saving_uuid(rkt, tmp_path, image, "--exec", "/bin/sh", "--", "-c",
                                    "echo line-one; echo line-two >&2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "line-one\n" and "line-two\n" in result.stderr
    logs = rkt("logs", "--app=busybox", uuid, "-o", "cat")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.split() == ["line-one", "line-two"]
    journal = next((rkt.data_dir / "pods").glob(f"*/{uuid}/stage1/rootfs/var/log/journal/*"))
    assert journal.name == uuid.replace("-", "")
    direct = subprocess.run(["journalctl", "-D", str(journal), "-t", "busybox", "-p", "err",
                             "-o", "cat", "--no-pager"], capture_output=True, text=True)
    assert direct.stdout.split() == ["line-two"]
    assert rkt("logs", "--app=other", uuid).returncode == 254
    short = rkt("logs", uuid).stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in short] == ["busybox: line-one", "busybox: line-two"]
    assert rkt("logs", "-n", "1", "-o", "cat", uuid).stdout == "line-two\n"
    assert rkt("logs", "--since=@4102444800", uuid).stdout == ""  # 2100
    assert rkt("logs", "--until=-1000h", uuid).stdout == ""
    assert rkt("logs", "--since=-1000h", "--follow", "-o", "cat", uuid).stdout.split() == [
        "line-one", "line-two"]  # the pod has exited: following ends at once
    bad = rkt("logs", "--since=yesterday", uuid)
    assert bad.returncode == 254 and "invalid time" in bad.stderr


def test_following_the_logs_of_a_running_pod(rkt, image, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    pod = rkt.start(image, f"--volume=gate,kind=host,source={gate}",
                    "--mount=volume=gate,target=/gate", "--exec", "/bin/sh", "--", "-c",
                    "echo first; while [ ! -e /gate/go ]; do sleep 0.1; done; echo second")
    follower = subprocess.Popen(rkt.argv("logs", "-f", "-o", "cat", pod.uuid),
                                stdout=subprocess.PIPE, text=True, env=rkt.env)
    try:
        assert follower.stdout.readline() == "first\n"
        (gate / "go").touch()
        assert follower.stdout.readline() == "second\n"
        assert pod.wait() == 0
        assert follower.wait(timeout=WAIT_TIMEOUT) == 0  # ends once the pod has exited
        assert follower.stdout.read() == ""
    finally:
        follower.kill()
        follower.wait()


# --- terminal, users, names ---------------------------------------------------------------------


def test_interactive_gets_a_real_terminal(rkt, image):
    pid, fd = pty.fork()
    if pid == 0:
        argv = rkt.argv("run", "--stage1-name=nspawn", "--interactive", image, "--exec", "/bin/sh")
        os.execve(argv[0], argv, rkt.env)
    output = b""
    try:
        deadline = time.monotonic() + WAIT_TIMEOUT
        sent = False
        while time.monotonic() < deadline:
            if not sent and b"# " in output:  # the shell's prompt: it reads the terminal now
                os.write(fd, b"tty; test -t 0 && echo IS-A-TTY; exit 4\n")
                sent = True
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 4, output
    assert b"IS-A-TTY" in output and b"/dev/pts/" in output


def test_private_users(rkt, image, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("x")
    result, uuid = _run_saving_uuid(
        rkt, tmp_path, "--private-users", f"--volume=data,kind=host,source={host}", image,
        "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--", "-c",
        "cat /proc/self/uid_map; id -u; stat -c %u /etc/marker /data/f")
    assert result.returncode == 0, result.stderr
    inside, shift, count, uid, marker, volume = result.stdout.split()
    assert (inside, count, uid, marker, volume) == ("0", "65536", "0", "0", "65534")
    shift = int(shift)
    assert shift > 0 and shift % 65536 == 0
    pod = next((rkt.data_dir / "pods").glob(f"*/{uuid}"))
    assert (pod / "private-users").read_text() == f"{shift}:65536"
    assert os.stat(pod / "stage1/rootfs/rkt/status/busybox").st_uid == shift
    assert os.stat(pod / "overlay/busybox/upper/etc/marker").st_uid == shift
    assert os.stat(host / "f").st_uid == 0  # the host's volume is not shifted


def test_hostname_hosts_and_environment(rkt, image):
    result = rkt.run("--hostname=podname", "--hosts-entry=10.9.8.7=db", image, "--exec",
                     "/bin/sh", "--", "-c", "hostname; cat /etc/hosts; echo $AC_APP_NAME")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "podname"
    assert "10.9.8.7\tdb" in lines and lines[-1] == "busybox"


def test_default_hostname_is_the_machine_name(rkt, image, tmp_path):
    result, uuid = _run_saving_uuid(rkt, tmp_path, image, "--exec", "/bin/hostname")
    assert result.stdout == f"rkt-{uuid}\n", result.stderr


def test_failing_pre_start_fails_the_app(rkt, tmp_path):
    image = app_image(tmp_path / "bad.aci", name="example.com/bad",
                           eventHandlers=[{"name": "pre-start", "exec": ["/bin/sh", "-c",
                                                                         "exit 9"]}])
    result = rkt.run(str(image))
    assert result.returncode != 0  # systemd reports the failed start, not the handler's status
    assert "hi" not in result.stdout


# --- stopping and leftovers -------------------------------------------------------------------


def test_sigterm_to_rkt_run_stops_the_pod(rkt, image):
    """SIGTERM as soon as the pod reads as running: rkt run passes it on even if the pod's
    systemd is still starting (rkt lost such a request: the pod ran on)."""
    pod = rkt.start(image, "--exec", "/bin/sleep", "--", "1000")
    uuid = pod.uuid
    pod.process.send_signal(signal.SIGTERM)
    assert pod.wait() == 128 + signal.SIGTERM
    assert rkt.status(uuid)["app-busybox"] == str(128 + signal.SIGTERM)


def test_stop_records_the_status_the_app_exits_with(rkt, image):
    """rkt stop: the pod's shutdown stops each app through its unit, before unmounting its
    root, so the app's own answer to SIGTERM is its recorded status (a shutdown that left
    apps to the final kill recorded 143 for all, and one that raced an app's start left it
    203: its root unmounted under the queued start)."""
    pod = rkt.start(image, "--exec", "/bin/sh", "--", "-c",
                    "trap 'exit 7' TERM; echo trapping; while true; do sleep 1; done")
    uuid = pod.uuid
    wait_for(lambda: "trapping" in pod.stdout, what="the app to set its trap")
    assert rkt("stop", uuid).returncode == 0
    assert pod.wait() == 7
    assert rkt.status(uuid)["app-busybox"] == "7"


def test_force_stop_leaves_no_process(rkt, image):
    pod = rkt.start(image, "--exec", "/bin/sh", "--", "-c",
                    "trap '' TERM; while true; do sleep 1; done")
    uuid = pod.uuid
    assert rkt("stop", "--force", uuid).returncode == 0
    assert pod.wait() == 128 + 9
    assert _pod_cgroups(uuid) == []


# Runs the command given as arguments under a parent that reaps none of its orphans (as a
# supervisor might, or an init that reaps late), and prints its pid; stops when stdin closes.
NON_REAPING_PARENT = """
import ctypes, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans are ours
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
sys.stdin.read()
"""


def _started_at(pid: int) -> str | None:
    """The start time of process ``pid`` (None if there is none, not even a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def test_nspawn_is_reaped_before_the_pod_of_a_killed_rkt_run_reads_exited(rkt, image, tmp_path):
    """rkt run killed: its systemd-nspawn is not left as a zombie to whoever inherits it (rkt
    let the pod read exited while it was one): the pod's keeper reaps it, then lets go of the
    pod's lock."""
    uuid_file = tmp_path / "uuid"
    parent = subprocess.Popen(
        [sys.executable, "-c", NON_REAPING_PARENT,
         *rkt.argv("run", "--stage1-name=nspawn", f"--uuid-file-save={uuid_file}", image,
                   "--exec", "/bin/sleep", "--", "1000")],
        env=rkt.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    uuid = ""
    try:
        rkt_run = int(parent.stdout.readline())
        uuid = wait_for(lambda: uuid_file.exists() and uuid_file.read_text().strip(),
                        what="the pod's uuid")
        nspawn = int(wait_for(lambda: rkt.status(uuid).get("pid"), what="the pod's pid"))
        started = _started_at(nspawn)
        assert started is not None
        os.kill(rkt_run, signal.SIGKILL)
        wait_for(lambda: rkt.status(uuid).get("state") == "exited", what="the pod to exit")
        assert _started_at(nspawn) != started  # gone, zombie included
        assert rkt("gc", "--grace-period=0s").returncode == 0  # what the killed rkt run left
    finally:
        if uuid and rkt.status(uuid).get("state") == "running":
            rkt("stop", "--force", uuid)
        parent.stdin.close()
        parent.wait(WAIT_TIMEOUT)


def test_gc_removes_cgroups_left_by_a_killed_rkt_run(rkt, image):
    pod = rkt.start(image, "--exec", "/bin/sleep", "--", "1000")
    uuid = pod.uuid
    assert _pod_cgroups(uuid)
    pod.process.kill()  # rkt run dies: the keeper shuts the pod down, nobody removes its cgroups
    pod.wait()
    wait_for(lambda: rkt.status(uuid).get("state") == "exited", what="the pod to exit")
    result = rkt("gc", "--grace-period=0s")
    assert result.returncode == 0, result.stderr
    assert _pod_cgroups(uuid) == []

"""The contract every stage1 flavor passes, driven through the real ``rkt`` command.

A flavor's test module subclasses :class:`Stage1Contract` and names the flavor::

    from rkt_core.testing.stage1_contract import Stage1Contract

    class TestFlyContract(Stage1Contract):
        flavor = "fly"

Each test runs ``rkt`` (:class:`~rkt_core.testing.runner.Rkt`) on directories of its own with
busybox images built from the host's ``busybox-static`` (:func:`~rkt_core.testing.aci.app_image`). The tests need root (marker ``root``) and the
flavor installed. Pods a test leaves running are force-stopped when it ends.

What the flavor declares it does not support (its ``Stage1Features``) must be refused, each
option of :data:`REFUSALS` that its features leave out.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..sys import mount
from ..types import Stage1Features
from .aci import MARKER, app_image
from .runner import RKT_TIMEOUT, Rkt
from .wait import wait_for

# An option a flavor may not support: (what, feature check, extra rkt run flags before and
# after the image, text the refusal names). Each is refused when the check is false.
REFUSALS = (
    ("interactive", lambda f: f.interactive, ["--interactive"], [], "--interactive"),
    ("contained network", lambda f: f.contained_network, ["--net=default"], [], "--net"),
    ("host network", lambda f: f.host_network, ["--net=host"], [], "--net=host"),
    ("private users", lambda f: f.private_users, ["--private-users"], [], "--private-users"),
    ("own hostname", lambda f: f.own_hostname, ["--hostname=pod"], [], "--hostname"),
    ("several apps", lambda f: f.multi_app, [], ["{image}", "--name=second"], "one app"),
    ("memory limit", lambda f: "resource/memory" in f.isolators, [], ["--memory=64M"],
     "resource/memory"),
    ("cpu limit", lambda f: "resource/cpu" in f.isolators, [], ["--cpu=500m"], "resource/cpu"),
    ("capabilities to retain", lambda f: "os/linux/capabilities-retain-set" in f.isolators, [],
     ["--caps-retain=CAP_CHOWN"], "capabilities-retain-set"),
    ("capabilities to remove", lambda f: "os/linux/capabilities-remove-set" in f.isolators, [],
     ["--caps-remove=CAP_CHOWN"], "capabilities-remove-set"),
)


_FEATURES = """
import dataclasses, json, sys
from rkt_core.plugins import Plugins
features = Plugins().stage1_flavor(sys.argv[1]).factory().features
print(json.dumps({k: sorted(v) if isinstance(v, frozenset) else v
                  for k, v in dataclasses.asdict(features).items()}))
"""


def flavor_features(rkt: Rkt, name: str) -> Stage1Features:
    """The ``Stage1Features`` of the flavor ``name`` as the commands of ``rkt`` find it (asked
    in a fresh process: this one may have found its plugins before the flavor was installed)."""
    result = subprocess.run([sys.executable, "-c", _FEATURES, name], capture_output=True,
                            text=True, env=rkt.env, timeout=RKT_TIMEOUT, check=True)
    fields = json.loads(result.stdout)
    return Stage1Features(**{**fields, "isolators": frozenset(fields["isolators"])})


def _pod_dir(data_dir: Path, uuid: str) -> Path:
    (found,) = (data_dir / "pods").glob(f"*/{uuid}")
    return found


def pod_processes(uuid: str, argv: list[str]) -> list[int]:
    """The live processes of a pod: those whose command line is ``argv`` (an app's, made
    unique by the test) or names the pod's uuid (the flavor's own, e.g. systemd-nspawn).
    A zombie has no command line: it is not alive."""
    app = "".join(a + "\0" for a in argv).encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if cmdline == app or uuid.encode() in cmdline:
            found.append(int(pid))
    return found


def _locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.root
class Stage1Contract:
    """What ``rkt run``, ``status``, ``list``, ``enter``, ``stop`` and ``gc`` promise with any
    flavor. Subclasses set :attr:`flavor`."""

    flavor: str = ""

    @pytest.fixture
    def image(self, busybox_image) -> str:
        """The busybox test image (see :func:`~rkt_core.testing.aci.app_image`)."""
        return busybox_image

    @pytest.fixture
    def rkt(self, tmp_path) -> Rkt:
        """``rkt`` on fresh directories, with this flavor."""
        assert self.flavor, "set flavor in the subclass"
        rkt = Rkt(tmp_path, flavor=self.flavor)
        yield rkt
        rkt.cleanup()

    # --- the app's process ----------------------------------------------------------------

    def test_exit_status_is_passed_through(self, rkt, image):
        assert rkt.run(image, "--exec", "/bin/sh", "--", "-c", "exit 7").returncode == 7
        assert rkt.run(image, "--exec", "/bin/true").returncode == 0

    def test_default_exec_and_its_stdout(self, rkt, image):
        result = rkt.run(image)
        assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr

    def test_only_the_apps_write_to_stdout(self, rkt, image):
        result = rkt("--debug", "run", *rkt.stage1_flags(), image,
                     "--exec", "/bin/sh", "--", "-c", "printf 'exactly this'")
        assert (result.returncode, result.stdout) == (0, "exactly this"), result.stderr

    @pytest.mark.parametrize("signal_name,number", [("KILL", 9), ("TERM", 15), ("USR1", 10)])
    def test_an_app_killed_by_a_signal_exits_128_plus_its_number(self, rkt, image, signal_name,
                                                                 number):
        result = rkt.run(image, "--exec", "/bin/sh", "--", "-c", f"kill -{signal_name} $$")
        assert result.returncode == 128 + number, result.stderr

    def test_stdout_and_stderr_of_the_app(self, rkt, image):
        result = rkt.run(image, "--exec", "/bin/sh", "--", "-c", "echo out; echo err >&2")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "out\n"
        assert "err\n" in result.stderr

    def test_arguments_after_the_image(self, rkt, image):
        result = rkt.run(image, "--exec", "/bin/echo", "--", "a", "b c", "---")
        assert result.stdout == "a b c\n", result.stderr

    def test_environment(self, rkt, image):
        result = rkt.run("--set-env=FOO=bar baz", image, "--exec", "/bin/env")
        assert result.returncode == 0, result.stderr
        env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        assert env["AC_APP_NAME"] == "busybox"
        assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        assert env["FOO"] == "bar baz"
        assert (env["HOME"], env["USER"]) == ("/root", "root")

    def test_user_group_and_working_directory(self, rkt, image):
        result = rkt.run(image, "--user=user", "--group=1000", "--working-dir=/etc",
                         "--exec", "/bin/sh", "--", "-c", "id -u; id -g; pwd; echo $HOME")
        assert result.stdout.split() == ["1000", "1000", "/etc", "/home/user"], result.stderr

    def test_the_root_is_the_images_with_proc_dev_and_sys(self, rkt, image):
        result = rkt.run(image, "--exec", "/bin/sh", "--", "-c",
                         "cat /etc/marker; test -e /proc/self/status && test -c /dev/null "
                         "&& test -d /sys/kernel && echo ok")
        assert result.stdout == f"{MARKER}\nok\n", result.stderr

    def test_an_app_without_etc_hosts_gets_the_default_in_every_network(self, rkt, image,
                                                                        tmp_path):
        features = flavor_features(rkt, self.flavor)
        networks = (["host"] if features.host_network else []) + (
            ["none", "default"] if features.contained_network else [])
        own = app_image(tmp_path / "hosts.aci", name="example.com/own-hosts",
                        files={"/etc/hosts": "10.1.1.1\tmine\n"})
        for net in networks:
            result = rkt.run(f"--net={net}", image, "--exec", "/bin/sh", "--", "-c",
                             "cat /etc/hosts; hostname")
            assert result.returncode == 0, (net, result.stderr)
            *hosts, hostname = result.stdout.splitlines()
            assert hosts == [f"127.0.0.1\tlocalhost {hostname}", "::1\tlocalhost"], net
            result = rkt.run(f"--net={net}", str(own), "--exec", "/bin/cat", "--", "/etc/hosts")
            assert (result.returncode, result.stdout) == (0, "10.1.1.1\tmine\n"), net

    def test_a_modified_tree_is_rendered_again_with_a_warning(self, rkt, image):
        group = "root:x:0:\nusers:x:1000:\n"
        first = rkt.run(image, "--exec", "/bin/sh", "--", "-c",
                        "echo app >> /etc/group; cat /etc/group")
        assert (first.returncode, first.stdout) == (0, group + "app\n"), first.stderr
        (stored,) = (rkt.data_dir / "cas" / "tree").glob("*/rootfs/etc/group")
        with open(stored, "a") as f:  # the app wrote into its own root, this is the store's
            f.write("x\n")
        result = rkt.run(image, "--exec", "/bin/cat", "--", "/etc/group")
        assert (result.returncode, result.stdout) == (0, group), result.stderr
        assert "rkt: warning: tree cache is in a bad state: " in result.stderr
        again = rkt.run(image, "--exec", "/bin/cat", "--", "/etc/group")
        assert again.stdout == group and "tree cache" not in again.stderr

    # --- volumes --------------------------------------------------------------------------

    def test_host_volume_written_by_the_app(self, rkt, image, tmp_path):
        host = tmp_path / "host"
        host.mkdir()
        result = rkt.run(f"--volume=data,kind=host,source={host}", image,
                         "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--", "-c",
                         "echo written > /data/out")
        assert result.returncode == 0, result.stderr
        assert (host / "out").read_text() == "written\n"

    def test_event_handlers_run_around_the_app(self, rkt, tmp_path):
        host = tmp_path / "host"
        host.mkdir()
        os.chmod(host, 0o777)
        log = "/data/log"
        image = app_image(
            tmp_path / "handlers.aci", name="example.com/handlers", user="user", group="users",
            exec=["/bin/sh", "-c", f"echo main $(id -u) >> {log}"],
            mountPoints=[{"name": "data", "path": "/data"}],
            eventHandlers=[
                {"name": "pre-start", "exec": ["/bin/sh", "-c", f"echo pre $(id -u) >> {log}"]},
                {"name": "post-stop", "exec": ["/bin/sh", "-c", f"echo post $(id -u) >> {log}"]}])
        result = rkt.run(f"--volume=data,kind=host,source={host}", str(image))
        assert result.returncode == 0, result.stderr
        assert (host / "log").read_text() == "pre 1000\nmain 1000\npost 1000\n"

    def test_empty_volume(self, rkt, image):
        result = rkt.run("--volume=scratch,kind=empty", image,
                         "--mount=volume=scratch,target=/scratch", "--exec", "/bin/sh", "--", "-c",
                         "echo x > /scratch/f && cat /scratch/f && grep -c ' /scratch ' "
                         "/proc/self/mountinfo")
        assert (result.returncode, result.stdout) == (0, "x\n1\n"), result.stderr

    def test_read_only_volume_refuses_writes(self, rkt, image, tmp_path):
        host = tmp_path / "host"
        host.mkdir()
        (host / "existing").write_text("data")
        result = rkt.run(f"--volume=data,kind=host,source={host},readOnly=true", image,
                         "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--", "-c",
                         "cat /data/existing; echo x > /data/new")
        assert result.returncode != 0
        assert result.stdout == "data"
        assert sorted(os.listdir(host)) == ["existing"]

    # --- what the flavor does not support ---------------------------------------------------

    def test_refuses_what_its_features_leave_out(self, rkt, image):
        features = flavor_features(rkt, self.flavor)
        wrong = []
        for what, supported, before, after, named in REFUSALS:
            if supported(features):
                continue
            result = rkt.run(*before, image, "--exec", "/bin/true",
                             *[a.format(image=image) for a in after])
            pods = list((rkt.data_dir / "pods").glob("*/*"))
            if result.returncode != 254 or named not in result.stderr or pods:
                wrong.append(f"{what}: exit {result.returncode}, {len(pods)} pod(s) left, "
                             f"stderr {result.stderr!r}")
        assert wrong == []

    # --- pod states -----------------------------------------------------------------------

    def test_prepare_then_run_prepared(self, rkt, image):
        prepared = rkt("prepare", *rkt.stage1_flags(), image, "--exec", "/bin/sh",
                       "--", "-c", "echo ran; exit 6")
        assert prepared.returncode == 0, prepared.stderr
        uuid = prepared.stdout.strip()
        assert rkt.status(uuid)["state"] == "prepared"
        result = rkt("run-prepared", uuid)
        assert (result.returncode, result.stdout) == (6, "ran\n"), result.stderr
        assert rkt.status(uuid)["state"] == "exited"
        again = rkt("run-prepared", uuid)
        assert again.returncode == 254 and "not prepared" in again.stderr

    def test_the_pod_is_locked_exactly_while_it_runs(self, rkt, image):
        pod = rkt.start(image, "--exec", "/bin/sleep", "--", "1000")
        assert _locked(_pod_dir(rkt.data_dir, pod.uuid))
        assert rkt("stop", pod.uuid).returncode == 0
        pod.wait()
        assert not _locked(_pod_dir(rkt.data_dir, pod.uuid))
        assert rkt.status(pod.uuid)["state"] == "exited"

    def test_a_pod_whose_rkt_run_was_killed_reads_exited_only_once_it_is_gone(self, rkt,
                                                                              image):
        """``kill -9`` of ``rkt run``: a flavor may shut the pod down or keep it running,
        but whenever ``rkt status`` reads exited, no process of the pod is alive."""
        # the app is found by its argv
        app = ["/bin/sleep", f"{os.getpid()}.{int.from_bytes(os.urandom(3), 'big')}"]
        pod = rkt.start(image, "--exec", app[0], "--", app[1])
        assert pod_processes(pod.uuid, app)
        pod.process.kill()
        pod.process.wait()
        stopped = []

        def exited() -> bool:
            state = rkt.status(pod.uuid).get("state")
            if state == "running" and not stopped:  # a flavor that keeps the pod: end it
                assert rkt("stop", pod.uuid).returncode == 0
                stopped.append(True)
            assert state in ("running", "exited"), state
            return state == "exited"

        wait_for(exited, what="the pod to exit")
        assert pod_processes(pod.uuid, app) == []
        result = rkt("gc", "--grace-period=0s")  # what the killed rkt run left
        assert result.returncode == 0, result.stderr

    def test_status_and_list_of_an_exited_pod(self, rkt, image, tmp_path):
        uuid_file = tmp_path / "uuid"
        result = rkt.run(f"--uuid-file-save={uuid_file}", image, "--exec", "/bin/sh", "--", "-c",
                         "exit 3")
        assert result.returncode == 3
        uuid = uuid_file.read_text().strip()
        status = rkt.status(uuid)
        assert (status["state"], status["exited"], status["app-busybox"]) == ("exited", "true", "3")
        listing = rkt("list", "--no-legend").stdout.split()
        assert listing[:4] == [uuid[:8], "busybox", "example.com/busybox:1.0", "exited"]

    def test_stop_a_running_pod(self, rkt, image):
        pod = rkt.start(image, "--exec", "/bin/sleep", "--", "1000")
        result = rkt("stop", pod.uuid)
        assert (result.returncode, result.stdout) == (0, f'"{pod.uuid}"\n'), result.stderr
        assert pod.wait() != 0
        status = rkt.status(pod.uuid)
        assert status["state"] == "exited" and status["app-busybox"] != "0"

    def test_stop_force(self, rkt, image):
        pod = rkt.start(image, "--exec", "/bin/sh", "--", "-c",
                        "trap '' TERM; while true; do sleep 1; done")
        assert rkt("stop", "--force", pod.uuid).returncode == 0
        assert pod.wait() == 128 + 9

    def test_enter_a_running_pod(self, rkt, image):
        pod = rkt.start(image, "--exec", "/bin/sleep", "--", "1000")
        uuid = pod.uuid
        result = rkt("enter", uuid, "/bin/cat", "/etc/marker")
        assert (result.returncode, result.stdout) == (0, MARKER + "\n"), result.stderr
        result = rkt("enter", "--app=busybox", uuid, "/bin/sh", "-c", "echo $AC_APP_NAME; exit 4")
        assert (result.returncode, result.stdout) == (4, "busybox\n"), result.stderr
        result = rkt("enter", uuid, input="echo from-stdin\n")  # default: a shell
        assert (result.returncode, result.stdout) == (0, "from-stdin\n"), result.stderr
        assert rkt("stop", uuid).returncode == 0
        pod.wait()

    def test_gc_removes_the_pod_and_leaves_no_mounts(self, rkt, image, tmp_path):
        host = tmp_path / "host"
        host.mkdir()
        uuid_file = tmp_path / "uuid"
        result = rkt.run(f"--uuid-file-save={uuid_file}", "--volume=scratch,kind=empty",
                         f"--volume=data,kind=host,source={host}", image,
                         "--mount=volume=scratch,target=/scratch",
                         "--mount=volume=data,target=/data",
                         "--exec", "/bin/true")
        assert result.returncode == 0, result.stderr
        uuid = uuid_file.read_text().strip()
        result = rkt("gc", "--grace-period=0s")
        assert result.returncode == 0, result.stderr
        assert f'Garbage collecting pod "{uuid}"' in result.stdout
        assert rkt("list", "--no-legend").stdout.strip() == ""
        assert not list((rkt.data_dir / "pods").glob(f"*/{uuid}"))
        assert mount.mounts_under(str(rkt.data_dir)) == []
        assert host.is_dir()

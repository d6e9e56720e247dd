"""The fly flavor through the real ``rkt`` command: the stage1 contract, and what is fly's own
(a direct child of ``rkt run``, mounts private to the pod, no descriptor leaks, an image cannot
redirect rkt's mounts or working directory)."""

import os
import signal

import pytest

from rkt_core.sys import mount
from rkt_core.testing.aci import app_image
from rkt_core.testing.stage1_contract import Stage1Contract


class TestFlyContract(Stage1Contract):
    flavor = "fly"

    @pytest.fixture
    def host_dir(self, tmp_path):
        path = tmp_path / "host"
        path.mkdir()
        return path

    def test_pod_mounts_stay_out_of_the_hosts_mount_table(self, rkt, image, host_dir):
        pod = rkt.start(f"--volume=data,kind=host,source={host_dir}", image,
                        "--mount=volume=data,target=/data", "--exec", "/bin/sleep", "--", "1000")
        pid = rkt.status(pod.uuid)["pid"]
        in_pod = {m.mount_point for m in mount.mounts(f"/proc/{pid}/mountinfo")}
        assert {"/data", "/proc", "/tmp"} <= in_pod
        assert mount.mounts_under(str(rkt.data_dir)) == []
        rkt("stop", pod.uuid)
        pod.wait()

    def test_app_holds_only_stdio_and_the_pod_lock(self, rkt, image):
        pod = rkt.start(image, "--exec", "/bin/sleep", "--", "1000")
        pid = rkt.status(pod.uuid)["pid"]
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        assert fds[:3] == [0, 1, 2] and len(fds) == 4
        assert os.readlink(f"/proc/{pid}/fd/{fds[3]}") == str(rkt.data_dir / "pods/run" / pod.uuid)
        rkt("stop", pod.uuid)
        pod.wait()

    def test_the_app_is_a_direct_child_of_rkt_run(self, rkt, image):
        pod = rkt.start(image, "--exec", "/bin/sleep", "--", "1000")
        with open(f"/proc/{rkt.status(pod.uuid)['pid']}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == pod.process.pid
        rkt("stop", pod.uuid)
        pod.wait()

    def test_killed_rkt_run_leaves_the_pod_running_until_the_app_exits(self, rkt, image,
                                                                       host_dir, wait_for):
        pod = rkt.start(f"--volume=data,kind=host,source={host_dir}", image,
                        "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--",
                        "-c", "while [ ! -e /data/go ]; do sleep 0.05; done")
        pod.process.kill()
        pod.wait()
        assert rkt.status(pod.uuid)["state"] == "running"
        (host_dir / "go").write_text("")
        wait_for(lambda: rkt.status(pod.uuid)["state"] == "exited", what="the pod to exit")

    def test_signals_to_rkt_run_reach_the_app(self, rkt, image, host_dir):
        pod = rkt.start(f"--volume=data,kind=host,source={host_dir}", image,
                        "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--",
                        "-c", "trap 'echo term > /data/got; exit 9' TERM; "
                              "while true; do sleep 0.05; done")
        pod.process.send_signal(signal.SIGTERM)
        assert pod.wait() == 9
        assert (host_dir / "got").read_text() == "term\n"
        assert rkt.status(pod.uuid)["app-busybox"] == "9"

    def test_isolators_of_the_image_are_ignored_with_a_warning(self, rkt, tmp_path):
        image = app_image(tmp_path / "limited.aci", name="example.com/limited", isolators=[
            {"name": "resource/memory", "value": {"limit": "64M"}},
            {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_ADMIN"]}}])
        result = rkt.run(str(image))
        assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
        for name in ("resource/memory", "os/linux/capabilities-retain-set"):
            assert (f'rkt: warning: the fly flavor ignores isolator "{name}" of app "limited" '
                    "(declared by its image)\n") in result.stderr

    @pytest.mark.parametrize("flag", ["--memory=64M", "--cpu=500m", "--caps-retain=CAP_KILL",
                                      "--caps-remove=CAP_CHOWN"])
    def test_isolators_asked_for_on_the_command_line_are_refused(self, rkt, image, tmp_path,
                                                                 flag):
        limited = app_image(tmp_path / "limited.aci", name="example.com/limited",
                                 isolators=[{"name": "resource/memory", "value": {"limit": "1G"}}])
        for img in (image, str(limited)):
            result = rkt.run(img, flag)
            assert result.returncode == 254 and "the fly flavor cannot apply isolator" in \
                result.stderr, result.stderr
        assert rkt("list", "--no-legend").stdout == ""

    def test_missing_executable_is_an_error_of_rkt(self, rkt, image):
        result = rkt.run(image, "--exec", "/no/such")
        assert result.returncode == 254
        assert 'rkt: app "busybox": executable "/no/such" not found' in result.stderr

    def test_executable_names_are_searched_in_path(self, rkt, image):
        result = rkt.run(image, "--exec", "echo", "--", "found")
        assert (result.returncode, result.stdout) == (0, "found\n"), result.stderr
        result = rkt.run(image, "--exec", "nosuchcommand")
        assert result.returncode == 254 and "not found in PATH" in result.stderr

    def test_no_overlay(self, rkt, image):
        result = rkt.run("--no-overlay", image, "--exec", "/bin/sh", "--", "-c",
                         "echo new > /etc/new; cat /etc/marker /etc/new")
        assert result.stdout == "only-in-the-app-root\nnew\n", result.stderr

    def test_interactive_inherits_stdin(self, rkt, image):
        result = rkt.run("--interactive", image, "--exec", "/bin/cat", input="typed\n")
        assert (result.returncode, result.stdout) == (0, "typed\n"), result.stderr

    def test_failing_pre_start_stops_the_start(self, rkt, tmp_path):
        image = app_image(tmp_path / "bad.aci", name="example.com/bad",
                               eventHandlers=[{"name": "pre-start", "exec": ["/bin/false"]}])
        result = rkt.run(str(image))
        assert result.returncode == 254
        assert 'pre-start handler "/bin/false" exited with 1' in result.stderr
        assert "hi" not in result.stdout

    def test_name_service_files(self, rkt, image):
        result = rkt.run("--dns=10.1.2.3", "--dns-search=example.com",
                         "--hosts-entry=10.9.8.7=db", image, "--exec", "/bin/cat", "--",
                         "/etc/resolv.conf", "/etc/hosts")
        assert result.stdout == ("nameserver 10.1.2.3\nsearch example.com\n"
                                 f"127.0.0.1\tlocalhost {os.uname().nodename}\n"  # the host's
                                 "::1\tlocalhost\n10.9.8.7\tdb\n"), result.stderr

    def test_unsupported_options_are_refused(self, rkt, image):
        result = rkt.run("--hostname=pod", image)
        assert result.returncode == 254 and "--hostname" in result.stderr
        result = rkt.run("--net=default", image)
        assert result.returncode == 254 and "--net=host" in result.stderr

    # --- hostile images -------------------------------------------------------------------

    @pytest.mark.parametrize("link", ["proc", "dev", "sys", "tmp"])
    def test_image_cannot_redirect_system_mounts(self, rkt, tmp_path, link):
        from rkt_core.testing.aci import build_aci, busybox_rootfs, image_manifest

        rootfs = busybox_rootfs(tmp_path / "rootfs")
        os.rmdir(rootfs / link)
        os.symlink("/etc", rootfs / link)
        image = build_aci(tmp_path / "evil.aci", image_manifest("example.com/evil",
                                                                exec=["/bin/true"]), rootfs)
        result = rkt.run(str(image))
        assert result.returncode == 254
        assert f'cannot mount /{link}: component "{link}" is a symbolic link' in result.stderr

    def test_working_directory_under_proc_is_refused(self, rkt, image):
        result = rkt.run(image, "--working-dir=/proc/self", "--exec", "/bin/pwd")
        assert result.returncode == 254
        assert "rkt:" in result.stderr and result.stdout == ""

    def test_volume_target_symlink_stays_in_the_app_root(self, rkt, tmp_path, host_dir):
        from rkt_core.testing.aci import build_aci, busybox_rootfs, image_manifest

        victim = tmp_path / "victim"
        victim.mkdir()
        rootfs = busybox_rootfs(tmp_path / "rootfs")
        os.symlink(str(victim), rootfs / "data")  # the host's path, root-relative in the pod
        image = build_aci(tmp_path / "evil.aci", image_manifest(
            "example.com/evil", exec=["/bin/sh", "-c", "echo inside > /data/f"]), rootfs)
        result = rkt.run(f"--volume=data,kind=host,source={host_dir}", str(image),
                         "--mount=volume=data,target=/data")
        assert result.returncode == 0, result.stderr
        assert (host_dir / "f").read_text() == "inside\n"
        assert os.listdir(victim) == []

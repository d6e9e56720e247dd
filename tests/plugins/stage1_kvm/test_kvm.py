"""What is the kvm flavor's own, through the real ``rkt`` command: the VM's size from the
isolators, limits and capabilities inside the guest, the default network from the host and
through ``--port``, several apps, a hung VM, a hostile image, the KVM probe, and nothing left
behind (qemu, taps, network namespaces, mounts)."""

import json
import os
import pty
import select
import subprocess
import time
import urllib.request

import pytest

from rkt_core.plugin_api.stage1 import DEFAULT_CAPABILITIES, AppLimits
from rkt_core.sys import mount
from rkt_core.testing.aci import app_image, build_aci, busybox_rootfs, image_manifest
from rkt_core.testing.runner import Rkt
from rkt_core.testing.wait import WAIT_TIMEOUT, wait_for
from rkt_stage1_kvm import accel, assets, vm

pytestmark = pytest.mark.root

BOOT = 120  # seconds a command that boots a VM may take here (software emulation, busy host)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return str(app_image(tmp_path_factory.mktemp("images") / "busybox.aci"))


@pytest.fixture(scope="module")
def web_image(tmp_path_factory):
    return str(app_image(
        tmp_path_factory.mktemp("web") / "web.aci", name="example.com/web",
        exec=["/bin/sh", "-c", "echo served > /tmp/index.html; exec httpd -f -p 80 -h /tmp"],
        ports=[{"name": "http", "protocol": "tcp", "port": 80}]))


def qemu_processes(uuid: str) -> list[int]:
    """Pids of qemu processes of the pod ``uuid`` (its VM is named after it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"qemu-system-x86_64") and f"rkt-{uuid}".encode() in args:
            found.append(int(pid))
    return found


def assert_nothing_left(data_dir, uuid: str) -> None:
    """No qemu, network namespace (and so no tap), port forwarding chain or mount of the pod."""
    assert qemu_processes(uuid) == []
    assert not os.path.exists(f"/run/netns/rkt-{uuid}")
    nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    assert uuid.replace("-", "")[:14] not in nat
    assert mount.mounts_under(str(data_dir)) == []


@pytest.fixture
def rkt(tmp_path):
    rkt = Rkt(tmp_path, flavor="kvm", timeout=BOOT)
    yield rkt
    rkt.cleanup()
    for uuid in rkt.pods():  # networks are released once qemu is gone
        wait_for(lambda: not os.path.exists(f"/run/netns/rkt-{uuid}"),
                 what=f"the network namespace of pod {uuid} to go")
        assert_nothing_left(rkt.data_dir, uuid)


def run_saving_uuid(rkt, tmp_path, *args, **kwargs):
    uuid_file = tmp_path / "uuid"
    result = rkt.run(f"--uuid-file-save={uuid_file}", *args, timeout=BOOT, **kwargs)
    return result, uuid_file.read_text().strip()


# --- the VM's size and the apps' limits ---------------------------------------------------------


def test_cpu_isolator_sizes_the_vm_and_the_exit_status_is_the_apps(rkt, image):
    result = rkt.run(image, "--cpu=2", "--exec", "/bin/sh", "--", "-c",
                     "grep -c ^processor /proc/cpuinfo; exit 5", timeout=BOOT)
    assert (result.returncode, result.stdout) == (5, "2\n"), result.stderr
    result = rkt.run(image, "--cpu=500m", "--exec", "/bin/sh", "--", "-c",
                     "grep -c ^processor /proc/cpuinfo; cat /sys/fs/cgroup/busybox/cpu.max",
                     timeout=BOOT)
    assert result.stdout.split() == ["1", "50000", "100000"], result.stderr


def test_memory_isolator_sizes_the_vm_and_limits_the_app(rkt, image):
    result = rkt.run(image, "--memory=200M", "--exec", "/bin/sh", "--", "-c",
                     "cat /sys/fs/cgroup/busybox/memory.max; grep MemTotal /proc/meminfo",
                     timeout=BOOT)
    assert result.returncode == 0, result.stderr
    limit, meminfo = result.stdout.splitlines()
    assert int(limit) == 200_000_000 // 4096 * 4096  # "M" is 10^6; cgroups count pages
    total = int(meminfo.split()[1]) << 10
    vm_memory = 200_000_000 + (128 << 20)
    assert vm_memory - (64 << 20) < total <= vm_memory  # less what the kernel keeps


def test_capabilities_of_the_app_and_of_enter(rkt, image):
    result = rkt.run(image, "--exec", "/bin/grep", "--", "CapBnd", "/proc/self/status",
                     timeout=BOOT)
    assert int(result.stdout.split()[1], 16) == AppLimits(DEFAULT_CAPABILITIES).capability_mask
    result = rkt.run(image, "--caps-retain=CAP_NET_ADMIN,CAP_CHOWN", "--exec", "/bin/grep",
                     "--", "CapBnd", "/proc/self/status", timeout=BOOT)
    assert int(result.stdout.split()[1], 16) == AppLimits(("CAP_CHOWN", "CAP_NET_ADMIN")) \
        .capability_mask


def test_the_apps_see_the_guests_own_kernel_not_the_hosts(rkt, image):
    result = rkt.run(image, "--exec", "/bin/sh", "--", "-c",
                     "uname -r; cat /proc/1/cmdline | tr '\\0' ' '", timeout=BOOT)
    assert result.returncode == 0, result.stderr
    release, init = result.stdout.splitlines()
    assert release == os.path.basename(assets.default_kernel()[0]).removeprefix("vmlinuz-")
    assert "rkt_stage1_kvm.guest" in init


# --- several apps ---------------------------------------------------------------------------------


def test_several_apps_first_failure_each_status_and_logs(rkt, image, tmp_path):
    result, uuid = run_saving_uuid(
        rkt, tmp_path, image, "--name=ok", "--exec", "/bin/echo", "--", "fine", "---", image,
        "--name=bad", "--exec", "/bin/sh", "--", "-c", "sleep 1; echo failing >&2; exit 3")
    assert result.returncode == 3, result.stderr
    status = rkt.status(uuid)
    assert (status["app-ok"], status["app-bad"]) == ("0", "3")
    assert result.stdout == "fine\n" and "failing\n" in result.stderr
    logs = rkt("logs", uuid)
    assert sorted(line.split(" ", 1)[1] for line in logs.stdout.splitlines()) == [
        "bad: failing", "ok: fine"], logs.stderr
    assert rkt("logs", "--app=bad", "-o", "cat", uuid).stdout == "failing\n"
    assert rkt("logs", "--app=bad", "-o", "cat", "--since=@0", "--until=@1", uuid).stdout == ""
    assert rkt("logs", "--app=nope", uuid).returncode == 254


def test_interactive_gets_the_vms_console_as_its_terminal(rkt, image):
    pid, fd = pty.fork()
    if pid == 0:
        argv = rkt.argv("run", "--stage1-name=kvm", "--interactive", "--net=none", image,
                        "--exec", "/bin/sh")
        os.execve(argv[0], argv, rkt.env)
    output = b""
    try:
        deadline = time.monotonic() + BOOT
        sent = False
        while time.monotonic() < deadline and b"tty=/dev/" not in output:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    break
            if not sent and b"#" in output:  # the shell's prompt: it is up
                os.write(fd, b"echo tty=$(tty); exit 4\n")
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert b"tty=/dev/console" in output, output
    assert os.waitstatus_to_exitcode(status) == 4


# --- networking -------------------------------------------------------------------------------------


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_default_network_from_the_host_and_through_a_port(rkt, web_image):
    pod = rkt.start("--port=http:127.0.0.1:18081", web_image)
    uuid = pod.uuid
    ip = rkt.status(uuid)["networks"].split("ip4=")[1]
    deadline = time.monotonic() + BOOT  # the VM is still booting
    while True:
        try:
            assert _get(f"http://{ip}/index.html") == b"served\n"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert _get("http://127.0.0.1:18081/index.html") == b"served\n"
    netns = f"rkt-{uuid}"
    links = json.loads(subprocess.run(["ip", "-n", netns, "-j", "link", "show"],
                                      capture_output=True, text=True, check=True).stdout)
    assert f"rkt-{uuid[:4]}-tap0" in [link["ifname"] for link in links]
    # enter runs inside the VM, confined as the app: its kernel, cgroup, bounding set
    entered = rkt("enter", uuid, "/bin/sh", "-c",
                  "uname -r; cat /proc/self/cgroup; grep CapBnd /proc/self/status")
    release, cgroup, capbnd = entered.stdout.splitlines()
    assert release == os.path.basename(assets.default_kernel()[0]).removeprefix("vmlinuz-")
    assert cgroup == "0::/web"
    assert int(capbnd.split()[1], 16) == AppLimits(DEFAULT_CAPABILITIES).capability_mask
    assert rkt("stop", uuid).returncode == 0
    assert pod.wait(timeout=BOOT) == 143


@pytest.fixture
def bridge_network(rkt, tmp_path):
    """A user network of CNI's bridge type (its own bridge and subnet) in the runner's local
    configuration, removed afterwards."""
    config = rkt.local_config
    (config / "net.d").mkdir(parents=True)
    (config / "net.d" / "10-kvmbridge.conf").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "kvmbridge", "type": "bridge", "bridge": "rkt-kvmbr0",
        "isGateway": True, "ipam": {"type": "host-local", "subnet": "10.99.62.0/24",
                                    "dataDir": str(tmp_path / "leases")}}))
    yield config
    subprocess.run(["ip", "link", "del", "rkt-kvmbr0"], capture_output=True)


def test_a_named_bridge_network_reaches_the_vm(rkt, web_image, bridge_network):
    pod = rkt.start("--net=kvmbridge", web_image)
    uuid = pod.uuid
    ip = rkt.status(uuid)["networks"].split("ip4=")[1]
    assert ip.startswith("10.99.62.")
    deadline = time.monotonic() + BOOT
    while True:
        try:
            assert _get(f"http://{ip}/index.html") == b"served\n"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert rkt("stop", uuid).returncode == 0
    assert pod.wait(timeout=BOOT) == 143


def test_net_none_gives_the_guest_only_loopback(rkt, image):
    result = rkt.run("--net=none", image, "--exec", "/bin/sh", "--", "-c", "ls /sys/class/net",
                     timeout=BOOT)
    assert (result.returncode, result.stdout.split()) == (0, ["lo"]), result.stderr


# --- failures -----------------------------------------------------------------------------------------


def test_a_vm_that_does_not_boot_in_time_is_killed_and_reported(rkt, image, tmp_path):
    rkt.env["RKT_STAGE1_KVM_BOOT_TIMEOUT"] = "1"  # emulation never boots that fast
    result, uuid = run_saving_uuid(rkt, tmp_path, image, "--exec", "/bin/true")
    assert result.returncode == 254
    assert "did not boot within 1 s and was killed" in result.stderr
    assert qemu_processes(uuid) == []
    status = rkt.status(uuid)
    assert (status["state"], status["app-busybox"]) == ("exited", "137")


def test_an_image_whose_proc_is_a_symlink_is_refused(rkt, tmp_path):
    """/proc -> /: nothing may be mounted through it, on the host or in the guest."""
    root = busybox_rootfs(tmp_path / "rootfs")
    if (root / "proc").is_dir():
        (root / "proc").rmdir()
    os.symlink("/", root / "proc")
    build_aci(tmp_path / "proc-link.aci", image_manifest(
        "example.com/proclink", app={"exec": ["/bin/true"], "user": "0", "group": "0"}), root)
    result = rkt.run(str(tmp_path / "proc-link.aci"), timeout=BOOT)
    assert result.returncode == 254
    assert '/proc' in result.stderr and "symbolic link" in result.stderr, result.stderr


def test_device_nodes_the_guest_makes_in_its_root_reach_no_host_device(rkt, image):
    """The guest's root may mknod over 9p; qemu (root on the host) must never open such a node
    as a host device (qemu refuses special files, and the shared mounts are nodev)."""
    pod = rkt.start(image, "--exec", "/bin/sh", "--", "-c",
                              "mknod /hostzero c 1 5; head -c 4 /hostzero | od -An -tx1; "
                              "echo done; sleep 1000")
    uuid = pod.uuid
    wait_for(lambda: "done" in rkt("logs", "-o", "cat", uuid).stdout, BOOT, "the app's output")
    assert "00 00 00 00" not in rkt("logs", "-o", "cat", uuid).stdout
    (qemu,) = qemu_processes(uuid)
    with open(f"/proc/{qemu}/mountinfo") as f:
        shared = [line.split() for line in f if "/opt/stage2/" in line.split()[4]]
    assert shared and all({"nodev", "nosuid"} <= set(m[5].split(",")) for m in shared), shared
    assert rkt("stop", uuid).returncode == 0
    pod.wait(timeout=BOOT)


# --- acceleration -----------------------------------------------------------------------------------


def test_the_probe_answers_within_its_timeout_and_leaves_no_qemu(tmp_path):
    boot = assets.ensure(str(tmp_path / "cache"))
    argv = vm.probe_argv(boot.kernel, boot.initramfs)
    started = time.monotonic()
    answer = accel.probe_boots(argv, timeout=10)
    assert answer in (True, False)
    assert time.monotonic() - started < 10 + WAIT_TIMEOUT
    leftover = subprocess.run(["pgrep", "-f", boot.initramfs], capture_output=True, text=True)
    assert leftover.stdout == ""
    # The same probe under emulation boots and says so (the marker is what the probe reads).
    assert accel.probe_boots(vm.probe_argv(boot.kernel, boot.initramfs, "tcg"), timeout=BOOT)


def test_the_accel_setting_of_the_stage1_configuration_is_checked(rkt, image):
    del rkt.env["RKT_STAGE1_KVM_ACCEL"]
    (rkt.local_config / "stage1.d").mkdir(parents=True)
    (rkt.local_config / "stage1.d" / "kvm.json").write_text(json.dumps(
        {"rktKind": "stage1", "rktVersion": "v1", "flavors": {"kvm": {"accel": "warp"}}}))
    result = rkt.run(image)
    assert result.returncode == 254
    assert 'the "accel" setting: "warp" is not one of kvm, tcg' in result.stderr

"""The kvm flavor's parts, without root: its declaration, the VM's size, the frames between
host and guest, the initramfs' archive and drivers, the choice between KVM and emulation, the
apps' logs."""

import os
import subprocess
from types import SimpleNamespace

import pytest

from rkt_core.errors import NotFoundError, RktError
from rkt_core.pod.limits import AppLimits
from rkt_core.testing.plugins import load_plugin
from rkt_stage1_kvm import accel, assets, cpio, logs, netsetup, plugin, vm, wire


def test_plugin_declares_the_kvm_flavor():
    plugins, info = load_plugin(plugin, "stage1-kvm")
    assert info.errors == []
    flavor = plugins.stage1_flavor("kvm")
    assert flavor.interface_version == 1
    f = flavor.factory().features
    assert (f.contained_network, f.host_network, f.interactive, f.multi_app,
            f.private_users) == (True, False, True, True, False)
    assert "resource/memory" in f.isolators and "resource/cpu" in f.isolators


@pytest.mark.parametrize("limits,cpus,memory_mib", [
    ([AppLimits()], 4, 256),  # no CPU limit: the host's CPUs; 128 MiB per app + 128
    ([AppLimits(cpu_millis=500), AppLimits(cpu_millis=1500)], 3, 384),  # 1 + 2
    ([AppLimits(cpu_millis=9000)], 4, 256),  # at most the host's
    ([AppLimits(memory_bytes=64 << 20), AppLimits()], 4, 64 + 128 + 128),
])
def test_vm_size_the_rkt_way(limits, cpus, memory_mib):
    assert vm.size(limits, host_cpus=4) == (cpus, memory_mib << 20)


def test_frames_survive_any_split():
    stream = (wire.frame(wire.HELLO) + wire.data(wire.EXITED, ["app", 7])
              + wire.frame(wire.OUTPUT, b"x" * 70000))
    reader, frames = wire.Reader(), []
    for i in range(0, len(stream), 3):
        frames += reader.feed(stream[i:i + 3])
    assert [k for k, _ in frames] == [wire.HELLO, wire.EXITED, wire.OUTPUT]
    assert wire.load(frames[1][1]) == ["app", 7]
    assert frames[2][1] == b"x" * 70000


def test_an_oversized_frame_is_refused():
    with pytest.raises(ValueError, match="too long"):
        wire.Reader().feed(b"O" + (wire.MAX_FRAME + 1).to_bytes(4, "big"))


def test_cpio_archive_is_read_by_cpio(tmp_path):
    archive = cpio.Writer()
    archive.file("a/b/file", b"content", 0o640)
    archive.symlink("a/link", "b/file")
    archive.directory("empty")
    (tmp_path / "x.cpio").write_bytes(archive.finish())
    listing = subprocess.run(["cpio", "-itv", "-F", str(tmp_path / "x.cpio")],
                             capture_output=True, text=True, check=True).stdout
    lines = {line.split()[-1] if "->" not in line else line.split()[-3]: line
             for line in listing.splitlines()}
    assert set(lines) == {"a", "a/b", "a/b/file", "a/link", "empty"}
    assert lines["a/b/file"].startswith("-rw-r-----") and "b/file" in lines["a/link"]
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cpio", "-id", "-F", str(tmp_path / "x.cpio")], cwd=out, check=True,
                   capture_output=True)
    assert (out / "a/link").read_bytes() == b"content"


def test_drivers_come_after_their_dependencies(tmp_path):
    (tmp_path / "modules.dep").write_text(
        "kernel/virtio_net.ko: kernel/failover.ko kernel/virtio.ko\n"
        "kernel/failover.ko:\nkernel/virtio.ko:\nkernel/unrelated.ko:\n"
        "kernel/9p.ko.xz: kernel/9pnet.ko.xz\nkernel/9pnet.ko.xz:\n")
    assert assets.driver_files(str(tmp_path)) == [
        "kernel/failover.ko", "kernel/virtio.ko", "kernel/virtio_net.ko", "kernel/9pnet.ko.xz",
        "kernel/9p.ko.xz"]


def test_the_hosts_kernel_becomes_an_elf_with_a_pvh_entry():
    image, _ = assets.default_kernel()
    elf = assets.extract_vmlinux(image)
    assert elf[:4] == b"\x7fELF" and assets.has_pvh_entry(elf)
    assert not assets.has_pvh_entry(elf[:64])


def test_tap_names_fit_an_interface_name():
    name = netsetup.tap_name("0123abcd-0000-0000-0000-000000000000", 12)
    assert name == "rkt-0123-tap12" and len(name) <= 15


@pytest.fixture
def boot_id(tmp_path, monkeypatch):
    path = tmp_path / "boot_id"
    path.write_text("boot-1\n")
    monkeypatch.setattr(accel, "BOOT_ID", str(path))
    monkeypatch.delenv(accel.ENV, raising=False)
    monkeypatch.setattr(os, "access", lambda p, mode: p == "/dev/kvm")
    return path


def test_the_probe_runs_once_per_boot(tmp_path, boot_id):
    calls = []
    probe = lambda: calls.append(1) or False  # noqa: E731
    assert accel.choose(str(tmp_path), "", probe) == "tcg"
    assert accel.choose(str(tmp_path), "", probe) == "tcg"
    assert len(calls) == 1
    boot_id.write_text("boot-2\n")
    assert accel.choose(str(tmp_path), "", lambda: True) == "kvm"
    assert sorted(os.listdir(tmp_path)) == ["accel-boot-2", "boot_id"]


def test_the_environment_and_the_setting_win_over_the_probe(tmp_path, boot_id, monkeypatch):
    def probe():
        raise AssertionError("no probe when told")

    assert accel.choose(str(tmp_path), "kvm", probe) == "kvm"
    monkeypatch.setenv(accel.ENV, "tcg")
    assert accel.choose(str(tmp_path), "kvm", probe) == "tcg"
    monkeypatch.setenv(accel.ENV, "fast")
    with pytest.raises(RktError, match='"fast" is not one of kvm, tcg'):
        accel.choose(str(tmp_path), "", probe)


def test_without_dev_kvm_it_is_emulation(tmp_path, boot_id, monkeypatch):
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    assert accel.choose(str(tmp_path), "", lambda: True) == "tcg"


class _Pod:
    """What the log reader uses of a pod."""

    uuid = "0123abcd-0000-0000-0000-000000000000"

    def __init__(self, apps, locked=False):
        self._apps, self.locked = apps, locked

    def manifest(self):
        return SimpleNamespace(apps=[SimpleNamespace(name=a) for a in self._apps])

    def is_locked(self):
        return self.locked


def test_logs_keep_lines_with_their_time_and_stream(tmp_path, monkeypatch):
    clock = iter([100.0, 101.0, 102.0, 103.0])
    monkeypatch.setattr(logs.time, "time", lambda: next(clock))
    writer = logs.Writer(str(tmp_path / "web"))
    writer.write(1, b"one\ntw")
    writer.write(2, b"err\r\n")
    writer.write(1, b"o\n")
    writer.write(1, b"unfinished")
    writer.close()
    assert (tmp_path / "web").read_bytes() == (b"100.000000 1 one\n101.000000 2 err\n"
                                               b"102.000000 1 two\n103.000000 1 unfinished\n")


def test_reading_logs_of_several_apps_in_time_order_tail_and_window(tmp_path):
    (tmp_path / "a").write_bytes(b"1.0 1 a-one\n3.0 2 a-three\n")
    (tmp_path / "b").write_bytes(b"2.0 1 b-two\n4.0 1 b-four\nbroken line\n")
    pod = _Pod(["a", "b"])
    read = lambda **kw: [(l.time, l.app, l.message) for l in logs.read_logs(  # noqa: E731
        pod, str(tmp_path), kw.get("app", ""), kw.get("lines", 0), False, kw.get("since"),
        kw.get("until"))]
    assert [m for _, _, m in read()] == ["a-one", "b-two", "a-three", "b-four"]
    assert read(app="b") == [(2.0, "b", "b-two"), (4.0, "b", "b-four")]
    assert [m for _, _, m in read(lines=2)] == ["a-three", "b-four"]
    assert [m for _, _, m in read(since=2.0, until=3.0)] == ["b-two", "a-three"]


def test_following_logs_ends_once_the_pod_stopped(tmp_path, monkeypatch):
    (tmp_path / "a").write_bytes(b"1.0 1 first\n")
    pod = _Pod(["a"], locked=True)
    monkeypatch.setattr(logs.time, "sleep", lambda _: None)
    follower = logs.read_logs(pod, str(tmp_path), "", 0, True, None, None)
    assert next(follower).message == "first"
    assert next(follower) is None  # nothing new yet: a keep-alive
    with open(tmp_path / "a", "ab") as f:
        f.write(b"2.0 1 second\n")
    pod.locked = False
    assert [l.message for l in follower if l is not None] == ["second"]


def test_a_pod_that_never_ran_has_no_logs(tmp_path):
    with pytest.raises(NotFoundError, match="has no logs"):
        logs.read_logs(_Pod(["a"]), str(tmp_path / "missing"), "", 0, False, None, None)

"""The kvm flavor's parts, without root: its declaration, the VM's size, the frames between
host and guest, the initramfs' archive and drivers, the choice between KVM and emulation."""

import os
import subprocess

import pytest

from rkt_core.errors import RktError
from rkt_core.pod.limits import AppLimits
from rkt_core.testing.plugins import load_plugin
from rkt_stage1_kvm import accel, assets, cpio, netsetup, plugin, vm, wire


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

"""rkt_core.sys.mount: the calls it makes (fake libc), mountinfo parsing, and real mounts in a
private mount namespace (root)."""

import errno
import os

import pytest

from rkt_core.sys import mount
from rkt_core.sys.mount import MNT_DETACH, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, \
    MS_SHARED, MS_SLAVE, UMOUNT_NOFOLLOW


# --- the calls --------------------------------------------------------------------------------


def test_mount_passes_bytes_and_flags(fake_libc):
    mount.mount("src dir", "/tgt", "ext4", MS_RDONLY, "a=b")
    assert fake_libc.calls == [("mount", b"src dir", b"/tgt", b"ext4", MS_RDONLY, b"a=b")]


def test_mount_none_arguments_are_null(fake_libc):
    mount.mount(None, "/tgt")
    assert fake_libc.calls == [("mount", None, b"/tgt", None, 0, None)]


def test_mount_error_has_errno_and_a_clear_message(fake_libc):
    fake_libc.fail["mount"] = errno.EPERM
    with pytest.raises(PermissionError) as info:
        mount.mount("/a", "/b", "none", MS_BIND)
    assert info.value.errno == errno.EPERM
    assert info.value.strerror == ("cannot mount /a on /b (type none, flags 0x1000): "
                                   "Operation not permitted")


def test_umount_error(fake_libc):
    fake_libc.fail["umount2"] = errno.EINVAL
    with pytest.raises(OSError, match="cannot unmount /x: Invalid argument"):
        mount.umount("/x", MNT_DETACH)
    assert fake_libc.calls == [("umount2", b"/x", MNT_DETACH)]


@pytest.mark.parametrize("recursive,flags", [(False, MS_BIND), (True, MS_BIND | MS_REC)])
def test_bind(fake_libc, recursive, flags):
    mount.bind("/a", "/b", recursive=recursive)
    assert fake_libc.calls == [("mount", b"/a", b"/b", None, flags, None)]


@pytest.mark.parametrize("call,flag", [(mount.make_private, MS_PRIVATE),
                                       (mount.make_slave, MS_SLAVE),
                                       (mount.make_shared, MS_SHARED)])
def test_propagation(fake_libc, call, flag):
    call("/p")
    call("/q", recursive=False)
    assert fake_libc.calls == [("mount", None, b"/p", None, flag | MS_REC, None),
                          ("mount", None, b"/q", None, flag, None)]


def test_remount_read_only_keeps_the_mounts_restrictions(fake_libc, monkeypatch):
    class Statvfs:
        f_flag = os.ST_NOSUID | os.ST_NODEV | os.ST_RELATIME

    monkeypatch.setattr(mount.os, "statvfs", lambda path: Statvfs)
    mount.remount_read_only("/v")
    expected = (MS_REMOUNT | MS_BIND | MS_RDONLY | mount.MS_NOSUID | mount.MS_NODEV
                | mount.MS_RELATIME)
    assert fake_libc.calls == [("mount", None, b"/v", None, expected, None)]


def test_overlay_options_are_escaped(fake_libc):
    mount.overlay("/t", ["/l1", "/we,ird:dir\\x"], "/u", "/w")
    assert fake_libc.calls == [("mount", b"overlay", b"/t", b"overlay", 0,
                           b"lowerdir=/l1:/we\\,ird\\:dir\\\\x,upperdir=/u,workdir=/w")]


def test_mount_id_of_an_fd(tmp_path):
    fd = os.open(tmp_path, os.O_PATH)
    try:
        ids = {m.mount_id for m in mount.mounts()}
        assert mount.mount_id(fd) in ids
    finally:
        os.close(fd)


# --- mountinfo --------------------------------------------------------------------------------

MOUNTINFO = (
    "22 1 0:21 / /proc rw,relatime - proc proc rw\n"
    "30 1 254:0 / /data rw - ext4 /dev/vda rw\n"
    "31 30 0:40 / /data/pods/p1/rootfs rw - overlay overlay rw,lowerdir=/x\n"
    "32 31 0:6 / /data/pods/p1/rootfs/dev rw - devtmpfs devtmpfs rw\n"
    "33 31 0:41 / /data/pods/p1/rootfs/with\\040space\\134and\\012newline rw "
    "- tmpfs tmp\\040fs rw\n"
    "34 31 0:42 / /data/pods/p1/rootfs rw - tmpfs tmpfs rw\n"
    "35 30 0:43 / /data/pods/p10 rw - tmpfs tmpfs rw\n"
    "36 1 0:44 / /data/pods/p1x rw,nosuid shared:5 master:2 - tmpfs tmpfs rw\n"
)


@pytest.fixture
def mountinfo(tmp_path, monkeypatch):
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    monkeypatch.setattr(mount, "_MOUNTINFO", str(path))
    return path


def test_mounts_parses_fields_and_octal_escapes(mountinfo):
    ms = mount.mounts()
    assert len(ms) == 8
    assert ms[0] == mount.MountInfo(22, 1, "/proc", "proc", "proc", "rw,relatime", "rw")
    assert ms[2].super_options == "rw,lowerdir=/x"
    assert ms[4].mount_point == "/data/pods/p1/rootfs/with space\\and\nnewline"
    assert ms[4].source == "tmp fs"
    assert ms[7].fstype == "tmpfs" and ms[7].options == "rw,nosuid"  # optional fields skipped


def test_mounts_reads_another_mountinfo_file_when_given(tmp_path):
    other = tmp_path / "other"
    other.write_text("40 1 0:50 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    (m,) = mount.mounts(str(other))
    assert (m.mount_point, m.fstype, m.super_options) == ("/sys/fs/cgroup/memory", "cgroup",
                                                         "rw,memory")


def test_mounts_under_is_deepest_first_top_of_stack_first(mountinfo):
    points = [(m.mount_id, m.mount_point) for m in mount.mounts_under("/data/pods/p1")]
    assert points == [(33, "/data/pods/p1/rootfs/with space\\and\nnewline"),
                      (32, "/data/pods/p1/rootfs/dev"),
                      (34, "/data/pods/p1/rootfs"),
                      (31, "/data/pods/p1/rootfs")]


def test_mounts_under_includes_the_path_itself_and_not_siblings(mountinfo):
    assert [m.mount_id for m in mount.mounts_under("/data/pods/p10")] == [35]
    assert mount.mounts_under("/nothing") == []


def test_mounts_under_resolves_symlinks(mountinfo, tmp_path):
    (tmp_path / "link").symlink_to("/data/pods/p10")
    # /data/pods/p10 does not exist here, so realpath keeps the link's target as text
    assert [m.mount_id for m in mount.mounts_under(str(tmp_path / "link"))] == [35]


class MountTable:
    """A fake kernel mount table: umount2 removes the top mount at a point from the mountinfo
    file; ``busy`` points fail with EBUSY unless detached; a covered point fails with EINVAL."""

    def __init__(self, fake_libc, path, points, busy=()):
        self.path, self.points, self.busy = path, list(points), set(busy)
        self._write()
        fake_libc.umount2 = self.umount2

    def _write(self):
        self.path.write_text("".join(f"{i + 40} 1 0:{i} / {p} rw - tmpfs tmpfs rw\n"
                                     for i, p in enumerate(self.points)))

    def umount2(self, target, flags):
        import ctypes

        target = target.decode()
        assert flags & UMOUNT_NOFOLLOW
        tops = [i for i, p in enumerate(self.points) if p == target]
        if not tops or any(target.startswith(p.rstrip("/") + "/") for p in self.points[tops[-1]:]):
            ctypes.set_errno(errno.EINVAL)  # not a mount point, or hidden under a later mount
            return -1
        if target in self.busy and not flags & MNT_DETACH:
            ctypes.set_errno(errno.EBUSY)
            return -1
        del self.points[tops[-1]]
        self._write()
        return 0


def test_unmount_all_under_removes_everything_detaching_busy_mounts(mountinfo, fake_libc):
    table = MountTable(fake_libc, mountinfo, ["/", "/pod", "/pod/a", "/pod/a/b", "/pod/a", "/other"],
                       busy={"/pod/a/b"})
    mount.unmount_all_under("/pod")
    assert table.points == ["/", "/other"]


def test_unmount_all_under_retries_mounts_covered_by_later_ones(mountinfo, fake_libc):
    table = MountTable(fake_libc, mountinfo, ["/", "/pod/a/deep", "/pod"])
    mount.unmount_all_under("/pod")
    assert table.points == ["/"]


def test_unmount_all_under_reports_what_it_cannot_remove(mountinfo, fake_libc):
    mountinfo.write_text("40 1 0:1 / /pod rw - tmpfs tmpfs rw\n")
    fake_libc.fail["umount2"] = errno.EINVAL
    with pytest.raises(OSError, match="cannot unmount /pod"):
        mount.unmount_all_under("/pod")


def test_unmount_all_under_passes_other_errors_on(mountinfo, fake_libc):
    mountinfo.write_text("40 1 0:1 / /pod rw - tmpfs tmpfs rw\n")
    fake_libc.fail["umount2"] = errno.EPERM
    with pytest.raises(PermissionError):
        mount.unmount_all_under("/pod")


# --- real mounts, in a private mount namespace ------------------------------------------------


@pytest.mark.root
def test_real_bind_remount_overlay_and_unmount_all(tmp_path, in_child):
    for d in ("src", "bind", "rbind", "lower", "upper", "work", "merged"):
        (tmp_path / d).mkdir()
    (tmp_path / "src/file").write_text("hello")
    (tmp_path / "lower/base").write_text("base")

    def body():
        mount.mount("tmpfs", str(tmp_path / "src"), "tmpfs")
        (tmp_path / "src/sub").mkdir()
        mount.mount("tmpfs", str(tmp_path / "src/sub"), "tmpfs")
        (tmp_path / "src/sub/inner").write_text("inner")
        mount.bind(str(tmp_path / "src"), str(tmp_path / "bind"))
        assert not (tmp_path / "bind/sub/inner").exists()  # not recursive
        mount.bind(str(tmp_path / "src"), str(tmp_path / "rbind"), recursive=True)
        assert (tmp_path / "rbind/sub/inner").read_text() == "inner"
        mount.remount_read_only(str(tmp_path / "bind"))
        with pytest.raises(OSError) as info:
            (tmp_path / "bind/new").write_text("x")
        assert info.value.errno == errno.EROFS
        (tmp_path / "src/new").write_text("still writable")  # only the bind is read-only
        mount.overlay(str(tmp_path / "merged"), [str(tmp_path / "lower")], str(tmp_path / "upper"),
                      str(tmp_path / "work"))
        (tmp_path / "merged/top").write_text("top")
        assert (tmp_path / "merged/base").read_text() == "base"
        assert (tmp_path / "upper/top").read_text() == "top"
        assert len(mount.mounts_under(str(tmp_path))) == 6
        mount.unmount_all_under(str(tmp_path))
        assert mount.mounts_under(str(tmp_path)) == []

    in_child(body, private_mounts=True)
    assert mount.mounts_under(str(tmp_path)) == []  # nothing ever reached this namespace
    assert sorted(os.listdir(tmp_path / "src")) == ["file"]


@pytest.mark.root
def test_real_unmount_all_detaches_a_busy_mount(tmp_path, in_child):
    (tmp_path / "m").mkdir()

    def body():
        mount.mount("tmpfs", str(tmp_path / "m"), "tmpfs")
        fd = os.open(tmp_path / "m", os.O_RDONLY)  # keeps it busy
        (tmp_path / "m/f").write_text("x")
        busy = os.open(tmp_path / "m/f", os.O_RDONLY)
        mount.unmount_all_under(str(tmp_path))
        assert mount.mounts_under(str(tmp_path)) == []
        os.close(busy)
        os.close(fd)

    in_child(body, private_mounts=True)

"""ScopedExtractor: members land inside the root, keep their metadata, and hostile archives
(traversal names, symlink and hard link escapes, devices) never touch anything outside it."""

import io
import os
import stat
import tarfile

import pytest

from rkt_core.errors import ImageError
from rkt_core.store.extract import ScopedExtractor

MTIME = 1_500_000_000  # what the tar_builder fixture stamps on entries


def extract(data, root, warnings=None, **kwargs):
    """Extract every member of the tar ``data`` into ``root``."""
    warn = warnings.append if warnings is not None else None
    with ScopedExtractor(str(root), warn=warn, **kwargs) as extractor, \
            tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for member in tar:
            extractor.extract_member(tar, member)
        extractor.finish()


# --- what must be kept ------------------------------------------------------------------------


def test_regular_files_directories_and_symlinks(tmp_path, tar_builder):
    data = (tar_builder().dir("etc").file("etc/hostname", b"box\n")
            .symlink("etc/localtime", "/usr/share/zoneinfo/UTC").bytes())
    extract(data, tmp_path)
    assert (tmp_path / "etc/hostname").read_bytes() == b"box\n"
    assert os.readlink(tmp_path / "etc/localtime") == "/usr/share/zoneinfo/UTC"


@pytest.mark.parametrize("mode", [0o4755, 0o2755, 0o6711, 0o1777, 0o600, 0o000])
def test_file_modes_are_kept_including_setuid(tmp_path, tar_builder, mode):
    extract(tar_builder().file("f", b"x", mode=mode).bytes(), tmp_path)
    assert stat.S_IMODE(os.lstat(tmp_path / "f").st_mode) == mode


@pytest.mark.root
def test_owners_are_kept_setuid_survives_chown(tmp_path, tar_builder):
    data = (tar_builder().dir("d", uid=12, gid=34, mode=0o750)
            .file("d/su", b"x", uid=1000, gid=1001, mode=0o4755)
            .symlink("d/link", "su", uid=7, gid=8).bytes())
    extract(data, tmp_path)
    for name, owner in (("d", (12, 34)), ("d/su", (1000, 1001)), ("d/link", (7, 8))):
        st = os.lstat(tmp_path / name)
        assert (st.st_uid, st.st_gid) == owner
    assert stat.S_IMODE(os.lstat(tmp_path / "d/su").st_mode) == 0o4755


def test_without_preserve_owner_files_belong_to_us(tmp_path, tar_builder):
    extract(tar_builder().file("f", b"x", uid=4321, gid=4321).bytes(), tmp_path,
            preserve_owner=False)
    assert os.lstat(tmp_path / "f").st_uid == os.geteuid()


def test_times_are_kept_and_directory_metadata_applied_after_children(tmp_path, tar_builder):
    data = (tar_builder().dir("ro", mode=0o555, mtime=1000)
            .file("ro/a", b"a", mtime=2000).symlink("ro/l", "a", mtime=3000).bytes())
    extract(data, tmp_path)
    assert os.lstat(tmp_path / "ro").st_mtime == 1000
    assert stat.S_IMODE(os.lstat(tmp_path / "ro").st_mode) == 0o555
    assert os.lstat(tmp_path / "ro/a").st_mtime == 2000
    assert os.lstat(tmp_path / "ro/l").st_mtime == 3000


def test_directory_entry_for_the_root_sets_its_metadata(tmp_path, tar_builder):
    root = tmp_path / "root"
    root.mkdir()
    extract(tar_builder().dir("./", mode=0o750, mtime=1234).file("./a", b"a").bytes(), root)
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o750
    assert os.lstat(root).st_mtime == 1234


def test_hard_link_shares_the_inode_and_ignores_its_own_metadata(tmp_path, tar_builder):
    data = (tar_builder().file("a", b"data", mode=0o640)
            .hardlink("b", "a", mode=0o777, mtime=5).bytes())
    extract(data, tmp_path)
    a, b = os.lstat(tmp_path / "a"), os.lstat(tmp_path / "b")
    assert a.st_ino == b.st_ino and a.st_nlink == 2
    assert stat.S_IMODE(b.st_mode) == 0o640


def test_fifo_is_kept(tmp_path, tar_builder):
    extract(tar_builder().fifo("pipe", mode=0o620).bytes(), tmp_path)
    st = os.lstat(tmp_path / "pipe")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620
    assert st.st_mtime == MTIME


def _xattrs_supported(path):
    probe = path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def test_xattrs_are_kept(tmp_path, tar_builder):
    if not _xattrs_supported(tmp_path):
        pytest.skip("the filesystem refuses user xattrs")
    data = (tar_builder().file("f", b"x", pax_headers={"SCHILY.xattr.user.note": "hello"})
            .dir("d", pax_headers={"SCHILY.xattr.user.dir": "yes"}).bytes())
    extract(data, tmp_path)
    assert os.getxattr(tmp_path / "f", "user.note") == b"hello"
    assert os.getxattr(tmp_path / "d", "user.dir") == b"yes"


@pytest.mark.root
def test_binary_file_capability_xattr_is_kept(tmp_path, tar_builder):
    # cap_net_raw+ep, as on ping: a VFS_CAP_REVISION_2 blob, not valid UTF-8.
    caps = bytes([0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    value = caps.decode("utf-8", "surrogateescape")
    data = tar_builder().file("ping", b"x", mode=0o755,
                              pax_headers={"SCHILY.xattr.security.capability": value}).bytes()
    extract(data, tmp_path)
    assert os.getxattr(tmp_path / "ping", "security.capability") == caps


@pytest.mark.root
def test_xattrs_outside_the_allow_list_are_dropped(tmp_path, tar_builder):
    warnings = []
    data = (tar_builder().dir("d", pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y"})
            .file("d/f", pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y"}).bytes())
    extract(data, tmp_path, warnings)
    assert "trusted.overlay.opaque" not in os.listxattr(tmp_path / "d")
    assert "trusted.overlay.opaque" not in os.listxattr(tmp_path / "d/f")
    assert len([w for w in warnings if "trusted.overlay.opaque" in w]) == 1


@pytest.mark.root
def test_allowed_device_is_created(tmp_path, tar_builder):
    extract(tar_builder().device("null", "c", 1, 3, mode=0o666).bytes(), tmp_path)
    st = os.lstat(tmp_path / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666


@pytest.mark.parametrize("kind,major,minor", [("b", 8, 0), ("c", 1, 1), ("c", 1, 2),
                                              ("b", 1, 3), ("c", 4, 0)])
def test_device_outside_the_allow_list_is_skipped(tmp_path, tar_builder, kind, major, minor):
    warnings = []
    extract(tar_builder().device("dev", kind, major, minor, mode=0o666).bytes(), tmp_path,
            warnings)
    assert not os.path.lexists(tmp_path / "dev")
    assert any("allow list" in w and "dev" in w for w in warnings)


def test_devices_can_be_allowed_explicitly(tmp_path, tar_builder):
    warnings = []
    extract(tar_builder().device("null", "c", 1, 3).bytes(), tmp_path, warnings,
            allowed_devices=frozenset())
    assert not os.path.lexists(tmp_path / "null") and warnings


# --- replacing what is there ------------------------------------------------------------------


def test_final_component_symlink_is_replaced_not_followed(victim, tar_builder):
    data = (tar_builder().symlink("x", "../victim/hello").file("x", b"pwned", mode=0o777)
            .symlink("d", "../victim").dir("d", mode=0o777).bytes())
    extract(data, victim.root)
    assert (victim.root / "x").read_bytes() == b"pwned"
    assert not os.path.islink(victim.root / "d") and os.path.isdir(victim.root / "d")
    victim.check()


def test_directory_over_directory_updates_metadata_and_keeps_children(tmp_path, tar_builder):
    data = (tar_builder().dir("d", mode=0o700).file("d/a", b"a")
            .dir("d", mode=0o711, mtime=42).bytes())
    extract(data, tmp_path)
    assert (tmp_path / "d/a").read_bytes() == b"a"
    st = os.lstat(tmp_path / "d")
    assert stat.S_IMODE(st.st_mode) == 0o711 and st.st_mtime == 42


def test_file_over_directory_replaces_the_directory_tree(tmp_path, tar_builder):
    data = tar_builder().dir("d").file("d/a", b"a").dir("d/sub").file("d", b"now a file").bytes()
    extract(data, tmp_path)
    assert (tmp_path / "d").read_bytes() == b"now a file"


def test_directory_over_file_replaces_the_file(tmp_path, tar_builder):
    extract(tar_builder().file("d", b"x").dir("d").file("d/a", b"a").bytes(), tmp_path)
    assert (tmp_path / "d/a").read_bytes() == b"a"


def test_missing_parents_are_created(tmp_path, tar_builder):
    extract(tar_builder().file("a/b/c", b"c").bytes(), tmp_path)
    assert (tmp_path / "a/b/c").read_bytes() == b"c"
    assert stat.S_IMODE(os.lstat(tmp_path / "a").st_mode) == 0o755


def test_regular_file_as_parent_is_refused(tmp_path, tar_builder):
    with pytest.raises(ImageError, match="not a directory"):
        extract(tar_builder().file("f", b"x").file("f/y", b"y").bytes(), tmp_path)


# --- hostile names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../victim/dotdot", "/../victim/slash-dotdot", "..",
                                  "a/../../victim/x", "a/b/../../../victim/hello", "/victim/x",
                                  "{hello}", "./../victim/x"])
def test_traversal_and_absolute_names_are_refused(victim, tar_builder, name):
    name = name.format(hello=victim.hello)
    with pytest.raises(ImageError, match="escapes the root|absolute path"):
        extract(tar_builder().file(name, b"pwned").bytes(), victim.root)
    victim.check()


@pytest.mark.parametrize("name", [".", "./", "..", "", "a/..", "/"])
def test_symlink_named_dot_dotdot_or_root_is_refused(victim, tar_builder, name):
    data = tar_builder().symlink(name, str(victim.dir)).file("hello", b"pwned").bytes()
    with pytest.raises(ImageError):
        extract(data, victim.root)
    assert not os.path.islink(victim.root)
    victim.check()


@pytest.mark.parametrize("name", [".", "./"])
def test_file_named_dot_is_refused(victim, tar_builder, name):
    with pytest.raises(ImageError, match="replace the root"):
        extract(tar_builder().file(name, b"x").bytes(), victim.root)
    assert victim.root.is_dir()
    victim.check()


# --- symlink escapes: writes through planted symlinks stay inside the root ----------------------


def _through(victim, target):
    """The path that, written below a symlink to ``target`` in the root, would hit the victim's
    hello if the symlink were followed as the host would (so an escape shows in victim.check)."""
    escaped = os.path.normpath(os.path.join(victim.root, target))
    return os.path.relpath(victim.hello, escaped)


@pytest.mark.parametrize("target", ["/", "../../..", "..", "/..", "/../../../..", "/./.././../",
                                    "../", "../victim/.."])
def test_symlink_parent_cannot_climb_out(victim, tar_builder, target):
    rel = _through(victim, target)
    data = tar_builder().symlink("link", target).file(f"link/{rel}", b"pwned").bytes()
    extract(data, victim.root)
    assert (victim.root / rel).read_bytes() == b"pwned"
    victim.check()


def test_symlink_to_victim_directory_then_file_through_it(victim, tar_builder):
    data = (tar_builder().symlink("loophole-victim", "../victim")
            .file("loophole-victim/file", b"pwned").file("loophole-victim/hello", b"pwned")
            .bytes())
    extract(data, victim.root)
    assert (victim.root / "victim/file").read_bytes() == b"pwned"
    victim.check()


def test_symlink_chains_and_symlink_to_symlink(victim, tar_builder):
    rel = _through(victim, "../..")  # what c/../../../.. would reach from the host's view
    data = (tar_builder().symlink("a", "b").symlink("b", "c/../../../..").dir("c")
            .file(f"a/{rel}", b"pwned")
            .symlink("l1", "l2").symlink("l2", str(victim.sandbox))
            .file("l1/victim/sub/x", b"pwned").bytes())
    extract(data, victim.root)
    assert (victim.root / rel).read_bytes() == b"pwned"
    assert (victim.root / str(victim.sandbox).lstrip("/") / "victim/sub/x").read_bytes() == b"pwned"
    victim.check()


def test_directory_entry_through_symlink_parent_stays_inside(victim, tar_builder):
    data = (tar_builder().symlink("up", "..").dir("up/victim", mode=0o777)
            .dir("up/victim/sub", mode=0o777, mtime=1).bytes())
    extract(data, victim.root)
    assert stat.S_IMODE(os.lstat(victim.root / "victim/sub").st_mode) == 0o777
    victim.check()


def test_dangling_absolute_symlink_parent_is_created_inside(victim, tar_builder):
    # Points into the sandbox, so that an escape shows up in victim.check() and nowhere else.
    planted = str(victim.sandbox / "planted" / "dir")
    data = tar_builder().symlink("x", planted).file("x/file", b"f").bytes()
    extract(data, victim.root)
    assert (victim.root / planted.lstrip("/") / "file").read_bytes() == b"f"
    victim.check()


def test_symlink_loop_is_refused(victim, tar_builder):
    data = tar_builder().symlink("x", "y").symlink("y", "x").file("x/file", b"f").bytes()
    with pytest.raises(ImageError, match="too many levels of symbolic links"):
        extract(data, victim.root)
    victim.check()


def test_symlink_to_self_is_refused(victim, tar_builder):
    with pytest.raises(ImageError, match="too many levels"):
        extract(tar_builder().symlink("x", "x/x").file("x/f", b"f").bytes(), victim.root)
    victim.check()


# --- hard links -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["../victim/hello", "/../victim/hello", "..", "../victim",
                                    "a/../../victim/hello"])
def test_hard_link_outside_is_refused(victim, tar_builder, target):
    with pytest.raises(ImageError, match="escapes the root|absolute path|root directory"):
        extract(tar_builder().hardlink("h", target).bytes(), victim.root)
    victim.check()


def test_absolute_hard_link_target_resolves_inside_the_root(victim, tar_builder):
    data = tar_builder().dir("etc").file("etc/passwd", b"inside").hardlink("h", "/etc/passwd").bytes()
    extract(data, victim.root)
    inner = os.lstat(victim.root / "etc/passwd")
    assert os.lstat(victim.root / "h").st_ino == inner.st_ino
    assert os.lstat("/etc/passwd").st_ino != inner.st_ino
    victim.check()


def test_absolute_hard_link_target_missing_inside_is_refused(victim, tar_builder):
    with pytest.raises(ImageError, match="does not exist"):
        extract(tar_builder().hardlink("h", "/etc/passwd").bytes(), victim.root)
    hello = str(victim.hello)
    with pytest.raises(ImageError, match="does not exist"):
        extract(tar_builder().hardlink("h", hello).bytes(), victim.root)
    victim.check()


def test_hard_link_through_symlinked_parent_resolves_inside(victim, tar_builder):
    data = (tar_builder().symlink("loophole", "../victim").hardlink("h", "loophole/hello")
            .bytes())
    with pytest.raises(ImageError, match="does not exist"):
        extract(data, victim.root)
    victim.check()


def test_hard_link_through_absolute_symlink_resolves_inside(victim, tar_builder):
    hello = str(victim.hello).lstrip("/")
    data = (tar_builder().symlink("slash", "/").file(hello, b"inside")
            .hardlink("h", f"slash/{hello}").bytes())
    extract(data, victim.root)
    assert os.lstat(victim.root / "h").st_ino == os.lstat(victim.root / hello).st_ino
    victim.check()


def test_hard_link_to_symlink_links_the_symlink_itself(victim, tar_builder):
    data = (tar_builder().symlink("s", "../victim/hello", mode=0o777)
            .hardlink("h", "s", mode=0o777, uid=1234).bytes())
    extract(data, victim.root)
    assert os.path.islink(victim.root / "h")
    assert os.readlink(victim.root / "h") == "../victim/hello"
    assert os.lstat(victim.root / "h").st_ino == os.lstat(victim.root / "s").st_ino
    victim.check()  # no chmod went through the symlink (containerd CVE-2021-32760)


def test_file_written_over_hard_link_to_symlink_stays_inside(victim, tar_builder):
    data = (tar_builder().symlink("s", f"/..{victim.hello}").hardlink("h", "s")
            .file("h", b"pwned", mode=0o777).file("s", b"pwned").bytes())
    extract(data, victim.root)
    assert (victim.root / "h").read_bytes() == b"pwned"
    victim.check()


def test_hard_link_to_missing_target_is_refused(victim, tar_builder):
    with pytest.raises(ImageError, match="does not exist"):
        extract(tar_builder().hardlink("h", "nope").bytes(), victim.root)
    with pytest.raises(ImageError, match="does not exist"):
        extract(tar_builder().hardlink("h", "no/such/dir").bytes(), victim.root)
    victim.check()


def test_hard_link_to_directory_is_refused(victim, tar_builder):
    with pytest.raises(ImageError, match="is a directory"):
        extract(tar_builder().dir("d").hardlink("h", "d").bytes(), victim.root)
    with pytest.raises(ImageError, match="is a directory"):
        extract(tar_builder().symlink("up", "/..").hardlink("h2", "up/d").bytes(),
                victim.root)
    victim.check()


def test_hard_link_onto_itself_is_harmless(tmp_path, tar_builder):
    extract(tar_builder().file("a", b"a").hardlink("a", "a").bytes(), tmp_path)
    assert (tmp_path / "a").read_bytes() == b"a"


def test_hard_link_replaces_an_existing_file(tmp_path, tar_builder):
    extract(tar_builder().file("a", b"a").file("b", b"b").hardlink("b", "a").bytes(), tmp_path)
    assert os.lstat(tmp_path / "b").st_ino == os.lstat(tmp_path / "a").st_ino


# --- more replacement and layering cases ---------------------------------------------------------


def test_second_archive_cannot_write_through_a_planted_symlink(victim, tar_builder):
    """GNU tar CVE-2025-45582: archive 1 plants x -> ../victim, archive 2 writes x/hello."""
    extract(tar_builder().symlink("x", "../victim").symlink("y", str(victim.dir)).bytes(),
            victim.root)
    extract(tar_builder().file("x/hello", b"pwned").file("y/hello", b"pwned")
            .dir("x/sub", mode=0o777).bytes(), victim.root)
    assert (victim.root / "victim/hello").read_bytes() == b"pwned"
    assert (victim.root / str(victim.dir).lstrip("/") / "hello").read_bytes() == b"pwned"
    victim.check()


def test_parent_replaced_by_symlink_mid_archive_is_resolved_again(victim, tar_builder):
    # d/a is written through a cached fd of d; d then becomes a symlink: d/b must not reuse it.
    data = (tar_builder().dir("d").file("d/a", b"a").symlink("d", "../victim")
            .file("d/b", b"b").bytes())
    extract(data, victim.root)
    assert (victim.root / "victim/b").read_bytes() == b"b"
    assert not (victim.root / "victim/a").exists()
    victim.check()


def test_atime_from_pax_record_is_kept(tmp_path, tar_builder):
    extract(tar_builder().file("f", b"x", pax_headers={"atime": "1000.5"}).bytes(), tmp_path)
    st = os.lstat(tmp_path / "f")
    assert st.st_atime_ns == 1000_500_000_000 and st.st_mtime == MTIME


def test_xattrs_on_symlinks_are_not_applied_through_them(victim, tar_builder):
    data = tar_builder().symlink("s", "../victim/hello",
                                 pax_headers={"SCHILY.xattr.user.evil": "1"}).bytes()
    extract(data, victim.root)
    assert os.path.islink(victim.root / "s")
    assert "user.evil" not in os.listxattr(victim.hello)
    victim.check()


def test_setuid_file_behind_a_symlink_parent_is_written_inside(victim, tar_builder):
    data = (tar_builder().symlink("bin", f"/../..{victim.dir}")
            .file("bin/hello", b"#!/bin/sh\n", mode=0o4777).bytes())
    extract(data, victim.root)
    st = os.lstat(victim.root / str(victim.hello).lstrip("/"))
    assert stat.S_IMODE(st.st_mode) == 0o4777
    victim.check()


def test_unsupported_entry_types_are_skipped_with_a_warning(tmp_path, tar_builder):
    warnings = []
    extract(tar_builder().add("odd", type=b"Z").file("ok", b"ok").bytes(), tmp_path, warnings)
    assert not os.path.lexists(tmp_path / "odd")
    assert (tmp_path / "ok").read_bytes() == b"ok"
    assert any("odd" in w for w in warnings)


def test_truncated_member_data_is_an_image_error(tmp_path, tar_builder):
    data = tar_builder().file("big", b"x" * 5000).bytes()
    with pytest.raises(ImageError, match="big"):
        extract(data[:512 + 1024], tmp_path)


def test_paths_resolve_again_after_a_removal(tmp_path, tar_builder):
    # l -> d/.. is the root until d becomes a symlink to e/sub; then l/g is e/g.
    data = (tar_builder().dir("e").dir("e/sub").dir("d").symlink("l", "d/..")
            .file("l/f", b"f").symlink("l/d", "e/sub").file("l/g", b"g").bytes())
    extract(data, tmp_path)
    assert (tmp_path / "f").read_bytes() == b"f"
    assert (tmp_path / "e/g").read_bytes() == b"g"


def test_directory_metadata_is_not_applied_to_what_replaced_it(tmp_path, tar_builder):
    data = (tar_builder().dir("e", mode=0o750, mtime=7).dir("d", mode=0o777, mtime=9)
            .symlink("d", "e").bytes())
    extract(data, tmp_path)
    st = os.lstat(tmp_path / "e")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o750, 7)

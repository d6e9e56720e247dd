"""rkt_core.sys.scoped: resolution with chroot semantics never leaves the root; mounts go onto
the resolved node itself (fake libc), and for real in a private mount namespace (root)."""

import errno
import os
import stat

import pytest

from rkt_core.sys import mount, scoped


@pytest.fixture
def root(tmp_path):
    """A root directory next to a ``victim`` directory that nothing may reach."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim/secret").write_text("host")
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return r


@pytest.fixture
def root_fd(root):
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def resolve(root_fd, path, **kwargs):
    node = scoped.resolve(root_fd, path, **kwargs)
    try:
        st = os.fstat(node.fd)
    finally:
        os.close(node.fd)
    return node.path, st


@pytest.mark.parametrize("path", ["etc/passwd", "/etc/passwd", "//etc/./passwd",
                                  "etc/../etc/passwd", "../../etc/passwd", "/../../../etc/passwd"])
def test_paths_resolve_inside_the_root(root, root_fd, path):
    found, st = resolve(root_fd, path)
    assert found == "/etc/passwd"
    assert st.st_ino == os.stat(root / "etc/passwd").st_ino


@pytest.mark.parametrize("target", ["/", "..", "../..", "/..", "/./.././../", "etc/../.."])
def test_symlinked_parents_cannot_climb_out(root, root_fd, target):
    (root / "link").symlink_to(target)
    with pytest.raises(FileNotFoundError):
        resolve(root_fd, "link/victim/secret")
    found, _ = resolve(root_fd, "link/etc/passwd")
    assert found == "/etc/passwd"


@pytest.mark.parametrize("target", ["../victim", "/../victim", "../../victim"])
def test_symlink_to_a_sibling_of_the_root_means_one_inside(root, root_fd, target):
    (root / "link").symlink_to(target)
    with pytest.raises(FileNotFoundError):
        resolve(root_fd, "link/secret")
    assert resolve(root_fd, "link/secret", create="file")[0] == "/victim/secret"
    assert (root / "victim/secret").read_text() == ""


def test_absolute_symlinks_are_root_relative(root, root_fd):
    (root / "etc/alt").symlink_to("/etc/passwd")
    (root / "abs").symlink_to(str(root.parent / "victim"))  # the host's path to the victim
    assert resolve(root_fd, "etc/alt")[0] == "/etc/passwd"
    with pytest.raises(FileNotFoundError):
        resolve(root_fd, "abs/secret")


def test_magic_links_are_read_as_text(root, root_fd):
    # In an app's root, /proc/self/root would jump to the real root; here it is a plain link.
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/root").symlink_to("/")
    assert resolve(root_fd, "/proc/self/root/etc/passwd")[0] == "/etc/passwd"


def test_final_symlink_is_followed_and_paths_are_symlink_free(root, root_fd):
    (root / "bin").mkdir()
    (root / "bin/busybox").write_text("")
    (root / "bin/sh").symlink_to("busybox")
    (root / "usr").symlink_to(".")
    assert resolve(root_fd, "/usr/usr/bin/sh")[0] == "/bin/busybox"


def test_symlink_loops_fail_with_eloop(root, root_fd):
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    with pytest.raises(OSError) as info:
        resolve(root_fd, "a/x")
    assert info.value.errno == errno.ELOOP
    assert "too many levels of symbolic links" in info.value.strerror


def test_forty_hops_are_allowed(root, root_fd):
    for i in range(39):
        (root / f"l{i}").symlink_to(f"l{i + 1}")
    (root / "l39").symlink_to("etc")  # 40 links, as many as the kernel follows
    assert resolve(root_fd, "l0/passwd")[0] == "/etc/passwd"
    (root / "l39").unlink()
    (root / "l39").symlink_to("l40")
    (root / "l40").symlink_to("etc")
    with pytest.raises(OSError) as info:
        resolve(root_fd, "l0/passwd")
    assert info.value.errno == errno.ELOOP


def test_follow_false_refuses_any_symlink(root, root_fd):
    (root / "p").symlink_to("etc")
    with pytest.raises(OSError) as info:
        resolve(root_fd, "/p", follow=False)
    assert info.value.errno == errno.ELOOP and 'component "p" is a symbolic link' in str(info.value)
    assert resolve(root_fd, "/etc", follow=False)[0] == "/etc"


def test_non_directory_parents_and_want_dir(root_fd):
    with pytest.raises(NotADirectoryError, match='component "passwd" is not a directory'):
        resolve(root_fd, "etc/passwd/x")
    with pytest.raises(NotADirectoryError):
        resolve(root_fd, "etc/passwd", want_dir=True)
    assert stat.S_ISDIR(resolve(root_fd, "etc", want_dir=True)[1].st_mode)


def test_create_makes_missing_directories_with_exact_mode(root, root_fd):
    old = os.umask(0o077)
    try:
        found, st = resolve(root_fd, "/a/b/c", create="dir")
    finally:
        os.umask(old)
    assert found == "/a/b/c" and stat.S_ISDIR(st.st_mode)
    assert all(stat.S_IMODE(os.stat(root / p).st_mode) == 0o755 for p in ("a", "a/b", "a/b/c"))


def test_create_through_a_dangling_symlink_stays_inside(root, root_fd):
    (root / "data").symlink_to(str(root.parent / "victim" / "new"))
    found, _ = resolve(root_fd, "/data", create="dir")
    assert found == str(root.parent / "victim" / "new")
    assert (root / str(root.parent).lstrip("/") / "victim/new").is_dir()
    assert not (root.parent / "victim/new").exists()


def test_create_file(root, root_fd):
    found, st = resolve(root_fd, "/x/y/file", create="file")
    assert found == "/x/y/file" and stat.S_ISREG(st.st_mode) and st.st_size == 0
    found, st = resolve(root_fd, "/etc/passwd", create="file")  # an existing file is kept
    assert st.st_size > 0


def test_open_dir(root, root_fd):
    fd = scoped.open_dir(root_fd, ["etc"])
    try:
        assert os.fstat(fd).st_ino == os.stat(root / "etc").st_ino
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        scoped.open_dir(root_fd, "nope")


def test_read_file(root, root_fd):
    (root / "etc/group").symlink_to("/../../etc/passwd")
    assert scoped.read_file(root_fd, "/etc/group") == b"root:x:0:0::/root:/bin/sh\n"
    assert scoped.read_file(root_fd, "/etc/shadow") is None
    assert scoped.read_file(root_fd, "/etc/passwd", limit=4) == b"root"
    os.mkfifo(root / "etc/fifo")
    with pytest.raises(OSError, match="not a regular file"):
        scoped.read_file(root_fd, "/etc/fifo")  # would block


def test_no_descriptor_leaks(root, root_fd):
    before = len(os.listdir("/proc/self/fd"))
    for path in ("etc/passwd", "missing/x", "etc/passwd/x"):
        try:
            os.close(scoped.resolve(root_fd, path).fd)
        except OSError:
            pass
    assert len(os.listdir("/proc/self/fd")) == before


# --- mounting onto resolved targets (fake libc) -----------------------------------------------


def _mounted_on(fake_libc):
    """Record, during each mount call, which inode its target path names."""
    seen = []
    fake_libc.hooks["mount"] = lambda source, target, *rest: seen.append(
        (source, os.stat(target).st_ino if target.startswith(b"/proc/self/fd/") else target))
    return seen


def test_bind_into_mounts_on_the_resolved_node_through_its_fd(root, root_fd, tmp_path, fake_libc):
    (tmp_path / "vol").mkdir()
    (root / "data").symlink_to("/srv/data")
    seen = _mounted_on(fake_libc)
    scoped.bind_into(root_fd, str(tmp_path / "vol"), "/data", recursive=True)
    target = root / "srv/data"
    assert target.is_dir() and stat.S_IMODE(target.stat().st_mode) == 0o755
    assert seen == [(b"/proc/self/fd/" + fake_libc.calls[0][1].split(b"/")[-1],
                     target.stat().st_ino)]
    assert fake_libc.calls[0][4] == mount.MS_BIND | mount.MS_REC


def test_bind_into_a_file_source_creates_an_empty_file(root, root_fd, tmp_path, fake_libc):
    (tmp_path / "conf").write_text("x")
    scoped.bind_into(root_fd, str(tmp_path / "conf"), "/etc/app/conf")
    assert (root / "etc/app/conf").is_file() and fake_libc.calls[0][4] == mount.MS_BIND


@pytest.mark.parametrize("source_is_dir", [True, False])
def test_bind_into_refuses_mismatched_kinds(root, root_fd, tmp_path, fake_libc, source_is_dir):
    source = tmp_path / "src"
    source.mkdir() if source_is_dir else source.write_text("")
    with pytest.raises(OSError, match="the mount source is"):
        scoped.bind_into(root_fd, str(source), "/etc/passwd" if source_is_dir else "/etc")
    assert fake_libc.calls == []


def test_bind_into_read_only_checks_the_new_mount_is_there(root, root_fd, tmp_path, fake_libc):
    (tmp_path / "vol").mkdir()
    with pytest.raises(OSError, match="not at its target"):  # the fake mounted nothing
        scoped.bind_into(root_fd, str(tmp_path / "vol"), "/data", read_only=True)
    assert [c[0] for c in fake_libc.calls] == ["mount"]


def test_bind_into_read_only_remounts_the_new_mount(root, root_fd, tmp_path, fake_libc, monkeypatch):
    (tmp_path / "vol").mkdir()
    ids = iter([1, 2])
    monkeypatch.setattr(mount, "mount_id", lambda fd: next(ids))
    scoped.bind_into(root_fd, str(tmp_path / "vol"), "/data", read_only=True)
    assert fake_libc.calls[1][4] & (mount.MS_REMOUNT | mount.MS_BIND | mount.MS_RDONLY) == \
        mount.MS_REMOUNT | mount.MS_BIND | mount.MS_RDONLY


def test_mount_into_refuses_symlinks_when_asked(root, root_fd, fake_libc):
    (root / "proc").symlink_to("/etc")
    with pytest.raises(OSError, match='"proc" is a symbolic link'):
        scoped.mount_into(root_fd, "/proc", "proc", "proc", follow=False)
    assert fake_libc.calls == []


def test_mount_errors_name_the_reason_not_fd_paths(root, root_fd, fake_libc):
    fake_libc.fail["mount"] = errno.EPERM
    with pytest.raises(PermissionError) as info:
        scoped.mount_into(root_fd, "/tmp", "tmpfs", "tmpfs")
    assert info.value.strerror == "Operation not permitted"


# --- real mounts, in a private mount namespace ------------------------------------------------


@pytest.mark.root
def test_real_bind_into_follows_planted_symlinks_inside_only(root, tmp_path, in_child):
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol/data").write_text("volume")
    (root / "mnt").symlink_to(str(tmp_path / "victim"))  # absolute: root-relative here

    def body():
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
        scoped.bind_into(fd, str(tmp_path / "vol"), "/mnt", read_only=True)
        inside = root / str(tmp_path / "victim").lstrip("/")
        assert (inside / "data").read_text() == "volume"
        with pytest.raises(OSError) as info:
            (inside / "new").write_text("x")
        assert info.value.errno == errno.EROFS
        assert (tmp_path / "victim/secret").read_text() == "host"
        assert mount.mounts_under(str(tmp_path / "victim")) == []
        scoped.mount_into(fd, "/tmp", "tmpfs", "tmpfs", follow=False)
        assert [m.fstype for m in mount.mounts()
                if m.mount_point == str(root / "tmp")] == ["tmpfs"]

    in_child(body, private_mounts=True)
    assert mount.mounts_under(str(tmp_path)) == []

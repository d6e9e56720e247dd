"""Rendering an image with its dependencies: appc's "first one wins" order, path whitelists, the
stream hash, and layers that try to make each other write outside the root."""

import hashlib
import json
import os
import stat

import pytest

from rkt_core.errors import ImageError
from rkt_core.store.aci import stage_aci
from rkt_core.store.render import Layer, render_layers
from rkt_core.testing.aci import build_aci, busybox_rootfs, image_manifest

MANIFEST = json.dumps(image_manifest("example.com/test")).encode()


@pytest.fixture
def layer(tmp_path, tar_builder):
    """``layer(name, build, whitelist=(), level=0)``: a Layer whose tar holds a ``rootfs``
    directory, what ``build(builder)`` adds, and a manifest."""
    (tmp_path / "layers").mkdir()

    def make(name, build=lambda b: b, whitelist=(), level=0, rootfs_mode=0o755):
        data = build(tar_builder().dir("rootfs", mode=rootfs_mode)).file("manifest", MANIFEST)
        data = data.bytes()
        path = tmp_path / "layers" / f"{name}.tar"
        path.write_bytes(data)
        return Layer(str(path), "sha512-" + hashlib.sha512(data).hexdigest()[:64],
                     list(whitelist), level)
    return make


def render(layers, root, warnings=None):
    render_layers(layers, str(root), warn=warnings.append if warnings is not None else None)


def tree(root):
    """Every path under ``root`` (relative, sorted)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


# --- one image ----------------------------------------------------------------------------------


def test_single_image_renders_its_rootfs_only(tmp_path, layer):
    top = layer("a", lambda b: b.dir("rootfs/etc", mode=0o700).file("rootfs/etc/hostname", b"a")
                .symlink("rootfs/etc/localtime", "/usr/share/zoneinfo/UTC"), rootfs_mode=0o750)
    root = tmp_path / "root"
    root.mkdir()
    render([top], root)
    assert tree(root) == ["etc", "etc/hostname", "etc/localtime"]
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o750
    assert stat.S_IMODE(os.lstat(root / "etc").st_mode) == 0o700


def test_staged_busybox_image_renders(tmp_path):
    aci = build_aci(tmp_path / "busybox.aci", image_manifest("example.com/busybox"),
                    busybox_rootfs(tmp_path / "src"))
    blob = tmp_path / "blob.tar"
    with open(aci, "rb") as src, open(blob, "w+b") as dest:
        key = stage_aci(src, dest).key
    root = tmp_path / "root"
    root.mkdir()
    render([Layer(str(blob), key)], root)
    assert os.readlink(root / "bin/sh") == "busybox"
    assert os.access(root / "bin/busybox", os.X_OK)


@pytest.mark.root
def test_owners_and_setuid_are_kept(tmp_path, layer):
    top = layer("a", lambda b: b.dir("rootfs/bin", uid=0, gid=0)
                .file("rootfs/bin/su", b"x", mode=0o4755, uid=0, gid=0)
                .file("rootfs/home", b"x", uid=1000, gid=100))
    root = tmp_path / "root"
    root.mkdir()
    render([top], root)
    assert stat.S_IMODE(os.lstat(root / "bin/su").st_mode) == 0o4755
    assert (os.lstat(root / "home").st_uid, os.lstat(root / "home").st_gid) == (1000, 100)


def test_device_nodes_outside_the_allow_list_are_not_rendered(tmp_path, layer):
    warnings = []
    top = layer("a", lambda b: b.dir("rootfs/dev").device("rootfs/dev/sda", "b", 8, 0)
                .device("rootfs/dev/mem", "c", 1, 1).fifo("rootfs/dev/fifo"))
    root = tmp_path / "root"
    root.mkdir()
    render([top], root, warnings)
    assert tree(root) == ["dev", "dev/fifo"]
    assert len([w for w in warnings if "allow list" in w]) == 2


def test_empty_image_list_is_refused(tmp_path):
    with pytest.raises(ImageError, match="empty"):
        render([], tmp_path)


# --- dependencies: first one wins ---------------------------------------------------------------


def test_first_one_wins_in_dependency_list_order(tmp_path, layer):
    # A -> [B, C], C -> [D]: the list is A, C, D, B.
    def provides(name, paths, dir_mode):
        def build(b):
            b.dir("rootfs/shared", mode=dir_mode)
            for path in paths:
                b.file(f"rootfs/{path}", name.encode())
            return b
        return build
    a = layer("A", provides("A", ["who", "shared/who"], 0o750), level=0)
    c = layer("C", provides("C", ["who", "c_d_b", "shared/c"], 0o700), level=1)
    d = layer("D", provides("D", ["who", "c_d_b", "d_b"], 0o711), level=2)
    b = layer("B", provides("B", ["who", "c_d_b", "d_b", "b"], 0o777), level=1)
    root = tmp_path / "root"
    root.mkdir()
    render([a, c, d, b], root)
    contents = {path: (root / path).read_bytes() for path in ("who", "shared/who", "shared/c",
                                                                "c_d_b", "d_b", "b")}
    assert contents == {"who": b"A", "shared/who": b"A", "shared/c": b"C", "c_d_b": b"C",
                        "d_b": b"D", "b": b"B"}
    assert stat.S_IMODE(os.lstat(root / "shared").st_mode) == 0o750


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_entries_below_a_higher_layers_non_directory_are_skipped(tmp_path, layer, kind):
    def top_build(b):
        return b.file("rootfs/x", b"top") if kind == "file" else b.symlink("rootfs/x", "y")
    top = layer("top", top_build)
    dep = layer("dep", lambda b: b.dir("rootfs/x").file("rootfs/x/f", b"dep").dir("rootfs/y"),
                level=1)
    root = tmp_path / "root"
    root.mkdir()
    render([top, dep], root)
    assert tree(root) == ["x", "y"]


def test_implicit_parent_is_kept_but_takes_a_lower_layers_directory_metadata(tmp_path, layer,
                                                                             victim):
    top = layer("top", lambda b: b.file("rootfs/d/f", b"top").file("rootfs/e/f", b"top"))
    dep = layer("dep", lambda b: b.symlink("rootfs/d", str(victim.dir)).file("rootfs/d/g", b"dep")
                .dir("rootfs/e", mode=0o700), level=1)
    render([top, dep], victim.root)
    assert (victim.root / "d/f").read_bytes() == b"top"
    assert (victim.root / "d/g").read_bytes() == b"dep"
    assert not os.path.islink(victim.root / "d")
    assert stat.S_IMODE(os.lstat(victim.root / "e").st_mode) == 0o700
    victim.check()


def test_hard_links_resolve_to_what_was_rendered(tmp_path, layer):
    warnings = []
    top = layer("top", lambda b: b.dir("rootfs/bin").file("rootfs/bin/busybox", b"top"))
    dep = layer("dep", lambda b: b.dir("rootfs/bin").file("rootfs/bin/busybox", b"dep")
                .hardlink("rootfs/bin/sh", "rootfs/bin/busybox")
                .file("rootfs/filtered", b"x").hardlink("rootfs/ln", "rootfs/filtered"),
                whitelist=["/bin/busybox", "/bin/sh", "/ln"], level=1)
    root = tmp_path / "root"
    root.mkdir()
    render([top, dep], root, warnings)
    assert os.lstat(root / "bin/sh").st_ino == os.lstat(root / "bin/busybox").st_ino
    assert (root / "bin/sh").read_bytes() == b"top"
    assert not os.path.lexists(root / "ln")
    assert any('"rootfs/ln"' in w for w in warnings)


# --- layers attacking each other ----------------------------------------------------------------


def _targets(victim):
    return [str(victim.dir), "../../..", "..", "/", f"/../..{victim.dir}", "../victim"]


@pytest.mark.parametrize("index", range(6))
def test_lower_layer_symlink_cannot_redirect_a_higher_layers_writes(tmp_path, layer, victim,
                                                                    index):
    target = _targets(victim)[index]
    top = layer("top", lambda b: b.file("rootfs/x/hello", b"pwned").dir("rootfs/x/sub", mode=0o777))
    dep = layer("dep", lambda b: b.symlink("rootfs/x", target), level=1)
    render([top, dep], victim.root)
    assert (victim.root / "x/hello").read_bytes() == b"pwned"
    assert not os.path.islink(victim.root / "x")
    victim.check()


@pytest.mark.parametrize("index", range(6))
def test_higher_layer_symlink_cannot_redirect_a_lower_layers_writes(tmp_path, layer, victim,
                                                                    index):
    """GNU tar CVE-2025-45582's shape: one archive plants x -> ..., the next writes x/file."""
    target = _targets(victim)[index]
    rel = os.path.relpath(victim.hello, os.path.normpath(os.path.join(victim.root, target)))
    top = layer("top", lambda b: b.symlink("rootfs/x", target))
    dep = layer("dep", lambda b: b.file(f"rootfs/x/{rel}", b"pwned")
                .hardlink("rootfs/h", f"rootfs/x/{rel}"), level=1)
    render([top, dep], victim.root)
    assert tree(victim.root) == ["x"]
    victim.check()


@pytest.mark.parametrize("name,match", [("rootfs/../victim/hello", "escapes the root"),
                                        ("rootfs/a/../../../victim/hello", "escapes the root"),
                                        ("/rootfs/x", "absolute path")])
def test_hostile_names_in_a_stored_tar_are_refused(layer, victim, name, match):
    top = layer("top", lambda b: b.file(name, b"pwned"))
    with pytest.raises(ImageError, match=match):
        render([top], victim.root)
    victim.check()


def test_hard_link_leaving_rootfs_in_a_stored_tar_is_refused(layer, victim):
    top = layer("top", lambda b: b.file("rootfs/a", b"a").hardlink("rootfs/h", "manifest"))
    with pytest.raises(ImageError, match='points outside "rootfs/"'):
        render([top], victim.root)
    victim.check()


@pytest.mark.parametrize("level", [0, 1])
def test_rootfs_that_is_not_a_directory_is_refused(tmp_path, layer, victim, level):
    good = layer("good", lambda b: b.file("rootfs/a", b"a"))
    bad = layer("bad", lambda b: b.symlink("rootfs", str(victim.dir)).file("rootfs/hello", b"x"),
                level=level)
    with pytest.raises(ImageError, match='"rootfs" is not a directory'):
        render([bad] if level == 0 else [good, bad], victim.root)
    victim.check()


# --- the stream hash ----------------------------------------------------------------------------


def test_content_not_matching_the_key_is_refused(tmp_path, layer):
    top = layer("top", lambda b: b.file("rootfs/a", b"original"))
    data = bytearray(open(top.tar_path, "rb").read())
    offset = data.index(b"original")
    data[offset:offset + 8] = b"modified"
    with open(top.tar_path, "wb") as f:
        f.write(data)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ImageError, match="does not match its ID"):
        render([top], root)


def test_data_after_the_tar_counts_in_the_hash(tmp_path, layer):
    top = layer("top", lambda b: b.file("rootfs/a", b"a"))
    with open(top.tar_path, "ab") as f:
        f.write(b"trailing")
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ImageError, match="does not match its ID"):
        render([top], root)


# --- path whitelists ----------------------------------------------------------------------------


def _pwl_dependency(b):
    """The dependency image of acirenderer's TestPWLOnlyParent and TestPWLOnlyImage."""
    return (b.file("rootfs/a/file01.txt", b"hello").file("rootfs/a/file02.txt", b"hello")
            .file("rootfs/a/file03.txt", b"hello").symlink("rootfs/b/link01.txt", "file01.txt")
            .dir("rootfs/c", mode=0o700).file("rootfs/c/file01.txt", b"hello", mode=0o700)
            .dir("rootfs/d", mode=0o700).file("rootfs/d/file01.txt", b"hello", mode=0o700)
            .file("rootfs/e/file01.txt", b"hello", mode=0o700).dir("rootfs/g", mode=0o700))


def test_own_whitelist_filters_files_but_keeps_directories(tmp_path, layer):
    # acirenderer's TestPWLOnlyParent: only the dependency has a whitelist.
    dep = layer("dep", _pwl_dependency, level=1,
                whitelist=["/a/file01.txt", "/a/file02.txt", "/b/link01.txt", "/c/", "/d/"])
    top = layer("top", lambda b: b.file("rootfs/b/file01.txt", b"hellohello")
                .file("rootfs/c/file02.txt", b"hello"))
    root = tmp_path / "root"
    root.mkdir()
    render([top, dep], root)
    assert tree(root) == ["a", "a/file01.txt", "a/file02.txt", "b", "b/file01.txt",
                          "b/link01.txt", "c", "c/file02.txt", "d", "g"]
    for name in ("c", "d", "g"):
        assert stat.S_IMODE(os.lstat(root / name).st_mode) == 0o700


def test_top_whitelist_filters_dependencies_including_directories(tmp_path, layer):
    # acirenderer's TestPWLOnlyImage: only the top image has a whitelist.
    dep = layer("dep", _pwl_dependency, level=1)
    top = layer("top", lambda b: b.file("rootfs/a/file01.txt", b"hellohello")
                .file("rootfs/c/file02.txt", b"hello"),
                whitelist=["/a/file01.txt", "/a/file02.txt", "/b/link01.txt", "/b/file01.txt",
                           "/c/file02.txt", "/d/"])
    root = tmp_path / "root"
    root.mkdir()
    render([top, dep], root)
    assert tree(root) == ["a", "a/file01.txt", "a/file02.txt", "b", "b/link01.txt", "c",
                          "c/file02.txt", "d"]
    assert (root / "a/file01.txt").read_bytes() == b"hellohello"
    assert stat.S_IMODE(os.lstat(root / "c").st_mode) == 0o755  # dep's rootfs/c was filtered
    assert stat.S_IMODE(os.lstat(root / "d").st_mode) == 0o700


def test_whitelist_matches_exact_paths_only(tmp_path, layer):
    top = layer("top", lambda b: b.dir("rootfs/etc").file("rootfs/etc/a", b"a")
                .file("rootfs/etc/ab", b"ab").dir("rootfs/etc/sub").file("rootfs/etc/sub/c", b"c"),
                whitelist=["/etc", "/etc/a/", "/etc/sub//c/."])
    root = tmp_path / "root"
    root.mkdir()
    render([top], root)
    assert tree(root) == ["etc", "etc/a", "etc/sub", "etc/sub/c"]


def test_the_highest_ancestor_whitelist_filters_the_branch(tmp_path, layer):
    # A (pwl) -> B (pwl) -> C: C is filtered by A's whitelist, not by B's.
    a = layer("A", whitelist=["/from_c_in_a"], level=0)
    b = layer("B", whitelist=["/from_c_in_b"], level=1)
    c = layer("C", lambda b: b.file("rootfs/from_c_in_a", b"c").file("rootfs/from_c_in_b", b"c"),
              level=2)
    root = tmp_path / "root"
    root.mkdir()
    render([a, b, c], root)
    assert tree(root) == ["from_c_in_a"]


def test_a_sibling_branch_whitelist_does_not_apply(tmp_path, layer):
    # A -> [B, C (pwl)], C -> [D]: the list is A, C, D, B. D is filtered by C's whitelist;
    # B is not (acirenderer would apply C's whitelist to B too: see render.py).
    a = layer("A", level=0)
    c = layer("C", whitelist=["/c", "/from_d"], level=1)
    d = layer("D", lambda b: b.file("rootfs/from_d", b"d").file("rootfs/d_filtered", b"d"),
              level=2)
    b = layer("B", lambda b: b.file("rootfs/from_b", b"b"), level=1)
    root = tmp_path / "root"
    root.mkdir()
    render([a, c, d, b], root)
    assert tree(root) == ["from_b", "from_d"]

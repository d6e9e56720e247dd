"""Squashing layers: OCI whiteouts and opaque directories, hard links, ownership, symlinked
parents, hostile entries; the ACI written passes the core's checks and renders inside its root."""

import io
import os
import tarfile
import tempfile

import pytest

from rkt_core.errors import ImageError
from rkt_core.store.aci import Limits, stage_aci
from rkt_core.store.extract import ScopedExtractor
from rkt_core.testing.registry import layer_tar, tar_entry
from rkt_fetch_docker.squash import Squasher

D, F, L, S = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE
STDIO = {"rootfs/dev", "rootfs/dev/stdin", "rootfs/dev/stdout", "rootfs/dev/stderr",
         "rootfs/dev/fd"}


def wh(name):
    return tar_entry(name, F, 0o600)


def squash_to(tmp_path, layers, limits=Limits()) -> bytes:
    warnings = []
    with Squasher(limits, warn=warnings.append) as squasher:
        for i, layer in enumerate(layers):
            path = tmp_path / f"layer-{i}.tar"
            path.write_bytes(layer)
            squasher.add_layer(str(path), f"layer {i}")
        squasher.add_stdio_symlinks()
        with tempfile.TemporaryFile() as out:
            squasher.write(out, b'{"acKind":"ImageManifest"}')
            out.seek(0)
            return out.read()


def squash(tmp_path, *layers) -> dict:
    """name -> (TarInfo, content) of the squashed ACI (stdio symlinks left out)."""
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(squash_to(tmp_path, layers))) as tar:
        for member in tar:
            content = tar.extractfile(member).read() if member.isreg() else None
            entries[member.name] = (member, content)
    return {k: v for k, v in entries.items() if k not in STDIO}


def files(entries) -> dict:
    return {name: content for name, (_, content) in entries.items()
            if name not in ("manifest", "rootfs")}


def test_whiteouts_apply_to_lower_layers_only(tmp_path):
    lower = layer_tar([tar_entry("etc/"), ("etc/a", b"a"), ("etc/b", b"b"), tar_entry("opt/"),
                       tar_entry("opt/dir/"), ("opt/dir/x", b"x")])
    upper = layer_tar([("etc/b", b"new b"), wh("etc/.wh.b"), wh("etc/.wh.a"), wh("opt/.wh.dir"),
                       wh("etc/.wh.missing")])
    assert files(squash(tmp_path, lower, upper)) == {
        "rootfs/etc": None, "rootfs/etc/b": b"new b", "rootfs/opt": None}


def test_opaque_directory_hides_lower_children_not_its_own(tmp_path):
    lower = layer_tar([tar_entry("var/"), tar_entry("var/opq/"), ("var/opq/x", b"x"),
                       tar_entry("var/opq/sub/"), ("var/opq/sub/y", b"y"), ("var/keep", b"k")])
    upper = layer_tar([tar_entry("var/opq/", mode=0o700), ("var/opq/new", b"n"),
                       wh("var/opq/.wh..wh..opq")])  # the marker after the new entry
    entries = squash(tmp_path, lower, upper)
    assert files(entries) == {"rootfs/var": None, "rootfs/var/keep": b"k",
                              "rootfs/var/opq": None, "rootfs/var/opq/new": b"n"}
    assert entries["rootfs/var/opq"][0].mode == 0o700


def test_aufs_metadata_is_dropped(tmp_path):
    layer = layer_tar([wh(".wh..wh.plnk"), tar_entry(".wh..wh.aufs/"), ("f", b"f")])
    assert files(squash(tmp_path, layer)) == {"rootfs/f": b"f"}


def test_replacing_directories_and_files(tmp_path):
    lower = layer_tar([tar_entry("a/"), ("a/x", b"x"), ("b", b"file"), tar_entry("c/"),
                       ("c/keep", b"k")])
    upper = layer_tar([("a", b"now a file"), tar_entry("b/"), ("b/y", b"y"),
                       tar_entry("c/", mode=0o711)])
    entries = squash(tmp_path, lower, upper)
    assert files(entries) == {"rootfs/a": b"now a file", "rootfs/b": None, "rootfs/b/y": b"y",
                              "rootfs/c": None, "rootfs/c/keep": b"k"}
    assert entries["rootfs/c"][0].mode == 0o711


def test_hard_links_survive_their_target_and_cross_layers(tmp_path):
    lower = layer_tar([("a", b"content"), tar_entry("b", L, 0o644, "a"),
                       tar_entry("c", L, 0o644, "/a"), ("d", b"d")])
    upper = layer_tar([("a", b"replaced"), wh(".wh.b"), tar_entry("e", L, 0o644, "d")])
    entries = squash(tmp_path, lower, upper, layer_tar([wh(".wh.d")]))
    assert entries["rootfs/a"][1] == b"replaced"
    assert "rootfs/b" not in entries and "rootfs/d" not in entries
    assert entries["rootfs/c"][1] == b"content"  # the old a, under its surviving name
    assert entries["rootfs/e"][1] == b"d"


def test_hard_link_group_written_once(tmp_path):
    layer = layer_tar([("x/f", b"data"), tar_entry("x/g", L, 0o644, "x/f"),
                       tar_entry("y", L, 0o644, "x/g")])
    entries = squash(tmp_path, layer)
    assert entries["rootfs/x/f"][1] == b"data"
    for name in ("rootfs/x/g", "rootfs/y"):
        assert entries[name][0].islnk() and entries[name][0].linkname == "rootfs/x/f"


def test_metadata_is_kept(tmp_path):
    info = tarfile.TarInfo("bin/su")
    info.size, info.mode, info.uid, info.gid, info.mtime = 3, 0o4755, 7, 8, 1234567
    info.uname, info.gname = "u", "g"
    info.pax_headers = {"SCHILY.xattr.user.x": "v", "comment": "dropped"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(tar_entry("tmp/", mode=0o1777))
        tar.addfile(info, io.BytesIO(b"bin"))
        tar.addfile(tar_entry("link", S, 0o777, "/bin/su"))
        dev = tar_entry("dev/null", tarfile.CHRTYPE, 0o666)
        dev.devmajor, dev.devminor = 1, 3
        tar.addfile(dev)
    entries = squash(tmp_path, buf.getvalue())
    su = entries["rootfs/bin/su"][0]
    assert (su.mode, su.uid, su.gid, su.uname, su.gname, su.mtime) == (0o4755, 7, 8, "u", "g",
                                                                      1234567)
    assert su.pax_headers.get("SCHILY.xattr.user.x") == "v" and "comment" not in su.pax_headers
    assert entries["rootfs/tmp"][0].mode == 0o1777
    assert entries["rootfs/link"][0].linkname == "/bin/su"
    null = entries["rootfs/dev/null"][0]
    assert null.ischr() and (null.devmajor, null.devminor) == (1, 3)
    assert entries["rootfs/bin"][0].mode == 0o755  # implicit parent: 0755, root


def test_root_entry_and_absolute_names(tmp_path):
    layer = layer_tar([tar_entry("./", mode=0o750), tar_entry("/abs/"), ("/abs/f", b"f"),
                       tar_entry("./rel/"), ("./rel//g", b"g")])
    entries = squash(tmp_path, layer)
    assert entries["rootfs"][0].mode == 0o750
    assert files(entries) == {"rootfs/abs": None, "rootfs/abs/f": b"f", "rootfs/rel": None,
                              "rootfs/rel/g": b"g"}


def test_symlinked_parents_resolve_inside_the_tree(tmp_path):
    lower = layer_tar([tar_entry("etc/"), ("etc/passwd", b"root"), tar_entry("lib", S, 0o777,
                                                                            "usr/lib"),
                       tar_entry("up", S, 0o777, "../../../../etc"),
                       tar_entry("abs", S, 0o777, "/etc")])
    upper = layer_tar([("lib/libc.so", b"libc"), ("up/shadow", b"s"), ("abs/hosts", b"h"),
                       wh("up/.wh.passwd")])
    assert files(squash(tmp_path, lower, upper)) == {
        "rootfs/abs": None, "rootfs/etc": None, "rootfs/etc/hosts": b"h",
        "rootfs/etc/shadow": b"s", "rootfs/lib": None, "rootfs/up": None, "rootfs/usr": None,
        "rootfs/usr/lib": None, "rootfs/usr/lib/libc.so": b"libc"}


def test_same_layers_same_bytes(tmp_path):
    layers = [layer_tar([("b", b"1"), ("a/c", b"2"), tar_entry("a/d", L, 0o644, "a/c")])]
    assert squash_to(tmp_path, layers) == squash_to(tmp_path, layers)


def test_read_file_follows_symlinks(tmp_path):
    layer = layer_tar([tar_entry("etc/"), ("real/passwd", b"root:x:0:0::/:/bin/sh\n"),
                       tar_entry("etc/passwd", S, 0o777, "../real/passwd")])
    path = tmp_path / "l.tar"
    path.write_bytes(layer)
    with Squasher() as squasher:
        squasher.add_layer(str(path), "layer")
        assert squasher.read_file("etc/passwd") == b"root:x:0:0::/:/bin/sh\n"
        assert squasher.read_file("etc/passwd", limit=5) is None
        assert squasher.read_file("etc/group") is None


def test_empty_layers(tmp_path):
    assert files(squash(tmp_path, b"", layer_tar([]), layer_tar([("f", b"f")]))) == {
        "rootfs/f": b"f"}


# --- hostile layers ---------------------------------------------------------------------------


@pytest.mark.parametrize("entries, message", [
    ([wh(".wh..")], "invalid whiteout"),
    ([wh(".wh...")], "invalid whiteout"),
    ([wh("etc/.wh..")], "invalid whiteout"),
    ([wh("etc/.wh...")], "invalid whiteout"),
    ([wh("etc/.wh.")], "invalid whiteout"),
    ([("../escape", b"x")], "escapes the root"),
    ([("a/../../escape", b"x")], "escapes the root"),
    ([wh("../.wh.x")], "escapes the root"),
    ([tar_entry("l", L, 0o644, "../outside")], "escapes the root"),
    ([tar_entry("l", L, 0o644, "missing")], "does not exist"),
    ([tar_entry("d/"), tar_entry("l", L, 0o644, "d")], "is a directory"),
    ([("f", b"f"), ("f/x", b"x")], "is not a directory"),
    ([("./", b"x")], "would replace the root"),
    ([tar_entry("a", S, 0o777, "b"), tar_entry("b", S, 0o777, "a"), ("a/x", b"x")],
     "too many levels of symbolic links"),
])
def test_hostile_entries_are_refused(tmp_path, entries, message):
    with pytest.raises(ImageError, match=message):
        squash(tmp_path, layer_tar(entries))


def test_corrupt_and_oversized_layers(tmp_path):
    good = layer_tar([("a", b"a"), ("b", b"b")])
    with pytest.raises(ImageError, match="corrupt tar|not a valid tar"):
        squash(tmp_path, good[:1024] + b"\xff" * 512 + good[1536:])
    with pytest.raises(ImageError, match="more than 2 entries"):
        squash_to(tmp_path, [layer_tar([("a", b"a"), ("b", b"b"), ("c", b"c")])],
                  Limits(max_entries=2))
    with pytest.raises(ImageError, match="longer than"):
        squash_to(tmp_path, [layer_tar([("a" * 50, b"a")])], Limits(max_name_len=20))


@pytest.mark.root
def test_squashed_hostile_symlinks_stay_in_the_root(tmp_path):
    """Symlinks that point out of the root, then entries through them: the ACI is accepted by
    the store's checks and renders entirely inside its root."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "hello").write_text("unchanged")
    lower = layer_tar([tar_entry("escape", S, 0o777, str(victim)),
                       tar_entry("up", S, 0o777, "../../../../../../.."),
                       tar_entry("dot", S, 0o777, ".")])
    upper = layer_tar([("escape/hello", b"owned"), ("up/tmp/owned", b"x"), ("dot/f", b"f"),
                       tar_entry("hl", L, 0o644, "escape/hello")])
    aci = squash_to(tmp_path, [lower, upper])
    with open(tmp_path / "staged", "w+b") as staged:
        stage_aci(io.BytesIO(aci), staged)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(aci)) as tar, ScopedExtractor(str(root)) as extractor:
        for member in tar:
            if member.name.startswith("rootfs/"):
                linkpath = member.linkname[len("rootfs/"):] if member.islnk() else None
                extractor.extract_member(tar, member, member.name[len("rootfs/"):],
                                         linkpath=linkpath)
        extractor.finish()
    assert (victim / "hello").read_text() == "unchanged" and os.listdir(victim) == ["hello"]
    assert (root / victim.relative_to("/") / "hello").read_bytes() == b"owned"
    assert (root / "hl").read_bytes() == b"owned"
    assert (root / "tmp/owned").read_bytes() == b"x" and (root / "f").read_bytes() == b"f"


def test_content_is_copied_without_copy_file_range(tmp_path, monkeypatch):
    def unsupported(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    layers = [layer_tar([("a", b"x" * 5000), ("b", b"")]), layer_tar([("c", b"y" * 3)])]
    expected = squash_to(tmp_path, layers)
    monkeypatch.setattr(os, "copy_file_range", unsupported)
    assert squash_to(tmp_path, layers) == expected

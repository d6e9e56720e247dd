"""Hostile image archives through ``rkt fetch`` and ``rkt image render``: each is refused with a
clear error, or rendered without anything landing outside the target; a victim directory beside
the target stays byte-identical and the store holds nothing half-done.

The archive checks themselves are unit-tested in tests/unit/store/test_aci.py (headers, PAX
records, limits), test_extract.py (the scoped extractor) and test_render.py (layers); these
cases run the same attacks end to end, as a user would meet them.
"""

from __future__ import annotations

import json
import re
import tarfile

import pytest
from hostile import Tar, assert_clear_error, bomb, store_state

from rkt_core.testing.aci import compress

COMPRESSIONS = ["gzip", "bzip2", "xz", None]


def refused_archives(victim: str) -> dict[str, tuple[bytes, str]]:
    """name -> (uncompressed archive, what the error says)."""
    truncated = Tar().dir("rootfs").file("rootfs/a", b"x" * 5000).image()
    bad_checksum = bytearray(Tar().dir("rootfs").image())
    bad_checksum[148:156] = b"0000000\0"
    return {
        "traversal": (Tar().dir("rootfs").file("rootfs/../../victim/precious", b"pwned").image(),
                      "escapes the root"),
        "absolute name": (Tar().dir("rootfs").file(f"{victim}/precious", b"pwned").image(),
                          "is an absolute path"),
        "entry outside rootfs": (Tar().dir("rootfs").file("etc/passwd", b"x").image(),
                                 'is outside "rootfs/"'),
        "hard link outside rootfs": (Tar().dir("rootfs").hardlink("rootfs/l", "manifest").image(),
                                     "points outside"),
        "hard link climbing out": (Tar().dir("rootfs").hardlink("rootfs/l", "../victim/precious")
                                   .image(), "escapes the root"),
        "duplicate entries": (Tar().dir("rootfs").file("rootfs/a", b"1").file("rootfs/./a", b"2")
                              .image(), "duplicate entry"),
        "truncated": (truncated[:2048], "truncated|unexpected end of data"),
        "bad header checksum": (bytes(bad_checksum), "not a valid tar"),
        "negative size": (_negative_size(), "invalid|negative"),
        "no manifest": (Tar().dir("rootfs").bytes(), 'no "manifest" entry'),
        "manifest nested 50,000 deep": (
            Tar().dir("rootfs").file("manifest", b'{"acKind":"ImageManifest","x":'
                                     + b"[" * 50_000 + b"]" * 50_000 + b"}").bytes(),
            "nested deeper than"),
        "manifest naming a path": (Tar().dir("rootfs").image(name="example.com/../../x"),
                                   "invalid image name"),
    }


def _negative_size() -> bytes:
    """A header whose size field is a negative base-256 number."""
    data = bytearray(Tar().dir("rootfs").file("rootfs/n", b"").image())
    header = 512 * 2  # rootfs's PAX-less header, then this entry's
    for offset in range(0, len(data), 512):
        if data[offset:offset + 8] == b"rootfs/n":
            header = offset
            break
    data[header + 124:header + 136] = b"\xff" * 12
    checksum = sum(data[header:header + 148]) + 8 * 32 + sum(data[header + 156:header + 512])
    data[header + 148:header + 156] = b"%06o\0 " % checksum
    return bytes(data)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_hostile_archives_are_refused_and_leave_nothing(rkt, tmp_path, victim, compression,
                                                        figures):
    cases = refused_archives(str(victim.path))
    failures = []
    for case, (archive, expected) in cases.items():
        path = tmp_path / "hostile.aci"
        data = compress(archive, compression)
        path.write_bytes(data[:len(data) * 3 // 4] if case == "truncated" and compression else data)
        before = store_state(rkt.data_dir)
        result = rkt("fetch", path)
        try:
            assert_clear_error(result)
            assert re.search(expected, result.stderr), (expected, result.stderr)
            assert store_state(rkt.data_dir) == before
            assert victim.changes() == {}
        except AssertionError as e:
            failures.append(f"{case}: {e}")
    figures.add("archives", trials=len(cases), failures=len(failures))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz"])
def test_bombs_stop_early_with_the_default_limits(rkt, tmp_path, compression, figures):
    path = tmp_path / "bomb.aci"
    path.write_bytes(bomb(compression, 1 << 30))
    assert path.stat().st_size < (1 << 30) // 300
    result = rkt("fetch", path)
    figures.add("bombs")
    assert_clear_error(result, "decompression bomb?", "limits.d")
    assert store_state(rkt.data_dir)["rows"] == [] and store_state(rkt.data_dir)["tmp"] == []


def test_bomb_limits_are_configurable(rkt, tmp_path, figures):
    path = tmp_path / "bomb.aci"
    path.write_bytes(bomb("gzip", 64 << 20))
    config = tmp_path / "etc"
    (config / "limits.d").mkdir(parents=True)
    (config / "limits.d" / "limits.json").write_text(
        '{"rktKind": "limits", "rktVersion": "v1", "compressionRatioGraceBytes": 1048576,'
        ' "maxCompressionRatio": 10}')
    result = rkt(f"--local-config={config}", "fetch", path)
    figures.add("bombs")
    assert_clear_error(result, "at most 1048576 plus 10 times")
    shown = json.loads(rkt(f"--local-config={config}", "config").stdout)["stage0"]
    assert {"rktVersion": "v1", "rktKind": "limits", "maxCompressionRatio": 10,
            "compressionRatioGraceBytes": 1048576} in shown


def render_escapes(victim: str) -> dict[str, list[bytes]]:
    """name -> images, dependency first, top image last; each tries to write outside."""
    dep = {"dependencies": [{"imageName": "example.com/base"}]}
    return {
        "relative symlink then write through it": [
            Tar().dir("rootfs").symlink("rootfs/up", "../../../../../../../../..")
            .file("rootfs/up" + victim + "/precious", b"pwned").image()],
        "absolute symlink then write through it": [
            Tar().dir("rootfs").symlink("rootfs/v", victim).file("rootfs/v/precious", b"pwned")
            .image()],
        "hard link to a symlink, then write through it": [
            Tar().dir("rootfs").symlink("rootfs/s", victim)
            .hardlink("rootfs/h", "rootfs/s").file("rootfs/h/precious", b"pwned").image()],
        "symlink planted by a dependency": [
            Tar().dir("rootfs").symlink("rootfs/v", victim).image("example.com/base"),
            Tar().dir("rootfs").file("rootfs/v/precious", b"pwned").image(**dep)],
        "relative symlink planted by a dependency": [
            Tar().dir("rootfs").symlink("rootfs/up", "../../../../../../../..")
            .image("example.com/base"),
            Tar().dir("rootfs").file("rootfs/up" + victim + "/sub/file", b"pwned").image(**dep)],
        "device nodes": [
            Tar().dir("rootfs").add("rootfs/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)
            .add("rootfs/mem", tarfile.CHRTYPE, devmajor=1, devminor=1).image()],
    }


@pytest.mark.parametrize("command", ["render", "extract"])
def test_renders_never_write_outside_their_target(rkt, tmp_path, victim, command, figures):
    failures = []
    cases = render_escapes(str(victim.path))
    for n, (case, images) in enumerate(cases.items()):
        for i, archive in enumerate(images):
            path = tmp_path / f"{n}-{i}.aci"
            path.write_bytes(archive)
            fetched = rkt("fetch", path)
            assert fetched.returncode == 0, (case, fetched.stderr)
        top = fetched.stdout.strip()
        out = tmp_path / f"out-{n}"
        result = rkt("image", command, top, out)
        try:
            assert result.returncode in (0, 254), result.stderr
            if result.returncode == 254:
                assert_clear_error(result)
            assert victim.changes() == {}
            assert not (out / "rootfs" / "sda").exists() and not (out / "rootfs" / "mem").exists()
        except AssertionError as e:
            failures.append(f"{case}: {e}")
        rkt("image", "rm", *[line for line in rkt("image", "list", "--no-legend", "--full",
                                                    "--fields=id").stdout.split()])
    figures.add("render escapes", trials=len(cases), failures=len(failures))
    assert not failures, "\n".join(failures)

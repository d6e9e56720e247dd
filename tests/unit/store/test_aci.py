"""Reading ACI files: compression detection, bounded decompression and the archive checks that
refuse malformed or hostile images before they enter the store."""

import hashlib
import io
import json
import os
import tarfile

import pytest

from rkt_core.errors import ImageError
from rkt_core.store.aci import (Limits, StagedACI, decompressed_reader, detect_compression,
                                read_manifest, stage_aci)
from rkt_core.testing.aci import compress, image_manifest

MANIFEST = json.dumps(image_manifest("example.com/test")).encode()
COMPRESSIONS = ["gzip", "bzip2", "xz", None]


def aci_tar(tar_builder, *entries):
    """A tar with ``rootfs``, the ``entries`` (builder method name, args...) and ``manifest``."""
    builder = tar_builder().dir("rootfs")
    for method, *args in entries:
        getattr(builder, method)(*args)
    return builder.file("manifest", MANIFEST).bytes()


def stage(data, tmp_path, limits=Limits()):
    dest_path = tmp_path / "staged.tar"
    with open(dest_path, "w+b") as dest:
        return stage_aci(io.BytesIO(data), dest, limits), dest_path


def refused(data, tmp_path, match, limits=Limits()):
    with pytest.raises(ImageError, match=match):
        stage(data, tmp_path, limits)


# --- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression,kind", [("gzip", "gzip"), ("bzip2", "bzip2"), ("xz", "xz"),
                                              (None, "tar")])
def test_detect_compression(tar_builder, compression, kind):
    assert detect_compression(compress(aci_tar(tar_builder), compression)[:512]) == kind


@pytest.mark.parametrize("head", [b"", b"PK\x03\x04zip", b"{\"acKind\": \"ImageManifest\"}",
                                  b"\x00" * 512, b"\x28\xb5\x2f\xfd zstd"])
def test_unknown_file_type_is_refused(head):
    with pytest.raises(ImageError, match="not an ACI: unknown file type"):
        detect_compression(head)


# --- staging a good image -----------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_stage_writes_the_uncompressed_tar_and_its_key(tmp_path, tar_builder, compression):
    tar = aci_tar(tar_builder, ("dir", "rootfs/bin"), ("file", "rootfs/bin/sh", b"#!"))
    staged, dest = stage(compress(tar, compression), tmp_path)
    digest = hashlib.sha512(tar).hexdigest()
    assert staged == StagedACI("sha512-" + digest[:64], len(tar), MANIFEST)
    assert len(staged.key) == len("sha512-") + 64
    assert dest.read_bytes() == tar


def test_stage_reads_the_source_from_its_start(tmp_path, tar_builder):
    src = io.BytesIO(compress(aci_tar(tar_builder), "gzip"))
    src.read(100)
    with open(tmp_path / "staged.tar", "w+b") as dest:
        assert stage_aci(src, dest).manifest == MANIFEST


def test_dot_slash_names_and_a_dot_entry_are_accepted(tmp_path, tar_builder):
    data = (tar_builder().dir("./").dir("./rootfs/").dir("./rootfs/etc")
            .file("./rootfs//etc/hosts", b"x").file("./manifest", MANIFEST).bytes())
    assert stage(data, tmp_path)[0].manifest == MANIFEST


def test_multi_stream_and_padded_gzip_are_accepted(tmp_path, tar_builder):
    tar = aci_tar(tar_builder, ("file", "rootfs/a", b"a" * 10000))
    data = compress(tar[:5000], "gzip") + compress(tar[5000:], "gzip") + b"\0" * 64
    assert stage(data, tmp_path)[0].size == len(tar)


def test_read_manifest_of_a_stored_tar(tmp_path, tar_builder):
    path = tmp_path / "blob"
    path.write_bytes(aci_tar(tar_builder, ("file", "rootfs/a", b"a")))
    assert read_manifest(str(path)) == MANIFEST
    path.write_bytes(tar_builder().dir("rootfs").bytes())
    with pytest.raises(ImageError, match='no "manifest"'):
        read_manifest(str(path))


# --- layout -------------------------------------------------------------------------------------


def test_missing_manifest_is_refused(tmp_path, tar_builder):
    refused(tar_builder().dir("rootfs").file("rootfs/a").bytes(), tmp_path, 'no "manifest"')


def test_duplicate_manifest_is_refused(tmp_path, tar_builder):
    data = tar_builder().dir("rootfs").file("manifest", MANIFEST).file("./manifest", MANIFEST)
    refused(data.bytes(), tmp_path, 'duplicate entry "./manifest"')


@pytest.mark.parametrize("kind", ["dir", "symlink", "hardlink"])
def test_manifest_that_is_not_a_regular_file_is_refused(tmp_path, tar_builder, kind):
    builder = tar_builder().dir("rootfs").file("rootfs/m", MANIFEST)
    builder = {"dir": lambda: builder.dir("manifest"),
               "symlink": lambda: builder.symlink("manifest", "rootfs/m"),
               "hardlink": lambda: builder.hardlink("manifest", "rootfs/m")}[kind]()
    refused(builder.bytes(), tmp_path, '"manifest" is not a regular file')


def test_missing_rootfs_directory_entry_is_refused(tmp_path, tar_builder):
    data = tar_builder().file("rootfs/a", b"a").file("manifest", MANIFEST).bytes()
    refused(data, tmp_path, 'no "rootfs" directory entry')


@pytest.mark.parametrize("kind", ["file", "symlink-up", "symlink-abs", "symlink-dot"])
def test_rootfs_that_is_not_a_directory_is_refused(tmp_path, tar_builder, kind):
    builder = tar_builder()
    builder = {"file": lambda: builder.file("rootfs", b"x"),
               "symlink-up": lambda: builder.symlink("rootfs", ".."),
               "symlink-abs": lambda: builder.symlink("rootfs", "/"),
               "symlink-dot": lambda: builder.symlink("rootfs/", ".")}[kind]()
    refused(builder.file("manifest", MANIFEST).bytes(), tmp_path, '"rootfs" is not a directory')


@pytest.mark.parametrize("name", ["etc/passwd", "rootfsX/a", "rootfs.d", "x"])
def test_top_level_entries_other_than_manifest_and_rootfs_are_refused(tmp_path, tar_builder,
                                                                      name):
    refused(aci_tar(tar_builder, ("file", name, b"x")), tmp_path, 'outside "rootfs/"')


@pytest.mark.parametrize("name", [".", "./", ""])
def test_non_directory_naming_the_archive_root_is_refused(tmp_path, tar_builder, name):
    refused(aci_tar(tar_builder, ("symlink", name, "/")), tmp_path, "would replace")


@pytest.mark.parametrize("first,second", [("rootfs/a", "rootfs/a"), ("rootfs/a", "./rootfs/a/"),
                                          ("rootfs/d/", "rootfs//d"), ("rootfs", "rootfs/.")])
def test_duplicate_entries_are_refused(tmp_path, tar_builder, first, second):
    data = tar_builder().dir("rootfs").dir(first).dir(second).file("manifest", MANIFEST).bytes()
    refused(data, tmp_path, "duplicate entry")


# --- hostile names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rootfs/../x", "rootfs/a/../../x", "rootfs/../../etc/passwd",
                                  "..", "rootfs/.."])
def test_dotdot_names_are_refused(tmp_path, tar_builder, name):
    refused(aci_tar(tar_builder, ("file", name, b"x")), tmp_path, f'"{name}" escapes the root')


@pytest.mark.parametrize("name", ["/etc/x", "/rootfs/x", "/manifest", "//rootfs/x"])
def test_absolute_names_are_refused(tmp_path, tar_builder, name):
    refused(aci_tar(tar_builder, ("file", name, b"x")), tmp_path, "is an absolute path")


@pytest.mark.parametrize("target,match", [("manifest", 'points outside "rootfs/"'),
                                          ("rootfs", 'points outside "rootfs/"'),
                                          ("../victim/hello", "escapes the root"),
                                          ("rootfs/../../x", "escapes the root"),
                                          ("/etc/passwd", "absolute path"),
                                          ("/rootfs/a", "absolute path")])
def test_hard_links_leaving_rootfs_are_refused(tmp_path, tar_builder, target, match):
    data = aci_tar(tar_builder, ("file", "rootfs/a", b"a"), ("hardlink", "rootfs/h", target))
    refused(data, tmp_path, match)


def test_symlinks_may_point_anywhere(tmp_path, tar_builder):
    # Symlinks only matter when followed; the extractor never follows them outside the root.
    data = aci_tar(tar_builder, ("symlink", "rootfs/up", "../../.."), ("symlink", "rootfs/abs", "/"))
    assert stage(data, tmp_path)[0].manifest == MANIFEST


# --- truncated and corrupt ----------------------------------------------------------------------


def _content_end(tar):
    """Where the last entry's data blocks end (the manifest comes last and ends with "}")."""
    data = tar.rstrip(b"\0")
    return len(data) + (-len(data)) % 512


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_truncated_archives_are_refused(tmp_path, tar_builder, compression):
    tar = aci_tar(tar_builder, ("file", "rootfs/a", os.urandom(3000)),
                  ("file", "rootfs/b", os.urandom(3000)))
    data = compress(tar, compression)
    # Every byte of a compressed stream counts; past its content, a plain tar only has
    # end-of-archive zeros, and cutting those loses nothing.
    end = len(data) - 1 if compression else _content_end(tar)
    for cut in sorted({1, 100, 511, 512, 1000, end // 3, end // 2, end - 1025, end - 513,
                       end - 100, end - 1, end}):
        with pytest.raises(ImageError, match="truncated|not a valid tar|not an ACI|corrupt"):
            stage(data[:cut], tmp_path)


def test_plain_tar_cut_at_an_entry_boundary_is_refused(tmp_path, tar_builder):
    tar = aci_tar(tar_builder, ("file", "rootfs/a", b"a" * 512))
    refused(tar[:_content_end(tar)], tmp_path, "truncated")


def test_corrupt_compressed_stream_is_refused(tmp_path, tar_builder):
    data = bytearray(compress(aci_tar(tar_builder, ("file", "rootfs/a", os.urandom(4000))), "gzip"))
    data[len(data) // 2] ^= 0xFF
    refused(bytes(data), tmp_path, "corrupt gzip stream|not a valid tar|truncated")


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz"])
def test_truncated_stream_raises_image_error_not_eof_error(tar_builder, compression):
    data = compress(aci_tar(tar_builder, ("file", "rootfs/a", os.urandom(4000))), compression)
    reader = decompressed_reader(io.BytesIO(data[:len(data) // 2]), Limits())
    with pytest.raises(ImageError, match=f"{compression} stream is truncated"):
        reader.read()


def test_garbage_after_a_gzip_stream_is_refused(tmp_path, tar_builder):
    data = compress(aci_tar(tar_builder), "gzip") + b"garbage"
    refused(data, tmp_path, "corrupt gzip stream")


def test_compressed_garbage_is_not_a_tar(tmp_path):
    refused(compress(os.urandom(5000), "xz"), tmp_path, "not a valid tar|truncated")


# --- limits -------------------------------------------------------------------------------------

SMALL_RATIO = Limits(max_ratio=10, ratio_grace_bytes=1 << 20)


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz"])
def test_decompression_bomb_is_refused(tmp_path, tar_builder, compression):
    bomb = compress(aci_tar(tar_builder, ("file", "rootfs/zeros", b"\0" * (8 << 20))), compression)
    assert len(bomb) < 100_000
    refused(bomb, tmp_path, r"decompression bomb\?: uncompressed: \d+ bytes out of \d+ compressed "
            r"\(at most 1048576 plus 10 times", SMALL_RATIO)
    # Below the grace amount, the same ratio is fine: small images compress well.
    small = compress(aci_tar(tar_builder, ("file", "rootfs/zeros", b"\0" * 100_000)), compression)
    assert stage(small, tmp_path, SMALL_RATIO)[0].manifest == MANIFEST


def test_uncompressed_size_limit(tmp_path, tar_builder):
    data = compress(aci_tar(tar_builder, ("file", "rootfs/a", os.urandom(50_000))), "gzip")
    refused(data, tmp_path, "decompression bomb\\?: .* and 20000 in all",
            Limits(max_uncompressed_bytes=20_000))


def test_sparse_file_bigger_than_the_limit_is_refused(tmp_path, tar_builder):
    # A GNU sparse (PAX 0.1) entry claiming 1 TiB of holes around one real byte.
    sparse = {"GNU.sparse.map": "0,1", "GNU.sparse.size": str(1 << 40)}
    data = (tar_builder().dir("rootfs").file("rootfs/sparse", b"x", pax_headers=sparse)
            .file("manifest", MANIFEST).bytes())
    refused(data, tmp_path, "its files add up to 1099511627776 bytes")


def test_entry_count_limit(tmp_path, tar_builder):
    data = aci_tar(tar_builder, *[("file", f"rootfs/f{i}", b"") for i in range(10)])
    refused(data, tmp_path, "more than 5 entries", Limits(max_entries=5))


def test_name_length_limit(tmp_path, tar_builder):
    refused(aci_tar(tar_builder, ("file", "rootfs/" + "a" * 300, b"")), tmp_path,
            "name longer than 200", Limits(max_name_len=200))
    refused(aci_tar(tar_builder, ("symlink", "rootfs/l", "b" * 300)), tmp_path,
            "link target longer than 200", Limits(max_name_len=200))


def test_manifest_size_limit(tmp_path, tar_builder):
    data = tar_builder().dir("rootfs").file("manifest", b" " * 2000).bytes()
    refused(data, tmp_path, "manifest of 2000 bytes", Limits(max_manifest_bytes=1000))


def test_pax_header_size_limit(tmp_path, tar_builder):
    data = (tar_builder().dir("rootfs").file("rootfs/a", b"", pax_headers={"comment": "c" * 5000})
            .file("manifest", MANIFEST).bytes())
    refused(data, tmp_path, "extended header of", Limits(max_pax_bytes=4096))


def _raw_pax_tar(body: bytes, type=tarfile.XHDTYPE) -> bytes:
    """An ACI whose first header is a PAX header holding exactly ``body``."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = type, len(body)
    out = info.tobuf(tarfile.USTAR_FORMAT) + body + b"\0" * (-len(body) % 512)
    for name, data in (("rootfs", None), ("manifest", MANIFEST)):
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE if data is None else tarfile.REGTYPE
        info.size = len(data or b"")
        out += info.tobuf(tarfile.USTAR_FORMAT) + (data or b"") + b"\0" * (-info.size % 512)
    return out + b"\0" * 1024


@pytest.mark.parametrize("type", [tarfile.XHDTYPE, tarfile.XGLTYPE])
@pytest.mark.parametrize("body,match", [
    pytest.param(b"9" * 20000, "malformed", id="digits"),  # CVE-2024-6232: a quadratic regex
    pytest.param(b"20009 comment=" + b"9" * 19994 + b"\n", "run of 64 digits", id="digit-value"),
    pytest.param(b"4 aa" * 5000 + b"=", "malformed", id="no-equals"),  # quadratic as well
    pytest.param(b"13 comment=x\n14 comment=xy", "malformed", id="bad-length"),
    pytest.param(b"0 x\n", "malformed", id="zero-length"),
    pytest.param(b"3 =\n", "malformed", id="empty-keyword"),
])
def test_pax_headers_shaped_to_slow_the_parser_are_refused(tmp_path, body, match, type):
    refused(_raw_pax_tar(body, type), tmp_path, f"PAX.*{match}|{match}.*PAX")


def test_well_formed_pax_headers_are_accepted(tmp_path, tar_builder):
    long_name = "rootfs/" + "d" * 150
    builder = tar_builder().dir("rootfs").file(long_name, b"x", pax_headers={
        "SCHILY.xattr.user.k": "v", "atime": "1500000000.123456789"})
    data = builder.file("manifest", MANIFEST).bytes()
    assert stage(data, tmp_path)[0].manifest == MANIFEST
    assert stage(_raw_pax_tar(b"13 comment=x\n"), tmp_path)[0].manifest == MANIFEST


def _with_negative_size(tar: bytes, index: int) -> bytes:
    """``tar`` with the size field of its ``index``-th header set to -1 (base-256)."""
    data = bytearray(tar)
    offset = index * 512
    data[offset + 124:offset + 136] = b"\xff" * 12
    data[offset + 148:offset + 156] = b" " * 8
    data[offset + 148:offset + 156] = b"%06o\0 " % sum(data[offset:offset + 512])
    return bytes(data)


def test_negative_entry_size_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ("rootfs", "rootfs/a", "manifest"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE if name == "rootfs" else tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(b""))
    refused(_with_negative_size(buf.getvalue(), 1), tmp_path, "negative size")

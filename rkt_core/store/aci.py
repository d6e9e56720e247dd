"""Reading ACI files safely: compression detection, bounded in-process decompression, and the
archive checks done once, when an image enters the store.

An ACI is a tar, optionally compressed with gzip, bzip2 or xz, holding exactly two top-level
names: a ``manifest`` file and a ``rootfs`` directory. :func:`stage_aci` writes the uncompressed
tar to a staging file while hashing it and checking its headers, and refuses anything malformed
or hostile: names that are absolute or contain ``..``, duplicates, entries outside
``rootfs/``, oversized headers, and truncated or corrupt streams. Decompression never leaves the
process (no ``xz`` binary) and stops at the :class:`Limits`.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import re
import tarfile
import zlib
from typing import BinaryIO

from ..errors import ImageError
from .readahead import ReadAhead, skip_to
from ..records import dataclass

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 1 << 20
INPUT_CHUNK = 64 * 1024

_MAGIC = (("gzip", 0, b"\x1f\x8b"), ("bzip2", 0, b"BZh"), ("xz", 0, b"\xfd7zXZ\x00"),
          ("tar", 257, b"ustar"))
# What tarfile and the decoders raise on malformed input, besides our own ImageError.
TAR_ERRORS = (tarfile.TarError, ValueError, OverflowError, EOFError)
# tarfile before CPython 3.11.10/3.12.6 parses PAX records with regexes that go quadratic on
# long digit runs or on records without "=" (CVE-2024-6232): such headers are refused first.
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{64}")


@dataclass(frozen=True)
class Limits:
    """Caps on what one image archive may make us read, write and hold in memory.

    What comes out of ``n`` compressed bytes, and what the entries' sizes add up to (a sparse
    entry can claim far more than its bytes), may not exceed ``ratio_grace_bytes + max_ratio *
    n``, nor ``max_uncompressed_bytes``. Real images compress about 2 to 10 times, and the grace
    covers small or very regular ones; a bomb expands hundreds of times (deflate reaches ~1030,
    bzip2 and xz far more), so it always runs into the bound, after at most the grace plus a
    hundred times its own size. The bound holds for every compression and for plain tars.
    ``rkt`` takes them from the ``limits`` configuration (:func:`image_limits`).
    """

    max_uncompressed_bytes: int = 64 * GiB
    max_ratio: int = 100
    ratio_grace_bytes: int = 256 * MiB
    max_entries: int = 1_000_000
    max_name_len: int = 4096
    max_manifest_bytes: int = 1 * MiB
    max_pax_bytes: int = 1 * MiB  # one PAX or GNU long-name header (read into memory whole)
    max_xz_memory: int = 256 * MiB  # the xz decoder's memory (xz -9 needs 65 MiB)

    def check_expansion(self, out_bytes: int, in_bytes: int, what: str) -> None:
        """Refuse ``out_bytes`` (``what`` they are) made from ``in_bytes`` compressed ones."""
        allowed = min(self.max_uncompressed_bytes, self.ratio_grace_bytes + self.max_ratio * in_bytes)
        if out_bytes > allowed:
            raise ImageError(
                f"image archive: decompression bomb?: {what} {out_bytes} bytes out of {in_bytes} "
                f"compressed (at most {self.ratio_grace_bytes} plus {self.max_ratio} times the "
                f"compressed size, and {self.max_uncompressed_bytes} in all)",
                hint='if this image is genuine, raise the limits in a "limits" configuration '
                     "file (limits.d/*.json: maxUncompressedBytes, maxCompressionRatio, "
                     "compressionRatioGraceBytes)")


def image_limits(config) -> Limits:
    """The :class:`Limits` of the ``limits`` configuration (defaults where it sets nothing)."""
    given = {"max_uncompressed_bytes": config.max_uncompressed_bytes,
             "max_ratio": config.max_compression_ratio,
             "ratio_grace_bytes": config.compression_ratio_grace_bytes}
    return Limits(**{name: value for name, value in given.items() if value is not None})


@dataclass(frozen=True)
class StagedACI:
    """An archive written uncompressed to the staging file and checked.

    ``key`` is ``sha512-`` plus the first 64 hex digits of the tar's sha512 (rkt's store key),
    ``size`` the tar's length in bytes, ``manifest`` the raw bytes of its ``manifest`` entry.
    """

    key: str
    size: int
    manifest: bytes


def detect_compression(head: bytes) -> str:
    """``gzip``, ``bzip2``, ``xz`` or ``tar`` from the first bytes (512 suffice) of a file."""
    for kind, offset, magic in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return kind
    raise ImageError("not an ACI: unknown file type",
                     hint="an ACI is a tar file, optionally compressed with gzip, bzip2 or xz")


def _new_decoder(kind: str, limits: Limits):
    if kind == "gzip":
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=limits.max_xz_memory)


class _Decompressed(io.RawIOBase):
    """The uncompressed content of a (possibly multi-stream) compressed file, counting bytes in
    and out and enforcing :class:`Limits`. Decoder failures become :class:`ImageError`; a stream
    that ends early says "truncated"."""

    def __init__(self, fileobj: BinaryIO, head: bytes, kind: str, limits: Limits):
        self._fileobj = fileobj
        self._kind = kind
        self._limits = limits
        self._pending = head  # bytes read (and counted) but not yet given to the decoder
        self._decoder = None if kind == "tar" else _new_decoder(kind, limits)
        self.bytes_in = len(head)
        self.bytes_out = 0

    def readable(self) -> bool:
        return True

    def _read_input(self, size: int) -> bytes:
        """Up to ``size`` compressed bytes: what is pending first, else from the file."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        data = self._fileobj.read(size)
        self.bytes_in += len(data)
        return data

    def readinto(self, buf) -> int:
        size = len(buf)
        data = self._read_input(size) if self._decoder is None else self._decompress(size)
        buf[:len(data)] = data
        self.bytes_out += len(data)
        self._check_limits()
        return len(data)

    def _decompress(self, size: int) -> bytes:
        try:
            while True:
                decoder = self._decoder
                if decoder.eof:
                    if not self._next_stream(decoder.unused_data):
                        return b""
                    continue
                if not self._pending and getattr(decoder, "needs_input", True):
                    data = self._read_input(INPUT_CHUNK)
                    if not data:
                        raise ImageError(f"image archive: {self._kind} stream is truncated")
                else:
                    data, self._pending = self._pending, b""
                out = decoder.decompress(data, size)
                if self._kind == "gzip" and not decoder.eof:
                    self._pending = decoder.unconsumed_tail  # zlib hands back unread input
                if out:
                    return out
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
            raise ImageError(f"image archive: corrupt {self._kind} stream: {e}") from None

    def _next_stream(self, rest: bytes) -> bool:
        """After a complete stream: skip NUL padding; start a decoder on what follows, if any."""
        rest = rest.lstrip(b"\0")
        while not rest:
            data = self._read_input(INPUT_CHUNK)
            if not data:
                return False
            rest = data.lstrip(b"\0")
        self._decoder = _new_decoder(self._kind, self._limits)
        self._pending = rest
        return True

    def _check_limits(self) -> None:
        self._limits.check_expansion(self.bytes_out, self.bytes_in, "uncompressed:")


def decompressed_reader(fileobj: BinaryIO, limits: Limits) -> io.BufferedReader:
    """A reader of the uncompressed content of ``fileobj`` (from its current position), the
    compression detected from its first bytes and the :class:`Limits` enforced."""
    head = fileobj.read(512)
    kind = detect_compression(head)
    return io.BufferedReader(_Decompressed(fileobj, head, kind, limits), CHUNK)


def clean_name(name: str, what: str = "entry") -> str:
    """An archive name normalised like Go's ``filepath.Clean`` (``./rootfs//x/`` is ``rootfs/x``,
    the root itself is ``.``), refusing absolute names and ``..`` components instead of cleaning
    them away."""
    if name.startswith("/"):
        raise ImageError(f'image archive: {what} "{name}" is an absolute path')
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f'image archive: {what} "{name}" escapes the root')
    return "/".join(parts) or "."


def _check_pax_records(data: bytes) -> None:
    """Refuse PAX header data that is not a sequence of well-formed ``"<len> <key>=<value>\\n"``
    records, or that holds a run of 64 digits: both make old tarfile parsers quadratic."""
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 20)
        digits = data[pos:space] if space > pos else b""
        end = pos + int(digits) if digits.isdigit() else -1
        if (end <= space + 2 or end > len(data) or data[end - 1] != 0x0A
                or data.find(b"=", space + 2, end - 1) < 0):
            raise ImageError(f"image archive: malformed extended (PAX) header at byte {pos}")
        pos = end
    if _LONG_DIGIT_RUN.search(data):
        raise ImageError("image archive: extended (PAX) header with a run of 64 digits")


class _Replay:
    """A file object that first returns ``data``, then reads on from ``fileobj``."""

    def __init__(self, data: bytes, fileobj):
        self._data = data
        self._fileobj = fileobj

    def read(self, size: int) -> bytes:
        if not self._data:
            return self._fileobj.read(size)
        data, self._data = self._data[:size], self._data[size:]
        return data + (self._fileobj.read(size - len(data)) if len(data) < size else b"")

    def tell(self) -> int:
        return self._fileobj.tell() - len(self._data)


class CappedTarInfo(tarfile.TarInfo):
    """A TarInfo refusing PAX and GNU long-name headers larger than ``max_header`` (tarfile reads
    them into memory whole), malformed PAX records (see :func:`_check_pax_records`) and negative
    sizes (which make tarfile seek backwards)."""

    max_header = Limits.max_pax_bytes

    @classmethod
    def with_limit(cls, max_header: int) -> type[CappedTarInfo]:
        """A subclass with another ``max_header``."""
        return type(cls.__name__, (cls,), {"max_header": max_header})

    def _proc_member(self, tar):
        if self.size < 0:
            raise ImageError(f'image archive: entry "{self.name}" has a negative size')
        if (self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                          tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
                and self.size > self.max_header):
            raise ImageError(f"image archive: extended header of {self.size} bytes "
                             f"(more than {self.max_header})")
        if self.type in _PAX_TYPES:
            member = self._proc_checked_pax(tar)
        else:
            member = super()._proc_member(tar)
        if member.size < 0:
            raise ImageError(f'image archive: entry "{member.name}" has a negative size')
        return member

    def _proc_checked_pax(self, tar):
        """Read the PAX data, check it, and let tarfile parse it from a replay of what was read."""
        fileobj = tar.fileobj
        data = fileobj.read(self._block(self.size))
        _check_pax_records(data[:self.size])
        tar.fileobj = _Replay(data, fileobj)
        try:
            return super()._proc_member(tar)
        finally:
            tar.fileobj = fileobj


def open_tar(path: str, limits: Limits = Limits()) -> tarfile.TarFile:
    """A reader of the plain tar at ``path`` whose extended headers are capped by ``limits``
    (:class:`CappedTarInfo`); names must still be checked with :func:`clean_name`."""
    return tarfile.open(path, "r:", tarinfo=CappedTarInfo.with_limit(limits.max_pax_bytes))


def stage_aci(src: BinaryIO, dest: BinaryIO, limits: Limits = Limits()) -> StagedACI:
    """Decompress the image ``src`` (read from offset 0) into ``dest`` as a plain tar, hashing and
    checking it on the way (one pass; decompression runs ahead in a thread). Raises
    :class:`ImageError` on any problem; the caller then discards ``dest``."""
    src.seek(0)
    dest.seek(0)
    dest.truncate()
    reader = decompressed_reader(src, limits)
    with ReadAhead(reader) as uncompressed:
        stream = _Copying(uncompressed, dest)
        manifest, has_rootfs, end = _check_entries(stream, limits, lambda: reader.raw.bytes_in)
        while stream.read(CHUNK):
            pass
    dest.flush()
    # tarfile stops quietly at a cut or garbled header: a complete tar has its end marker here.
    dest.seek(end)
    if dest.read(tarfile.BLOCKSIZE) != tarfile.NUL * tarfile.BLOCKSIZE:
        raise ImageError("image archive: the tar is truncated or corrupt (no end-of-archive "
                         f"marker at byte {end})")
    if manifest is None:
        raise ImageError('image archive: no "manifest" entry')
    if not has_rootfs:
        raise ImageError('image archive: no "rootfs" directory entry')
    return StagedACI("sha512-" + stream.digest.hexdigest()[:64], stream.size, manifest)


class _Copying:
    """A reader that hashes everything read through it and writes it to ``dest``; it seeks
    forward by reading on (see :class:`ReadAhead`)."""

    def __init__(self, source: BinaryIO, dest: BinaryIO):
        self._source = source
        self._dest = dest
        self.digest = hashlib.sha512()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.digest.update(data)
        self._dest.write(data)
        self.size += len(data)
        return data

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = 0) -> int:
        skip_to(self, offset if whence == 0 else self.size + offset)
        return self.size


def read_manifest(tar_path: str, limits: Limits = Limits()) -> bytes:
    """The ``manifest`` bytes of an uncompressed ACI already in the store."""
    try:
        with tarfile.open(tar_path, mode="r:",
                          tarinfo=CappedTarInfo.with_limit(limits.max_pax_bytes)) as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()
                if member.isreg() and clean_name(member.name) == "manifest":
                    return _read_manifest(tar, member, limits)
    except TAR_ERRORS as e:
        raise ImageError(f'image archive "{tar_path}": not a valid tar: {e}') from None
    raise ImageError(f'image archive "{tar_path}": no "manifest" entry')


def _check_entries(stream, limits: Limits,
                   compressed_bytes) -> tuple[bytes | None, bool, int]:
    """Check each entry of the uncompressed tar read from ``stream``; return the manifest bytes
    (if any), whether there is a ``rootfs`` entry and the offset where the entries end (the end
    marker should be there). ``compressed_bytes()`` tells how much compressed input was read."""
    seen: set[bytes] = set()  # digests of the cleaned names: bounded memory for long names
    apparent_size = 0
    manifest: bytes | None = None
    has_rootfs = False
    try:
        with tarfile.open(fileobj=stream, mode="r:",
                          tarinfo=CappedTarInfo.with_limit(limits.max_pax_bytes)) as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # headers only: memory stays flat for huge archives
                if len(seen) >= limits.max_entries:
                    raise ImageError(f"image archive: more than {limits.max_entries} entries")
                name = _check_entry(member, limits)
                key = hashlib.blake2b(name.encode("utf-8", "surrogateescape"),
                                      digest_size=16).digest()
                if key in seen:
                    raise ImageError(f'image archive: duplicate entry "{member.name}"')
                seen.add(key)
                # The entries before this one have been read through: their sizes are bounded
                # by the input read so far, as the bytes that came out are.
                limits.check_expansion(apparent_size, compressed_bytes(), "its files add up to")
                apparent_size += member.size
                if name == "manifest":
                    manifest = _read_manifest(tar, member, limits)
                has_rootfs = has_rootfs or name == "rootfs"
            end = tar.offset
        limits.check_expansion(apparent_size, compressed_bytes(), "its files add up to")
    except TAR_ERRORS as e:
        raise ImageError(f"image archive: not a valid tar: {e}") from None
    return manifest, has_rootfs, end


def _check_entry(member: tarfile.TarInfo, limits: Limits) -> str:
    """The cleaned name of one entry, if it may be in an ACI."""
    for what, value in (("name", member.name), ("link target", member.linkname)):
        if len(value) > limits.max_name_len:
            raise ImageError(f'image archive: entry "{member.name[:100]}..." has a {what} longer '
                             f"than {limits.max_name_len} characters")
    name = clean_name(member.name)
    if name == "manifest":
        if not member.isreg():
            raise ImageError('image archive: "manifest" is not a regular file')
    elif name == "rootfs":
        if not member.isdir():
            raise ImageError('image archive: "rootfs" is not a directory')
    elif name == ".":
        if not member.isdir():
            raise ImageError(f'image archive: entry "{member.name}" would replace the archive '
                             "root")
    elif not name.startswith("rootfs/"):
        raise ImageError(f'image archive: entry "{member.name}" is outside "rootfs/" (only '
                         '"manifest" and "rootfs" may be at the top level)')
    if member.islnk():
        target = clean_name(member.linkname, f'hard link target of "{member.name}"')
        if not target.startswith("rootfs/"):
            raise ImageError(f'image archive: hard link "{member.name}" points outside '
                             f'"rootfs/" (to "{member.linkname}")')
    return name


def _read_manifest(tar: tarfile.TarFile, member: tarfile.TarInfo, limits: Limits) -> bytes:
    if member.size > limits.max_manifest_bytes:
        raise ImageError(f"image archive: manifest of {member.size} bytes (more than "
                         f"{limits.max_manifest_bytes})")
    data = tar.extractfile(member).read()
    if len(data) != member.size:
        raise ImageError("image archive: the manifest is truncated")
    return data

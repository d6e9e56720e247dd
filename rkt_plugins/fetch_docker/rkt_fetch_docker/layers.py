"""Layer blobs to plain tar files, with the uncompressed content checked against its diff_id.

Decompression is the core's (``rkt_core.plugin_api.fetch.decompressed_reader``): in-process
gzip, bzip2 or xz (or a plain tar), bounded by ``Limits``.
"""

from __future__ import annotations

from typing import BinaryIO

from rkt_core.plugin_api import ImageError
from rkt_core.plugin_api.fetch import CHUNK, Limits, decompressed_reader, detect_compression

from .digest import check, hasher


def unpack(blob: BinaryIO, dest: BinaryIO, diff_id: str, what: str,
           limits: Limits = Limits()) -> None:
    """Write the uncompressed tar of ``blob`` to ``dest``; if ``diff_id`` is set, its digest
    must match. An empty blob is an empty layer."""
    h = hasher(diff_id or "sha256:")
    blob.seek(0)
    head = blob.read(512)
    if head:
        blob.seek(0)
        try:
            detect_compression(head)
        except ImageError:
            raise ImageError(f"{what}: not a tar archive (plain, gzip, bzip2 or xz)") from None
        try:
            reader = decompressed_reader(blob, limits)
            while chunk := reader.read(CHUNK):
                h.update(chunk)
                dest.write(chunk)
        except ImageError as e:
            raise ImageError(f"{what}: {e.message}") from None
    dest.flush()
    if diff_id:
        check(diff_id, h.hexdigest(), f"{what} (uncompressed, rootfs.diff_ids)")

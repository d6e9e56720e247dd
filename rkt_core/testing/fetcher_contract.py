"""The contract every fetcher passes: what ``fetch`` hands back and what ``rkt fetch`` makes of
it, for good and for hostile sources.

A fetcher's test module subclasses :class:`FetcherContract`, names the fetcher and supplies a
``source`` fixture: a :class:`Source` that publishes images where the fetcher looks for them::

    from rkt_core.testing.fetcher_contract import FetcherContract, Source

    class TestMemoryFetcherContract(FetcherContract):
        fetcher = "memory"

        @pytest.fixture
        def source(self, tmp_path) -> Source:
            return MemorySource(tmp_path)

The suite checks that the fetcher hands back an open, seekable file with the image (read from
offset 0, as often as rkt needs) that ``rkt fetch`` imports under the same key; that a second
fetch of an unchanged image is answered with the stored copy's key (``store_key``) when the
fetcher says it caches (:attr:`FetcherContract.caches`), and downloaded again when it does not;
and that a missing source, HTML instead of an image, a truncated image and a huge one (a
decompression bomb) each give ``rkt: ...`` and exit status 254 and leave nothing in the store
nor in ``cas/tmp``. ``fetch`` is called by itself in a process of its own
(``python -m rkt_core.testing.fetcher_contract``) with the installed plugins, as ``rkt`` does.
"""

from __future__ import annotations

import functools
import json
import lzma
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from .aci import busybox_aci, image_id, image_manifest
from .runner import Rkt

HOSTILE = ("missing", "html", "truncated", "huge")
HTML = b"<!DOCTYPE html><html><head><title>Not here</title></head><body>moved</body></html>\n"
BOMB_BYTES = 256 << 20  # what a bomb decompresses to (rkt stops long before)


class Source:
    """Where a fetcher finds images; subclasses publish there. ``env`` is added to the
    environment of ``rkt`` and ``prefix`` goes before it (e.g. ``nsenter`` into a namespace
    where the source's names resolve)."""

    env: dict[str, str] = {}
    prefix: list[str] = []

    def image(self) -> str:
        """Publish a runnable image; its reference (what ``rkt fetch`` is given)."""
        raise NotImplementedError

    def hostile(self, kind: str) -> str:
        """A reference to a hostile source of ``kind`` (one of :data:`HOSTILE`): nothing there,
        an HTML page, an image cut in half, or a decompression bomb."""
        raise NotImplementedError


def good_aci(directory: Path, name: str = "example.com/contract") -> bytes:
    """A runnable busybox ACI (gzip), as bytes."""
    return busybox_aci(Path(directory) / "contract.aci", name=name).read_bytes()


def hostile_aci(kind: str, directory: Path, name: str = "example.com/contract") -> bytes:
    """What an ACI source serves for a hostile ``kind`` other than ``missing``: an HTML page,
    a gzip ACI cut in half, or an xz ACI whose one file decompresses to :data:`BOMB_BYTES` of
    zeros."""
    if kind == "html":
        return HTML
    if kind == "truncated":
        data = good_aci(directory, name)
        return data[:len(data) // 2]
    if kind == "huge":
        return _bomb(name)
    raise ValueError(f"no hostile ACI of kind {kind!r}")


@functools.cache
def _bomb(name: str) -> bytes:
    manifest = json.dumps(image_manifest(name, exec=["/bin/true"])).encode()
    compressor = lzma.LZMACompressor(preset=1)
    out = [compressor.compress(_tar_header("manifest", len(manifest)) + _padded(manifest))]
    out.append(compressor.compress(_tar_header("rootfs/zeros", BOMB_BYTES)))
    chunk = bytes(1 << 20)
    for _ in range(BOMB_BYTES >> 20):
        out.append(compressor.compress(chunk))
    out.append(compressor.compress(bytes(1024)) + compressor.flush())
    return b"".join(out)


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


class FetcherContract:
    """What a fetcher promises (see the module docstring). Subclasses set :attr:`fetcher` and
    supply a ``source`` fixture."""

    fetcher: str = ""  # the Fetcher record's name
    caches: bool = True  # an unchanged image is not downloaded again
    insecure: str = "image"  # --insecure-options of every fetch

    @pytest.fixture
    def rkt(self, tmp_path, source) -> Rkt:
        """``rkt`` on fresh directories, reaching the source."""
        assert self.fetcher, "set fetcher in the subclass"
        rkt = Rkt(tmp_path, insecure=self.insecure, env=source.env, prefix=source.prefix)
        yield rkt
        rkt.cleanup()

    def leftovers(self, rkt: Rkt) -> list[str]:
        """What a fetch left in ``cas/tmp`` that it should not have (override for caches of
        complete downloads)."""
        return rkt.tmp_leftovers()

    def fetch(self, rkt: Rkt, ref: str) -> dict:
        """The fetcher's ``fetch`` of ``ref`` by itself on ``rkt``'s store: ``file`` (an open
        file came back), ``seekable``, ``key`` (of the image read from offset 0, twice the
        same) or ``store_key``."""
        argv = [*rkt.prefix, sys.executable, "-m", __name__, self.fetcher, str(rkt.data_dir),
                str(rkt.local_config), str(rkt.system_config), self.insecure, ref]
        done = subprocess.run(argv, capture_output=True, text=True, env=rkt.env, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def test_fetch_gives_an_open_seekable_file_that_rkt_fetch_imports(self, rkt, source):
        ref = source.image()
        fetched = self.fetch(rkt, ref)
        assert fetched["file"] and fetched["seekable"] and fetched["store_key"] is None
        key = rkt("fetch", "--full", ref, check=0).stdout.strip()
        assert key == fetched["key"][:len(key)] and len(key) == len("sha512-") + 64
        assert rkt.image_keys() == [key]
        assert self.leftovers(rkt) == []

    def test_a_second_fetch_of_an_unchanged_image(self, rkt, source):
        ref = source.image()
        key = rkt("fetch", "--full", ref, check=0).stdout.strip()
        listed = rkt("image", "list", "--format=json", check=0).stdout
        fetched = self.fetch(rkt, ref)
        if self.caches:  # a file may still come along, to verify its signature again
            assert fetched["store_key"] == key
        else:
            assert fetched["store_key"] is None and fetched["key"].startswith(key)
        assert rkt("fetch", "--full", ref, check=0).stdout.strip() == key
        assert rkt("image", "list", "--format=json", check=0).stdout == listed

    @pytest.mark.parametrize("kind", HOSTILE)
    def test_a_hostile_source_is_refused_and_leaves_nothing(self, rkt, source, kind):
        result = rkt("fetch", source.hostile(kind))
        assert result.returncode == 254, result.stderr
        assert result.stderr.startswith("rkt: "), result.stderr
        assert "Traceback" not in result.stderr
        assert rkt.image_keys() == []
        assert self.leftovers(rkt) == []


# --- the driver: one fetch, in a process of its own ----------------------------------------------


def main(argv: list[str]) -> int:
    """``FETCHER DATA LOCAL_CONFIG SYSTEM_CONFIG INSECURE REF``: see
    :meth:`FetcherContract.fetch`."""
    from ..context import Context
    from ..insecure import parse_insecure_options
    from ..types import FetchRequest

    name, data, local, system, insecure, ref = argv
    ctx = Context(dir=data, local_config=local, system_config=system,
                  insecure=parse_insecure_options(insecure))
    fetched = ctx.plugins.fetchers()[name].fetch(FetchRequest(ref, context=ctx))
    report = {"file": fetched.aci is not None, "seekable": False, "key": None,
              "store_key": fetched.store_key}
    if fetched.aci is not None:
        with fetched.aci:
            report["seekable"] = fetched.aci.seekable() and not fetched.aci.closed
            fetched.aci.seek(0)
            first = fetched.aci.read()
            fetched.aci.seek(0)
            assert fetched.aci.read() == first, "the file changed between two reads"
        report["key"] = image_id(first)
    if fetched.signature is not None:
        fetched.signature.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

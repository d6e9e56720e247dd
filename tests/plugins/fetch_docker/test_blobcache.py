"""The blob cache on its own: checked on the way in and on every use, one writer per blob, no
partial file left behind by a fetch that lost the race."""

import fcntl
import hashlib
import os
import threading

import pytest

from rkt_core.errors import ImageError
from rkt_core.testing.wait import wait_for
from rkt_fetch_docker.blobcache import PARTIAL, BlobCache

BLOB = b"layer bytes " * 1000
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class Body:
    """What ``download(offset)`` returns: a whole-blob 200 response, as ``requests`` shapes it
    (the cache reads ``status_code``, ``headers``, ``raw.read`` and closes it)."""

    status_code = 200
    headers: dict = {}

    def __init__(self, data: bytes):
        self.raw = self
        self._data = data

    def read(self, size, decode_content=False):
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_a_blob_is_checked_kept_and_rechecked(tmp_path):
    cache = BlobCache(str(tmp_path))
    calls = []
    with cache.open(DIGEST, len(BLOB), lambda offset: calls.append(offset) or Body(BLOB)) as f:
        assert f.read() == BLOB
    assert calls == [0]
    with cache.open(DIGEST, len(BLOB), lambda offset: pytest.fail("downloaded again")) as f:
        assert f.read() == BLOB
    with open(cache.path(DIGEST), "r+b") as f:
        f.write(b"X")
    with cache.open(DIGEST, len(BLOB), lambda offset: calls.append(offset) or Body(BLOB)) as f:
        assert f.read() == BLOB
    assert calls == [0, 0]


def test_a_wrong_blob_leaves_nothing(tmp_path):
    cache = BlobCache(str(tmp_path))
    with pytest.raises(ImageError, match=f"blob {DIGEST}: digest mismatch"):
        cache.open(DIGEST, len(BLOB), lambda offset: Body(BLOB[:-1] + b"?"))
    with pytest.raises(ImageError, match="bytes received, its descriptor says"):
        cache.open(DIGEST, len(BLOB), lambda offset: Body(BLOB[:-1]))
    with pytest.raises(ImageError, match="more than the"):
        cache.open(DIGEST, len(BLOB), lambda offset: Body(BLOB + b"more"))
    assert os.listdir(tmp_path) == []


def wait_for_blocked_flock(inode: int) -> None:
    """Until a flock on ``inode`` waits (``/proc/locks`` lists it with ``->``)."""
    def blocked() -> bool:
        with open("/proc/locks") as f:
            return any("->" in line and line.split()[-3].endswith(f":{inode}") for line in f)

    wait_for(blocked, what="the second fetch to wait for the lock")


def test_the_loser_of_a_race_uses_the_winners_blob_and_leaves_no_partial_file(tmp_path):
    cache = BlobCache(str(tmp_path))
    partial = cache.path(DIGEST) + PARTIAL
    winner = os.open(partial, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.flock(winner, fcntl.LOCK_EX)  # another fetch is downloading the blob
    result = {}

    def loser():
        with cache.open(DIGEST, len(BLOB), lambda offset: pytest.fail("downloaded twice")) as f:
            result["data"] = f.read()

    thread = threading.Thread(target=loser)
    thread.start()
    wait_for_blocked_flock(os.stat(partial).st_ino)
    os.write(winner, BLOB)
    os.rename(partial, cache.path(DIGEST))
    fcntl.flock(winner, fcntl.LOCK_UN)
    os.close(winner)
    thread.join(timeout=30)
    assert result["data"] == BLOB
    assert os.listdir(tmp_path) == [os.path.basename(cache.path(DIGEST))]

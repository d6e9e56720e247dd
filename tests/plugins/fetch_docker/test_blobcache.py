"""The blob cache on its own: checked on the way in and on every use, one writer per blob, no
partial file left behind by a fetch that lost the race."""

import fcntl
import hashlib
import os
import threading

import pytest

from rkt_core.errors import ImageError
from rkt_core.remote.httpclient import HttpError
from rkt_core.testing.wait import wait_for
from rkt_fetch_docker.blobcache import PARTIAL, BlobCache

BLOB = b"layer bytes " * 1000
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class Body:
    """What ``request(headers)`` returns: a whole-blob 200 response, as the HTTP client shapes
    it (the cache reads ``status_code``, ``headers``, ``url``, ``read`` and closes it)."""

    url = "https://registry.test/v2/repo/blobs/" + DIGEST

    def __init__(self, data: bytes, status: int = 200, headers: dict | None = None):
        self._data = data
        self.status_code = status
        self.headers = headers or {}

    def read(self, size):
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
    with cache.open(DIGEST, len(BLOB), lambda headers: calls.append(headers) or Body(BLOB)) as f:
        assert f.read() == BLOB
    assert [h.get("Range") for h in calls] == [None]
    with cache.open(DIGEST, len(BLOB), lambda headers: pytest.fail("downloaded again")) as f:
        assert f.read() == BLOB
    with open(cache.path(DIGEST), "r+b") as f:
        f.write(b"X")
    with cache.open(DIGEST, len(BLOB), lambda headers: calls.append(headers) or Body(BLOB)) as f:
        assert f.read() == BLOB
    assert [h.get("Range") for h in calls] == [None, None]


def test_a_wrong_blob_leaves_nothing(tmp_path):
    cache = BlobCache(str(tmp_path))
    with pytest.raises(ImageError, match=f"blob {DIGEST}: digest mismatch"):
        cache.open(DIGEST, len(BLOB), lambda headers: Body(BLOB[:-1] + b"?"))
    with pytest.raises(ImageError, match="bytes received, its descriptor says"):
        cache.open(DIGEST, len(BLOB), lambda headers: Body(BLOB[:-1]))
    with pytest.raises(HttpError, match=f"is larger than {len(BLOB)} bytes"):
        cache.open(DIGEST, len(BLOB), lambda headers: Body(BLOB + b"more"))
    assert os.listdir(tmp_path) == []


def test_a_partial_blob_is_resumed_where_it_stopped(tmp_path):
    cache = BlobCache(str(tmp_path))
    (tmp_path / (os.path.basename(cache.path(DIGEST)) + PARTIAL)).write_bytes(BLOB[:1000])
    calls = []

    def request(headers):
        calls.append(headers.get("Range"))
        return Body(BLOB[1000:], 206, {"Content-Range": f"bytes 1000-{len(BLOB) - 1}/{len(BLOB)}"})

    with cache.open(DIGEST, len(BLOB), request) as f:
        assert f.read() == BLOB
    assert calls == ["bytes=1000-"]
    assert os.listdir(tmp_path) == [os.path.basename(cache.path(DIGEST))]


@pytest.mark.parametrize("refusal", [Body(b"", 416, {"Content-Range": f"bytes */{len(BLOB)}"}),
                                     Body(BLOB[500:], 206, {"Content-Range": "bytes 500-"
                                                            f"{len(BLOB) - 1}/{len(BLOB)}"})],
                         ids=["416", "another range"])
def test_a_partial_blob_the_registry_does_not_continue_is_downloaded_whole(tmp_path, refusal):
    cache = BlobCache(str(tmp_path))
    (tmp_path / (os.path.basename(cache.path(DIGEST)) + PARTIAL)).write_bytes(b"x" * 1000)
    answers, calls = [refusal, Body(BLOB)], []

    def request(headers):
        calls.append(headers.get("Range"))
        return answers.pop(0)

    with cache.open(DIGEST, len(BLOB), request) as f:
        assert f.read() == BLOB
    assert calls == ["bytes=1000-", None]


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
        with cache.open(DIGEST, len(BLOB), lambda headers: pytest.fail("downloaded twice")) as f:
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
